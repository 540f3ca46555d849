"""Where the grid's runs execute: `--launcher local | slurm | submitit-local`.

local           (default) threads on this machine, `--jobs` at a time (scheduler.LocalBackend).
slurm           one submitit job per run (submitit is the maintained Slurm executor: no sbatch
                scripts), resources from the profile's `launcher:` section or --set; every job
                depends on the jobs it needs (afterok), so the whole grid is submitted at once. A
                preempted or timed-out job is requeued by submitit (RunJob is Checkpointable)
                and resumes from the run's last/.
submitit-local  submitit's local executor (jobs as local processes): the code path of a cluster,
                which the tests run; it has no job dependencies, so a job is submitted when the
                jobs it needs have ended.

The scheduler (scheduler.py) is the same for all: a complete results file means skip (checked
before submitting and in the job), a failed job is recorded FAILED with its log path, and so are
the runs that needed it; tables and comparison are built when the jobs are done, or from whatever
finished with `./reproduce.sh --collect`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import submitit

from t5vae.grid.jobs import Job, run_job
from t5vae.grid.scheduler import schedule
from t5vae.report.results import is_complete

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


class SubmititBackend:
    """Jobs through a submitit executor (scheduler.schedule's backend)."""

    def __init__(self, executor, dependencies: bool):
        self.executor = executor
        self.submit_early = dependencies  # Slurm: queue behind the dependencies (afterok)

    def submit(self, job: Job, after: list):
        ids = [h.job_id for h in after] if self.submit_early else []
        if ids:
            self.executor.update_parameters(
                slurm_additional_parameters={"dependency": "afterok:" + ":".join(ids)}
            )
        handle = self.executor.submit(RunJob(), job)
        if ids:
            self.executor.update_parameters(slurm_additional_parameters={})
        print(f"{job.key}: submitted as job {handle.job_id}" + (f" after {', '.join(ids)}" if ids else ""),
              flush=True)  # fmt: skip
        return handle

    def wait(self, handles: list) -> list:
        while True:
            done = [h for h in handles if h.done()]
            if done:
                return done
            time.sleep(POLL_S)

    def result(self, handle) -> str:
        return handle.result()

    def failure(self, error: Exception, handle) -> str:
        return f"failed: job {handle.job_id}: {_reason(error)[:300]}; log: {handle.paths.stderr}"

    def details(self, error: Exception) -> str:
        return ""

    def cancel(self, handle) -> None:
        handle.cancel(check=False)

    def stop(self, handles: list) -> None:
        for handle in handles:
            handle.cancel(check=False)


def run_with_executor(jobs: list[Job], executor, dependencies: bool) -> dict[str, str]:
    """Every job through `executor` (the scheduler with a SubmititBackend); each job's status."""
    return schedule(jobs, SubmititBackend(executor, dependencies))


def _reason(error: Exception) -> str:
    """The line that says why a job failed: the last exception line (``SomeError: message``) in
    the error's text, which for submitit's FailedJobError is the job's traceback (for a notebook,
    the cell's own exception that papermill reports), else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (raised or lines or [type(error).__name__])[-1 if raised else 0]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Killed)\b:?")
