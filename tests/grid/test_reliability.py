"""Faults and bad input never lose work or produce silent wrong numbers."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO
from t5vae.config import params as P
from t5vae.evaluation.metrics import METRIC_KEYS
from t5vae.grid import reproduce, scheduler
from t5vae.notebook import steps
from t5vae.report.results import (
    ResultsError,
    collect,
    is_complete,
    provenance_warnings,
    read_results,
    write_failure,
    write_results,
)
from t5vae.report.tables import write_tables


def fake_metrics(value: float = 1.0) -> dict:
    return {k: value for k in METRIC_KEYS}


@pytest.fixture
def spec(tmp_path):
    return steps.make_spec("smoke", "builtin", "phase2", "l0.5_pnone", tmp_path)


def test_corrupted_or_truncated_results_are_named_and_never_loaded(spec):
    write_results(spec, fake_metrics())
    path = spec.results_file
    assert is_complete(path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # truncated
    assert not is_complete(path)  # reproduce recomputes it
    with pytest.raises(ResultsError, match=rf"{path.name}: corrupted or truncated"):
        read_results(path)
    with pytest.raises(ResultsError, match=path.name):
        collect(path.parents[2])
    path.write_text(
        json.dumps({"run_id": "x", "status": "ok", "metrics": {"rec": 1}, "provenance": {}})
    )
    with pytest.raises(ResultsError, match="lacks metrics"):
        read_results(path)


def test_failed_runs_are_listed_as_failed_not_omitted(tmp_path):
    ok = steps.make_spec("smoke", "builtin", "phase2", "l0.5_pnone", tmp_path)
    bad = steps.make_spec("smoke", "builtin", "phase2", "l3_p0.15", tmp_path)
    write_results(ok, fake_metrics())
    write_failure(bad, "TrainingDiverged: loss is nan at step 3")
    assert not is_complete(bad.results_file)
    md = write_tables(tmp_path / "results" / "smoke")["md"].read_text()
    assert "| λ=3, p=0.15 | 0 (1 failed) | max_p0.15_frozen | FAILED |" in md
    assert "## Failed runs" in md and "builtin seed 0 phase2-l3_p0.15" in md


def test_mixed_code_versions_or_parameters_are_flagged():
    base = {"git_commit": "a" * 40, "git_dirty": False, "profile_params": "p1", "env": "e",
            "status": "ok", "trained_commits": "a" * 40, "dataset": "d", "seed": 0, "run_id": "r"}  # fmt: skip
    df = pd.DataFrame([base, {**base, "git_commit": "b" * 40}, {**base, "profile_params": "p2"}])
    warnings = provenance_warnings(df)
    assert any("2 code versions" in w for w in warnings)
    assert any("different profile parameters" in w for w in warnings)
    assert provenance_warnings(pd.DataFrame([base, base])) == []


def test_results_files_are_written_atomically(spec, monkeypatch):
    """A crash while writing leaves the previous complete file, never a half-written one."""
    write_results(spec, fake_metrics(1.0))
    real_replace = os.replace

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_results(spec, fake_metrics(2.0))
    monkeypatch.setattr(os, "replace", real_replace)
    assert read_results(spec.results_file)["metrics"]["rec"] == 1.0


def test_a_second_reproduce_on_the_same_output_refuses(tmp_path):
    lock = tmp_path / "results" / "smoke" / ".lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SystemExit, match="another ./reproduce.sh is running"):
            reproduce.main(["--profile", "smoke", "--output-root", str(tmp_path), "--techniques", "vanilla",
                            "--phase1-variants", "max_pnone_frozen"])  # fmt: skip


def test_bad_parameters_stop_before_any_run(tmp_path, capsys):
    code = reproduce.main(
        ["--profile", "smoke", "--output-root", str(tmp_path), "--techniques", "l0.7_p0.9"]
    )
    assert code == 2
    assert "unknown techniques: l0.7_p0.9" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_grid_goes_on_after_a_failure_and_marks_dependents(tmp_path, monkeypatch):
    jobs = [
        reproduce.Job(steps.make_spec("smoke", "builtin", "phase1", "max_p0.15_frozen", tmp_path)),
        reproduce.Job(
            steps.make_spec("smoke", "builtin", "phase2", "l0.5_p0.15", tmp_path),
            ["builtin/seed0/phase1-max_p0.15_frozen"],
        ),  # fmt: skip
        reproduce.Job(steps.make_spec("smoke", "builtin", "phase2", "vanilla", tmp_path)),
    ]

    def fake_run(job):
        if job.spec.name == "max_p0.15_frozen":
            raise RuntimeError("loss is nan at step 3 (term: kl)")
        write_results(job.spec, fake_metrics())
        return "done"

    monkeypatch.setattr(scheduler, "run_job", fake_run)
    status = scheduler.schedule(jobs, scheduler.LocalBackend(1), max_running=1)
    assert status["builtin/seed0/phase2-vanilla"] == "done"
    assert status["builtin/seed0/phase1-max_p0.15_frozen"].startswith("failed: RuntimeError")
    assert (
        "its phase-1 run builtin/seed0/phase1-max_p0.15_frozen failed"
        in status["builtin/seed0/phase2-l0.5_p0.15"]
    )
    assert read_results(jobs[1].spec.results_file)["status"] == "failed"


def _kernels_under(pid: int) -> list[int]:
    """Jupyter kernel processes descending from `pid` (read from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out = []
    for p in parent:
        q = p
        while q in parent and q not in (0, 1, pid):
            q = parent[q]
        if q == pid and p != pid:
            try:
                if b"ipykernel" in Path(f"/proc/{p}/cmdline").read_bytes():
                    out.append(p)
            except OSError:
                continue
    return out


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint-grid", "sigkill-worker"])
def test_interrupted_reproduce_resumes_without_recomputing(tmp_path, how):
    """Interrupt mid-grid (Ctrl-C of the whole grid, or SIGKILL of the kernel running a notebook),
    then run again: finished runs are kept, the rest completes (a killed run is recorded as failed,
    then resumed), and the metrics equal the committed (uninterrupted) smoke reference."""
    args = [sys.executable, "-m", "t5vae.grid.reproduce", "--profile", "smoke", "--output-root", str(tmp_path),
            "--phase1-variants", "max_pnone_frozen", "--techniques", "l0.5_pnone", "--no-tables"]  # fmt: skip
    env = {**os.environ, "TQDM_DISABLE": "1"}
    first = tmp_path / "results" / "smoke" / "builtin" / "seed0" / "phase1-max_pnone_frozen.json"
    second = tmp_path / "results" / "smoke" / "builtin" / "seed0" / "phase2-l0.5_pnone.json"
    # a job started in the background by a non-interactive shell (CI) inherits SIGINT ignored:
    # restore the default so that the grid sees Ctrl-C as a user's terminal would send it
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.time() + 300
    # the second run starts only once the first has written its results, so every kernel seen
    # before that belongs to the base or the first run (its kernel may outlive its results file)
    finished = set()
    while not is_complete(first) and time.time() < deadline and proc.poll() is None:
        finished.update(_kernels_under(proc.pid))
        time.sleep(0.2)
    assert is_complete(first), "the first run did not finish"
    kernels = []  # wait until a kernel of the second run is up, then interrupt at once
    while not kernels and proc.poll() is None and time.time() < deadline:
        kernels = [k for k in _kernels_under(proc.pid) if k not in finished]
        time.sleep(0.05)
    assert kernels, "no notebook kernel of the second run was seen"
    if how == "sigint-grid":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        for k in kernels:
            os.kill(k, signal.SIGKILL)
    proc.wait(timeout=300)
    assert proc.returncode != 0, "the interruption did not hit a running notebook"
    stamp = first.stat().st_mtime_ns
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "seed0/phase1-max_pnone_frozen: skipped (results exist)" in done.stdout
    assert first.stat().st_mtime_ns == stamp
    for path in (first, second):
        ref = read_results(REPO / "reference" / "smoke" / "builtin" / "seed0" / path.name)[
            "metrics"
        ]
        got = read_results(path)["metrics"]
        for key in METRIC_KEYS:
            assert got[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-3), (path.name, key)


def test_data_problems_are_reported_before_training(tmp_path, capsys):
    (tmp_path / "data" / "ptb").mkdir(parents=True)
    (tmp_path / "data" / "ptb" / "train.txt").write_text("a b\n")
    code = reproduce.main(["--profile", "smoke", "--datasets", "ptb", "--data-dir", str(tmp_path / "data"),
                           "--output-root", str(tmp_path), "--techniques", "vanilla"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "valid.txt does not exist" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_overrides_reach_the_notebooks_and_their_own_folder(tmp_path, capsys):
    """`--set` values go through papermill into every notebook: the runs train with them, write
    to results/<profile>+<hash>/ and record them; the plain profile's results are not touched."""
    args = ["--profile", "smoke", "--output-root", str(tmp_path), "--phase1-variants", "max_pnone_frozen",
            "--techniques", "vanilla", "--set", "phase2.epochs=1", "--no-tables"]  # fmt: skip
    assert reproduce.main(args) == 0
    folders = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(folders) == 1 and folders[0].startswith("smoke+")
    record = read_results(
        tmp_path / "results" / folders[0] / "builtin" / "seed0" / "phase2-vanilla.json"
    )
    assert record["provenance"]["params"]["profile"]["overrides"] == ["phase2.epochs=1"]
    assert len(record["history"]) == 1  # smoke trains phase 2 for 2 epochs without the override


def test_a_profile_can_track_a_run_with_tensorboard(tmp_path):
    """tracking.log_with in the profile (here via --set) reaches training: the run's folder gets
    TensorBoard event files."""
    spec = steps.make_spec("smoke", "builtin", "phase1", "max_pnone_frozen", tmp_path,
                        overrides=["tracking.log_with=tensorboard"])  # fmt: skip
    steps.ensure_trained(spec, progress=False)
    assert list((spec.run_dir / "tracking").rglob("events.out.tfevents*"))


def test_profile_parameters_compare_as_this_code_reads_them():
    """A results file written before a profile field existed is not 'other parameters': the
    missing field takes its default (which reproduces the old behaviour); a changed value is."""
    from dataclasses import asdict

    from t5vae.report.results import profile_setting

    now = asdict(P.load_profile("smoke"))  # (its phase1 keeps the defaults)
    old = {k: v for k, v in now.items() if k not in ("released", "tracking", "launcher")}
    old["phase1"] = {k: v for k, v in now["phase1"].items() if k != "memory_projection"}
    assert profile_setting(old) == profile_setting(now)
    assert profile_setting(
        {**now, "description": "another text", "seeds": [0, 1]}
    ) == profile_setting(now)
    longer = {**now, "phase1": {**now["phase1"], "epochs": now["phase1"]["epochs"] + 1}}
    assert profile_setting(longer) != profile_setting(now)
    trained = {**now, "phase1": {**now["phase1"], "memory_projection": "trainable"}}
    assert profile_setting(trained) != profile_setting(now)
