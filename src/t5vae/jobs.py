"""One run of the grid as a job: its notebooks executed with papermill (training, then evaluation).

A job is what `reproduce` runs in a thread for the local launcher; `run_job` is all a job needs,
so any launcher that can call a Python function in another process can run it.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from t5vae.results import is_complete
from t5vae.runs import REPO, RunSpec

NOTEBOOKS = REPO / "notebooks"
NB_BASE, NB_PHASE1, NB_PHASE2 = (
    "00_base_model.ipynb",
    "01_phase1_encoder.ipynb",
    "02_phase2_vae.ipynb",
)
NB_EVAL, NB_TABLES = "03_evaluate.ipynb", "04_tables.ipynb"


@dataclass
class Job:
    spec: RunSpec
    depends: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.spec.key


def execute(notebook: str, out_dir: Path, parameters: dict, log, km=None) -> float:
    """Run one notebook with papermill (in kernel `km` if given); returns its wall time in s."""
    import papermill

    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(NOTEBOOKS / notebook), str(out_dir / notebook), parameters=parameters, kernel_name="python3",
        cwd=str(NOTEBOOKS), progress_bar=False, log_output=True, stdout_file=log, stderr_file=log,
        **({"km": km} if km is not None else {}),
    )  # fmt: skip
    return time.time() - t0


@contextmanager
def shared_kernel():
    """One Jupyter kernel for a run's two notebooks (training, then evaluation).

    A kernel start plus importing torch and transformers costs about 8 s per notebook, as much as a
    smoke run computes (timing.csv, README "Time"); sharing saves one of the two per run. Every
    notebook still defines all it uses: nbval and users run each in a fresh kernel.
    """
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name="python3")
    _running.add(km)
    try:
        yield km
    finally:
        _running.discard(km)
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)


_running: set = set()  # kernel managers of the jobs running now


def stop_running_kernels() -> None:
    """Kill the kernels of running jobs (Ctrl-C of the grid): their notebooks fail at once instead
    of running to the end, and their runs resume from last/ at the next ./reproduce.sh."""
    for km in list(_running):
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        if pid:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def common_parameters(spec: RunSpec) -> dict:
    return {"profile": spec.profile.name.split("+")[0], "dataset": spec.dataset.name,
            "seed": spec.seed, "overrides": spec.profile.overrides or None,
            "output_root": str(spec.root), "data_dir": spec.data_dir}  # fmt: skip


def run_job(job: Job) -> str:
    """Train (01 or 02) and evaluate (03) one run; job.timing gets each notebook's wall time.
    A base job (stage "base") builds the dataset's tokenizer and base model (00)."""
    spec = job.spec
    if spec.stage == "base":
        spec.dataset_dir.mkdir(parents=True, exist_ok=True)
        with open(spec.dataset_dir / "base.log", "a") as log:
            job.timing["base_notebook_s"] = execute(
                NB_BASE, spec.base_dir, common_parameters(spec), log
            )
        return "done"
    nb = NB_PHASE1 if spec.stage == "phase1" else NB_PHASE2
    key = "variant" if spec.stage == "phase1" else "technique"
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    with open(spec.run_dir / "run.log", "a") as log, shared_kernel() as km:
        job.timing["train_notebook_s"] = execute(
            nb, spec.run_dir, {**common_parameters(spec), key: spec.name}, log, km
        )
        job.timing["eval_notebook_s"] = execute(
            NB_EVAL, spec.run_dir, {**common_parameters(spec), "stage": spec.stage, "name": spec.name}, log, km
        )  # fmt: skip
    if not is_complete(spec.results_file, spec.identity):
        raise RuntimeError(f"{NB_EVAL} finished without writing {spec.results_file}")
    return "done"
