"""Where the grid's runs execute, behind one interface: `--launcher local | slurm`.

local   (default) runs in threads on this machine, `--jobs` at a time (reproduce._run_grid).
slurm   one submitit job per run (submitit is the maintained Slurm executor: no sbatch scripts),
        resources from the profile's `launcher:` section or --set; every phase-2 job depends on
        its phase-1 job (afterok), so the whole grid is submitted at once. A preempted or timed-out
        job is requeued by submitit (RunJob is Checkpointable) and resumes from the run's last/.

Everything that makes the local grid trustworthy holds per job: a complete results file means
skip (checked before submitting and in the job), results are written atomically, a failed job is
recorded FAILED with its log path (and the phase-2 runs that needed it), tables and comparison are
built when the jobs are done, or from whatever finished with `./reproduce.sh --collect`.
The tests run the same code path with submitit's LocalExecutor (jobs as local processes); that
executor has no job dependencies, so there a phase-2 job is submitted when its phase-1 job ends.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from t5vae.jobs import Job, run_job
from t5vae.results import is_complete, write_failure

POLL_S = 2.0


class RunJob(submitit.helpers.Checkpointable):
    """What a cluster job runs: one run's notebooks (jobs.run_job). On preemption or timeout
    submitit calls `checkpoint`, which resubmits the same call: training resumes from last/."""

    def __call__(self, job: Job) -> str:
        if job.spec.stage != "base" and is_complete(job.spec.results_file, job.spec.identity):
            return "skipped (results exist)"
        return run_job(job)


def slurm_executor(folder: Path, launcher) -> submitit.AutoExecutor:
    """A Slurm executor with the profile's resources (params.LauncherParams)."""
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    extra = {k: v for k, v in {"account": launcher.account}.items() if v}
    executor.update_parameters(slurm_partition=launcher.partition, gpus_per_node=launcher.gpus_per_node,
                               cpus_per_task=launcher.cpus_per_task, mem_gb=launcher.mem_gb,
                               timeout_min=launcher.timeout_min, slurm_additional_parameters=extra,
                               name="t5vae")  # fmt: skip
    return executor


def describe(jobs: list[Job], launcher, name: str) -> str:
    """--plan with a cluster launcher: the jobs, their resources and dependencies (nothing submitted)."""
    lines = [f"{len(jobs)} jobs on {name}: partition {launcher.partition}, {launcher.gpus_per_node} GPU, "
             f"{launcher.cpus_per_task} CPUs, {launcher.mem_gb} GB, {launcher.timeout_min} min each"]  # fmt: skip
    for job in jobs:
        after = f"  after {', '.join(job.depends)}" if job.depends else ""
        done = (
            "  (complete: not submitted)"
            if is_complete(job.spec.results_file, job.spec.identity)
            else ""
        )
        lines.append(f"  {job.key}{after}{done}")
    return "\n".join(lines)


@dataclass
class Submitted:
    """The state of a grid run by an executor: waiting, submitted (key -> job), finished."""

    jobs: list[Job]
    status: dict[str, str] = field(default_factory=dict)
    handles: dict = field(default_factory=dict)  # key -> submitit job

    def ready(self, job: Job, dependencies: bool) -> bool:
        """Can this job be submitted now? With dependencies: once its phase-1 job is submitted."""
        if dependencies:
            return all(d in self.handles or d in self.status for d in job.depends)
        return all(d in self.status for d in job.depends)


def run_with_executor(jobs: list[Job], executor, dependencies: bool) -> dict[str, str]:
    """Submit every run (phase-2 runs after, or depending on, their phase-1 run), wait for all,
    record failures with their log paths; returns each run's status."""
    grid = Submitted(jobs)
    waiting = list(jobs)
    while waiting or grid.handles:
        for job in list(waiting):
            if not grid.ready(job, dependencies):
                continue
            waiting.remove(job)
            deps = [grid.status.get(d, "") for d in job.depends]
            if any(d.startswith("failed") for d in deps):
                _fail(grid, job, f"failed: its phase-1 run {job.depends[0]} failed")
            elif job.spec.stage != "base" and is_complete(job.spec.results_file, job.spec.identity):
                grid.status[job.key] = "skipped (results exist)"
                print(f"{job.key}: skipped (results exist)", flush=True)
            else:
                grid.handles[job.key] = _submit(executor, job, grid, dependencies)
        for key, handle in list(grid.handles.items()):
            if handle.done():
                del grid.handles[key]
                _collect(grid, next(j for j in jobs if j.key == key), handle)
        if grid.handles:
            time.sleep(POLL_S)
    return grid.status


def _submit(executor, job: Job, grid: Submitted, dependencies: bool):
    after = [grid.handles[d].job_id for d in job.depends if d in grid.handles]
    if dependencies and after:
        executor.update_parameters(
            slurm_additional_parameters={"dependency": "afterok:" + ":".join(after)}
        )
    handle = executor.submit(RunJob(), job)
    if dependencies and after:
        executor.update_parameters(slurm_additional_parameters={})
    print(f"{job.key}: submitted as job {handle.job_id}" + (f" after {', '.join(after)}" if after else ""),
          flush=True)  # fmt: skip
    return handle


def _reason(error: Exception) -> str:
    """The line that says why a job failed: the last exception line (``SomeError: message``) in
    the error's text, which for submitit's FailedJobError is the job's traceback (for a notebook,
    the cell's own exception that papermill reports), else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (raised or lines or [type(error).__name__])[-1 if raised else 0]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Killed)\b:?")


def _collect(grid: Submitted, job: Job, handle) -> None:
    try:
        grid.status[job.key] = handle.result()
        print(f"{job.key}: {grid.status[job.key]} (job {handle.job_id})", flush=True)
    except Exception as e:  # the job failed, was cancelled or killed: say where its log is
        _fail(
            grid,
            job,
            f"failed: job {handle.job_id}: {_reason(e)[:300]}; log: {handle.paths.stderr}",
        )
        for other in grid.jobs:  # its dependents would wait forever (afterok): cancel them
            if job.key in other.depends and other.key in grid.handles:
                grid.handles.pop(other.key).cancel(check=False)
                _fail(grid, other, f"failed: its phase-1 run {job.key} failed")


def _fail(grid: Submitted, job: Job, message: str) -> None:
    write_failure(job.spec, message)
    grid.status[job.key] = message
    print(f"{job.key}: {message}", flush=True)
