"""The grid's one scheduler: jobs with dependencies, run by a backend.

A grid is a list of jobs (grid/jobs.py): each dataset's base (tokenizer + base model), then the
phase-1 runs, then the phase-2 runs, each job naming the jobs it needs (`depends`). `schedule`
starts every job whose dependencies are done, `max_running` at a time, and records each job's
status; a job whose dependency failed is recorded failed without running ("its base ... failed",
"its phase-1 run ... failed"), and a run whose results file is complete is skipped. The same
rules hold for every backend:

LocalBackend      threads on this machine (`--jobs` at a time), each running jobs.run_job
SubmititBackend   submitit jobs (grid/launchers.py): Slurm, or submitit's local executor. With
                  Slurm a job is submitted as soon as its dependencies are submitted, with an
                  afterok dependency, so that the whole grid queues at once; a failure cancels
                  the dependents that were already queued.
"""

from __future__ import annotations

import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from t5vae.grid.jobs import Job, run_job, stop_running_kernels
from t5vae.report.results import is_complete, write_failure

SKIPPED = "skipped (results exist)"


class LocalBackend:
    """Jobs in threads of this process (each runs its notebooks in its own Jupyter kernel)."""

    submit_early = False  # a job starts when its dependencies are done

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))

    def submit(self, job: Job, after: list) -> object:
        return self.pool.submit(run_job, job)

    def wait(self, handles: list) -> list:
        return list(wait(handles, return_when=FIRST_COMPLETED)[0])

    def result(self, handle) -> str:
        return handle.result()

    def failure(self, error: Exception, handle) -> str:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        return f"failed: {type(error).__name__}: {last}"

    def details(self, error: Exception) -> str:
        return "\n" + "".join(traceback.format_exception(error, limit=3))

    def cancel(self, handle) -> None:
        handle.cancel()

    def stop(self, handles: list) -> None:
        stop_running_kernels()  # their notebooks fail at once; the runs resume from last/
        for handle in handles:
            handle.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _is_base(job: Job) -> bool:
    return job.spec.stage == "base"


def _dependency_failed(job: Job, key: str) -> str:
    what = "its base" if key.rsplit("/", 1)[-1].startswith("base-") else "its phase-1 run"
    return f"failed: {what} {key} failed"


@dataclass
class Schedule:
    """A grid being run: jobs waiting, running (key -> backend handle), finished (status)."""

    jobs: list[Job]
    backend: object
    max_running: int | None = None  # None: as many as the backend takes (a cluster queues them)
    t0: float = field(default_factory=time.time)
    status: dict[str, str] = field(default_factory=dict)
    running: dict = field(default_factory=dict)  # key -> handle
    started: dict[str, float] = field(default_factory=dict)
    work_s: float = 0.0  # wall time of the runs computed (for the estimate of time left)
    worked: int = 0

    def __post_init__(self):
        self.by_key = {j.key: j for j in self.jobs}
        self.pending = dict(self.by_key)
        unknown = sorted({d for j in self.jobs for d in j.depends} - set(self.by_key))
        if unknown:  # (would wait forever)
            raise ValueError(f"runs depend on runs that are not in the grid: {', '.join(unknown)}")
        self.runs = sum(not _is_base(j) for j in self.jobs)

    def _print(self, job: Job, text: str) -> None:
        done = sum(not _is_base(self.by_key[k]) for k in self.status)
        counter = f"[{done}/{self.runs}] " if not _is_base(job) else "[base] "
        print(f"{counter}{job.key}: {text}", flush=True)

    def _finish(self, job: Job, status: str, note: str = "") -> None:
        self.status[job.key] = status
        if status.startswith("failed") and not _is_base(job):
            write_failure(job.spec, status.split("\n", 1)[0] if "\n" in status else status)
        self._print(job, status.split("\n", 1)[0] + note)

    def _ready(self, job: Job) -> bool:
        if self.backend.submit_early:  # queued behind its dependencies (afterok)
            return all(d in self.running or d in self.status for d in job.depends)
        return all(d in self.status for d in job.depends)

    def start_ready(self) -> None:
        for key, job in list(self.pending.items()):
            if self.max_running is not None and len(self.running) >= self.max_running:
                return
            if not self._ready(job):
                continue
            del self.pending[key]
            failed = [d for d in job.depends if self.status.get(d, "").startswith("failed")]
            if failed:
                self._finish(job, _dependency_failed(job, failed[0]))
            elif not _is_base(job) and is_complete(job.spec.results_file, job.spec.identity):
                self._finish(job, SKIPPED)
            else:
                after = [self.running[d] for d in job.depends if d in self.running]
                self.started[key] = time.time()
                self.running[key] = self.backend.submit(job, after)
                self._print(job, "started")

    def collect(self, finished: list) -> None:
        for key, handle in [(k, h) for k, h in self.running.items() if h in finished]:
            if key not in self.running:  # cancelled above: a dependency of it failed
                continue
            del self.running[key]
            job = self.by_key[key]
            try:
                status = self.backend.result(handle)
            except Exception as e:  # the run is marked failed in the tables, the grid goes on
                status = self.backend.failure(e, handle)
                if not _is_base(job):
                    write_failure(job.spec, status + self.backend.details(e))
                self._cancel_dependents(job)
            note = ""
            if not _is_base(job):
                self.worked += 1
                self.work_s += time.time() - self.started[key]
                note = f" (elapsed {time.time() - self.t0:.0f}s, about {self._left():.0f}s left)"
            self.status[key] = status
            self._print(job, status.split("\n", 1)[0] + note)

    def _cancel_dependents(self, failed: Job) -> None:
        """Dependents already queued behind a failed job (afterok) would wait forever."""
        for other in self.jobs:
            if failed.key in other.depends and other.key in self.running:
                self.backend.cancel(self.running.pop(other.key))
                self._finish(other, _dependency_failed(other, failed.key))

    def _left(self) -> float:
        todo = sum(
            1 for j in self.pending.values()
            if not _is_base(j) and not is_complete(j.spec.results_file, j.spec.identity)
        )  # fmt: skip
        width = self.max_running or max(1, len(self.running))
        return self.work_s / max(1, self.worked) * (todo + len(self.running)) / width


def schedule(jobs: list[Job], backend, max_running: int | None = None) -> dict[str, str]:
    """Run every job through `backend` (see the module docstring); each job's status."""
    grid = Schedule(jobs, backend, max_running)
    try:
        while grid.pending or grid.running:
            grid.start_ready()
            if grid.running:
                grid.collect(backend.wait(list(grid.running.values())))
    except KeyboardInterrupt:  # stop now: start nothing more, stop what runs
        backend.stop(list(grid.running.values()))
        raise
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    return grid.status
