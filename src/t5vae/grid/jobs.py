"""One run of the grid as a job: its notebooks executed with papermill (training, then evaluation).

A job is what `reproduce` runs in a thread for the local launcher; `run_job` is all a job needs,
so any launcher that can call a Python function in another process can run it (launchers.py).
`write_timing` reports where the jobs' time went (timing.csv, timing.md), `write_plan_check` how
that compares with the grid's plan (--plan's plan.json: plan_check.md).
"""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from t5vae.config.paths import NOTEBOOKS
from t5vae.config.run import RunSpec, write_run_file
from t5vae.report.results import is_complete, read_results
from t5vae.utils.files import atomic_write_text

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
    # The kernel starts in notebooks/ through nbclient's `resources` (its cwd), not papermill's
    # `cwd=`: that one os.chdir()s the whole process, and two jobs in threads (--jobs 2) can leave
    # the process in notebooks/ (A enters, B enters and records notebooks/, A restores, B restores
    # notebooks/), after which every relative path of the caller is wrong.
    papermill.execute_notebook(
        str(NOTEBOOKS / notebook), str(out_dir / notebook), parameters=parameters, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}}, progress_bar=False, log_output=True,
        stdout_file=log, stderr_file=log, **({"km": km} if km is not None else {}),
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


def notebook_parameters(spec: RunSpec) -> dict:
    """What a run's notebooks receive: the path of its resolved run.json (written here), and the
    run's names, which the notebook shows but does not resolve again."""
    return {"run_config": str(write_run_file(spec)), "profile": spec.profile.name.split("+")[0],
            "dataset": spec.dataset.name, "seed": spec.seed, "output_root": str(spec.root)}  # fmt: skip


def run_job(job: Job) -> str:
    """Train (01 or 02) and evaluate (03) one run; job.timing gets each notebook's wall time.
    A base job (stage "base") builds the dataset's tokenizer and base model (00)."""
    spec = job.spec
    if spec.stage == "base":
        spec.dataset_dir.mkdir(parents=True, exist_ok=True)
        with open(spec.dataset_dir / "base.log", "a") as log:
            job.timing["base_notebook_s"] = execute(
                NB_BASE, spec.base_dir, notebook_parameters(spec), log
            )
        return "done"
    nb = NB_PHASE1 if spec.stage == "phase1" else NB_PHASE2
    key = "variant" if spec.stage == "phase1" else "technique"
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    run = notebook_parameters(spec)
    with open(spec.run_dir / "run.log", "a") as log, shared_kernel() as km:
        job.timing["train_notebook_s"] = execute(nb, spec.run_dir, {**run, key: spec.name}, log, km)
        job.timing["eval_notebook_s"] = execute(
            NB_EVAL, spec.run_dir, {**run, "stage": spec.stage, "name": spec.name}, log, km
        )
    if not is_complete(spec.results_file, spec.identity):
        raise RuntimeError(f"{NB_EVAL} finished without writing {spec.results_file}")
    return "done"


def write_timing(
    results_dir: Path, done: list[Job], base_s: float, grid_s: float, n_jobs: int
) -> None:
    """timing.csv (per run trained by this call: both notebooks' wall time, training and evaluation
    inside them) and timing.md (per stage, summed over runs, and the grid's wall time). A run this
    call resumed counts the epochs this call trained (this_call_training_s).

    overhead_s = both notebooks' wall time - training - evaluation: kernel start, imports,
    loading data and the base, writing checkpoints outside the epochs.
    """
    import pandas as pd

    from t5vae.report.results import cpu_model

    rows = []
    for job in done:
        record = read_results(job.spec.results_file)
        prov = record["provenance"]
        train_s, eval_s = this_call_training_s(record), prov.get("eval_time_s") or 0.0
        notebooks = job.timing.get("train_notebook_s", 0.0) + job.timing.get("eval_notebook_s", 0.0)
        rows.append({"run": job.key, "stage": job.spec.stage, **job.timing, "train_s": train_s,
                     "eval_s": eval_s, "overhead_s": notebooks - train_s - eval_s,
                     "peak_rss_mb": prov.get("peak_rss_mb"), "peak_cuda_mb": prov.get("peak_cuda_mb")})  # fmt: skip
    if not rows:
        return
    df = pd.DataFrame(rows)
    atomic_write_text(results_dir / "timing.csv", df.to_csv(index=False))
    seeds = sorted({j.spec.seed for j in done})
    lines = [f"# Time per stage: {results_dir.name}", "",
             f"{len(df)} runs (seeds {', '.join(map(str, seeds))}), {n_jobs} at a time, on "
             f"{cpu_model()} ({os.cpu_count()} cores); seconds summed over the runs of a stage, "
             "peak memory the largest of a run's process (timing.csv: per run).", "",
             "| stage | runs | training (s) | evaluation (s) | notebook overhead (s) | peak RSS (MB) | peak GPU (MB) |",
             "|---|---|---|---|---|---|---|", f"| base (tokenizer + base model) | - | {base_s:.0f} | - | - | - | - |"]  # fmt: skip
    stages = df.groupby("stage").agg(runs=("run", "size"), train_s=("train_s", "sum"), eval_s=("eval_s", "sum"),
                                     overhead_s=("overhead_s", "sum"), peak_rss_mb=("peak_rss_mb", "max"),
                                     peak_cuda_mb=("peak_cuda_mb", "max"))  # fmt: skip
    for stage, g in stages.iterrows():
        gpu = g.peak_cuda_mb
        lines.append(f"| {stage} | {g.runs} | {g.train_s:.0f} | {g.eval_s:.0f} | {g.overhead_s:.0f} | "
                     f"{g.peak_rss_mb:.0f} | {'-' if pd.isna(gpu) else f'{gpu:.0f}'} |")  # fmt: skip
    lines += [
        "",
        f"Wall time of the base and the runs: {grid_s:.0f} s ({grid_s / 60:.1f} min).",
        "",
    ]
    atomic_write_text(results_dir / "timing.md", "\n".join(lines))
    print(f"time: base {base_s:.0f}s; " + "; ".join(
        f"{stage} {g.runs} runs: training {g.train_s:.0f}s, evaluation {g.eval_s:.0f}s, "
        f"notebook overhead {g.overhead_s:.0f}s, peak RSS {g.peak_rss_mb:.0f} MB"
        for stage, g in stages.iterrows()) + f"; wall {grid_s:.0f}s")  # fmt: skip


def this_call_training_s(record: dict) -> float:
    """Training seconds of the epochs after the last start recorded in trained_with (the call
    that trained last: a run resumed at epoch e counts epochs e+1...; the earlier ones were timed
    by the calls that trained them)."""
    starts = record["provenance"].get("trained_with") or [{}]
    since = starts[-1].get("from_epoch") or 0
    return sum(h.get("wall_time_s", 0.0) for h in record.get("history") or [] if h["epoch"] > since)


PLAN_JSON = "plan.json"  # --plan's estimate, seconds per dataset and stage (estimate())


def plan_against_measured(results_dir: Path, jobs: list) -> list[str]:
    """Markdown lines: per dataset and stage, the plan's training and test-evaluation time (plan.json,
    epochs at their limit) beside the time the runs' results files record (train_time_s,
    eval_time_s; the base: pretrain.json's wall_time_s), summed over runs, with their ratio;
    [] without a plan. A stage whose runs are not all finished is compared over those that are."""
    plan_file = Path(results_dir) / PLAN_JSON
    if not plan_file.is_file():
        return []
    plan = json.loads(plan_file.read_text())
    rows = []
    for ds, est in sorted(plan["datasets"].items()):
        mine = [j for j in jobs if j.spec.dataset.name == ds]
        pretrain = mine[0].spec.base_dir / "t5" / "pretrain.json" if mine else None
        if pretrain and pretrain.is_file():
            base_s = json.loads(pretrain.read_text())["wall_time_s"]
            rows.append(_row(ds, "base", "1 of 1", est["base"], base_s, None, None))
        for stage in ("phase1", "phase2"):
            planned = [j for j in mine if j.spec.stage == stage]
            done = [
                read_results(j.spec.results_file)
                for j in planned
                if is_complete(j.spec.results_file, j.spec.identity)
            ]
            if not done:
                continue
            share = len(done) / len(planned)  # the plan's stage total, for the runs that finished
            prov = [r["provenance"] for r in done]
            rows.append(_row(ds, stage, f"{len(done)} of {len(planned)}", est[f"{stage}_train"] * share,
                             sum(p.get("train_time_s") or 0.0 for p in prov), est[f"{stage}_test"] * share,
                             sum(p.get("eval_time_s") or 0.0 for p in prov)))  # fmt: skip
    if not rows:
        return []
    return [f"# Planned against measured: {Path(results_dir).name}", "",
            f"The plan (`--plan`, {plan['jobs']} runs at a time, written {plan['written']}; epochs at "
            "their limit) against the runs' own clocks, minutes summed over the runs that finished; "
            "measured / planned. The planned training includes each epoch's validation and "
            "checkpoint; the runs' clocks (train_time_s) count each epoch's training only. Runs that "
            "stopped early ran fewer epochs than planned.", "",
            "| dataset | stage | runs | training planned | measured | ratio | test evaluation planned | measured | ratio |",
            "|---|---|---|---|---|---|---|---|---|", *rows, ""]  # fmt: skip


def write_interpolations(results_dir: Path, jobs: list) -> Path | None:
    """interpolation.json in results_dir: for each dataset with published targets, the best row's
    (report.published.best_row, first seed) lerp between the first two test sentences of its
    results file (notebook.steps.interpolation_example); literature.md shows it. A dataset whose
    best run's checkpoint is not here keeps the entry it had. None when there is nothing to write."""
    from t5vae.config.params import load_published
    from t5vae.notebook.steps import interpolation_example
    from t5vae.report.published import INTERPOLATION_FILE, best_row
    from t5vae.report.results import collect

    out = Path(results_dir) / INTERPOLATION_FILE
    found = json.loads(out.read_text()) if out.is_file() else {}
    df = collect(results_dir)
    ok = df[(df["status"] == "ok") & (df["stage"] == "phase2")] if not df.empty else df
    specs = {(j.spec.dataset.name, j.spec.seed, j.spec.run_id): j.spec for j in jobs}
    for dataset in sorted(ok["dataset"].unique()) if not ok.empty else []:
        pub = load_published(dataset)
        if pub is None or not pub.targets:
            continue
        best = best_row(ok[ok["dataset"] == dataset])[0].iloc[0]
        spec = specs.get((dataset, int(best["seed"]), best["run_id"]))
        pairs = (read_results(best["path"]).get("examples") or {}).get("reconstructions") or []
        if spec is None or not spec.best_dir.is_dir() or len(pairs) < 2:
            continue
        if found.get(dataset, {}).get("identity") == spec.identity:
            continue  # made from this very run already
        found[dataset] = interpolation_example(spec, pairs[0]["input"], pairs[1]["input"])
    if not found:
        return None
    atomic_write_text(out, json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    return out


def write_plan_check(results_dir: Path, jobs: list) -> Path | None:
    """plan_check.md in results_dir (plan_against_measured), or None without a plan or a run."""
    lines = plan_against_measured(results_dir, jobs)
    if not lines:
        return None
    atomic_write_text(Path(results_dir) / "plan_check.md", "\n".join(lines))
    return Path(results_dir) / "plan_check.md"


def _row(ds, stage, runs_done, train_plan, train_s, eval_plan, eval_s) -> str:
    def pair(plan, got):
        if plan is None:
            return "- | - | -"
        return (
            f"{plan / 60:.1f} | {got / 60:.1f} | {got / plan:.2f}"
            if plan
            else f"0 | {got / 60:.1f} | -"
        )

    return f"| {ds} | {stage} | {runs_done} | {pair(train_plan, train_s)} | {pair(eval_plan, eval_s)} |"
