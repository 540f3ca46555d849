"""The grid through an executor (launchers.py): submitit's LocalExecutor runs the same code path a
Slurm cluster would (jobs as processes; phase-2 jobs submitted when their phase-1 job ends)."""

from __future__ import annotations

import threading
import time

import psutil
import pytest
import submitit

from helpers import REPO
from t5vae.grid import reproduce
from t5vae.grid.jobs import Job
from t5vae.grid.launchers import run_with_executor
from t5vae.notebook import steps
from t5vae.report.compare import compare
from t5vae.report.results import read_results

GRID = [
    "--profile",
    "smoke",
    "--phase1-variants",
    "max_pnone_frozen",
    "--techniques",
    "l0.5_pnone,vanilla",
]


def test_cluster_plan_lists_jobs_and_dependencies_without_submitting(tmp_path, capsys):
    assert (
        reproduce.main([*GRID, "--launcher", "slurm", "--plan", "--output-root", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "3 jobs on slurm: partition None, 1 GPU, 8 CPUs, 32 GB, 1440 min each" in out
    assert "builtin/seed0/phase2-l0.5_pnone  after builtin/seed0/phase1-max_pnone_frozen" in out
    assert not (tmp_path / "runs").exists()


def test_phase2_from_the_unfrozen_decoder_adds_that_phase1_run_and_depends_on_it(tmp_path, capsys):
    cmd = [*GRID, "--launcher", "slurm", "--plan", "--output-root", str(tmp_path)]
    assert reproduce.main([*cmd, "--set", "phase2_from_decoder=unfrozen"]) == 0
    out = capsys.readouterr().out
    assert "4 jobs on slurm" in out  # the variant asked for, the one phase 2 needs, 2 techniques
    assert "builtin/seed0/phase2-l0.5_pnone  after builtin/seed0/phase1-max_pnone_unfrozen" in out
    assert "builtin/seed0/phase1-max_pnone_frozen" in out


@pytest.mark.slow
def test_submitit_local_executor_gives_the_tables_of_the_local_launcher(tmp_path, capsys):
    assert (
        reproduce.main(
            [*GRID, "--launcher", "submitit-local", "--output-root", str(tmp_path / "jobs")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "submitted as job" in out and out.strip().splitlines()[-1].startswith(
        "verdict: 3/3 runs match"
    )
    assert reproduce.main([*GRID, "--output-root", str(tmp_path / "local"), "--no-tables"]) == 0
    jobs, local = tmp_path / "jobs" / "results" / "smoke", tmp_path / "local" / "results" / "smoke"
    assert compare(jobs, local).ok  # the same numbers, run for run
    from t5vae.report.tables import write_tables

    assert write_tables(jobs)["md"].read_text() == write_tables(local)["md"].read_text()
    capsys.readouterr()
    assert reproduce.main([*GRID, "--collect", "--output-root", str(tmp_path / "local")]) == 0
    out = capsys.readouterr().out
    assert "[grid]" not in out and "verdict: 3/3 runs match" in out  # tables from what finished


@pytest.mark.slow
def test_a_killed_job_resumes_when_resubmitted(tmp_path):
    """A job killed after its first epoch (as a preempted one) is reported; resubmitted, it resumes
    from last/ and ends with the reference's numbers."""
    spec = steps.make_spec("smoke", "builtin", "phase2", "vanilla", tmp_path)
    executor = submitit.LocalExecutor(folder=str(tmp_path / "jobs"))
    status = {}
    thread = threading.Thread(
        target=lambda: status.update(run_with_executor([Job(spec)], executor, False))
    )
    thread.start()
    deadline = time.time() + 300
    while not (spec.run_dir / "last").is_dir() and time.time() < deadline:
        time.sleep(0.2)
    assert (spec.run_dir / "last").is_dir(), "the job did not reach its first checkpoint"
    for proc in psutil.process_iter(["cmdline"]):  # kill the job's process tree
        cmd = " ".join(proc.info["cmdline"] or [])
        if "submitit" in cmd and str(tmp_path) in cmd:
            for child in proc.children(recursive=True):
                child.kill()
            proc.kill()
    thread.join(timeout=300)
    key = spec.key
    assert status[key].startswith("failed: job") and "log: " in status[key]
    assert read_results(spec.results_file)["status"] == "failed"
    assert run_with_executor([Job(spec)], executor, False)[key] == "done"
    reference = REPO / "reference" / "smoke"
    result = compare(spec.results_dir, reference, keys=[key])
    assert result.ok, result.verdict
    assert len(steps.history(spec)) == 2


@pytest.mark.slow
def test_a_failing_job_is_reported_with_its_log(tmp_path):
    spec = steps.make_spec(
        "smoke", "ptb", "phase1", "max_pnone_frozen", tmp_path, data_dir=str(tmp_path / "none")
    )
    status = run_with_executor(
        [Job(spec)], submitit.LocalExecutor(folder=str(tmp_path / "jobs")), False
    )
    message = status[spec.key]
    assert message.startswith("failed: job") and "does not exist" in message
    log = message.rsplit("log: ", 1)[1]
    assert (tmp_path / "jobs").exists() and log.endswith(".err")
    assert read_results(spec.results_file)["status"] == "failed"


def test_a_failure_is_named_by_its_last_exception_line():
    from submitit.core.utils import FailedJobError

    from t5vae.grid.launchers import _reason

    trace = (
        'Traceback (most recent call last):\n  File "x.py", line 1\n'
        "papermill.exceptions.PapermillExecutionError: \n" + "-" * 75 + "\n"
        'Exception encountered at "In [6]":\nDataError    Traceback (most recent call last)\n'
        "----> 1 steps.prepare_base(spec)\nDataError: data directory /x/ptb does not exist."
    )
    error = FailedJobError(
        f"Job (task=0) failed during processing with trace:\n{'-' * 22}\n{trace}\n{'-' * 22}\n"
        "You can check full logs with 'job.stderr(0)'or at paths:\n  - /j/1_log.err\n  - /j/1_log.out"
    )
    assert _reason(error) == "DataError: data directory /x/ptb does not exist."
    assert _reason(RuntimeError("")) == "RuntimeError"
    assert _reason(RuntimeError("cancelled\nmore")) == "cancelled"


def test_jobs_in_threads_run_in_notebooks_and_leave_the_process_where_it_was(tmp_path):
    """Two notebooks executed at once in threads (the local launcher's --jobs 2), overlapping so
    that the first ends while the second runs: each kernel works in notebooks/, and the process's
    working directory is unchanged afterwards (papermill's cwd= would leave it in notebooks/)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import nbformat

    from t5vae.grid.jobs import NOTEBOOKS, execute

    def notebook(name: str, sleep_s: float) -> str:
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("out = ''")
        params.metadata["tags"] = ["parameters"]
        body = f"import os, time\ntime.sleep({sleep_s})\nopen(out, 'w').write(os.getcwd())"
        nb.cells = [params, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        path = tmp_path / name
        nbformat.write(nb, path)
        return str(path)  # absolute: NOTEBOOKS / path is path

    before = os.getcwd()
    with ThreadPoolExecutor(max_workers=2) as pool, open(tmp_path / "log", "w") as log:
        first = pool.submit(
            execute, notebook("a.ipynb", 0), tmp_path / "a", {"out": str(tmp_path / "a.cwd")}, log
        )
        time.sleep(0.5)  # the second enters while the first runs, and ends after it
        second = pool.submit(
            execute, notebook("b.ipynb", 4), tmp_path / "b", {"out": str(tmp_path / "b.cwd")}, log
        )
        first.result(), second.result()
    assert os.getcwd() == before
    assert (tmp_path / "a.cwd").read_text() == (tmp_path / "b.cwd").read_text() == str(NOTEBOOKS)


class _FakeHandle:
    """A submitit job that is already finished: a base raises, every other job succeeds."""

    def __init__(self, job_id, job):
        self.job_id, self.job, self.cancelled = job_id, job, False
        self.paths = type("Paths", (), {"stderr": f"/logs/{job_id}.err"})()

    def done(self):
        return True

    def result(self):
        if self.job.spec.stage == "base":
            raise RuntimeError("the base model failed to build")
        return "done"

    def cancel(self, check=False):
        self.cancelled = True


class _FakeExecutor:
    def __init__(self):
        self.submitted, self.handles = [], []

    def update_parameters(self, **kw):
        pass

    def submit(self, fn, job):
        self.submitted.append(job.key)
        self.handles.append(_FakeHandle(str(len(self.handles) + 1), job))
        return self.handles[-1]


def _grid_with_a_base(tmp_path):
    from t5vae.grid.jobs import Job
    from t5vae.grid.reproduce import with_bases

    phase1 = Job(steps.make_spec("smoke", "builtin", "phase1", "max_p0.15_frozen", tmp_path))
    phase2 = Job(
        steps.make_spec("smoke", "builtin", "phase2", "l0.5_p0.15", tmp_path), [phase1.key]
    )
    return with_bases([phase1, phase2])


@pytest.mark.parametrize("backend", ["local", "submitit", "submitit-slurm"])
def test_a_failing_base_fails_its_runs_under_every_backend(backend, tmp_path, monkeypatch):
    """One scheduler behind the launchers: when the base fails, every run of its dataset is
    reported failed because of it, none is trained, and each run's results file says so."""
    from t5vae.grid import launchers, scheduler

    jobs = _grid_with_a_base(tmp_path)
    base, runs = jobs[0], jobs[1:]
    ran = []
    if backend == "local":

        def fake_run(job):
            ran.append(job.key)
            if job.spec.stage == "base":
                raise RuntimeError("the base model failed to build")
            return "done"

        monkeypatch.setattr(scheduler, "run_job", fake_run)
        status = scheduler.schedule(jobs, scheduler.LocalBackend(1), max_running=1)
    else:
        executor = _FakeExecutor()
        status = launchers.run_with_executor(jobs, executor, dependencies=backend.endswith("slurm"))
        ran = [h.job.key for h in executor.handles if not h.cancelled]
    assert status[base.key].startswith("failed:") and "the base model failed" in status[base.key]
    assert ran == [base.key]
    for job in runs:
        assert status[job.key].startswith("failed: its base"), status[job.key]
        assert read_results(job.spec.results_file)["status"] == "failed"
