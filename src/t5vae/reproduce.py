"""Run the experiment grid with papermill and build the tables: `./reproduce.sh [options]`.

For each dataset: 00_base (tokenizer + base T5), then every phase-1 variant (01 + 03) and every
phase-2 technique (02 + 03) after the phase-1 run it starts from, then 04_tables.
A run whose results file is complete is skipped; an interrupted run resumes from its last
checkpoint; a failed run is recorded as failed and the grid goes on.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from t5vae import params as P
from t5vae import pipeline as pl
from t5vae.results import is_complete, write_failure

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
NB_BASE, NB_PHASE1, NB_PHASE2 = (
    "00_base_model.ipynb",
    "01_phase1_encoder.ipynb",
    "02_phase2_vae.ipynb",
)
NB_EVAL, NB_TABLES = "03_evaluate.ipynb", "04_tables.ipynb"


@dataclass
class Job:
    spec: pl.RunSpec
    depends: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.spec.dataset.name}/{self.spec.run_id}"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="./reproduce.sh", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--profile", default="quick", help="params/profiles/<name>.yaml (default: quick)"
    )
    ap.add_argument("--datasets", help="comma-separated; default: the profile's datasets")
    ap.add_argument(
        "--techniques", help="phase-2 techniques (params/phase2), comma-separated; default: all"
    )
    ap.add_argument(
        "--phase1-variants", help="phase-1 variants (params/phase1), comma-separated; default: all"
    )
    ap.add_argument("--data-dir", help="root of the Optimus-layout data (default: $T5VAE_DATA_DIR)")
    ap.add_argument("--output-root", default=None,
                    help="where runs/ and results/ go (default: $T5VAE_OUTPUT_ROOT or the repo)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="independent runs executed in parallel (default: 2, or 1 on one core)")  # fmt: skip
    ap.add_argument("--no-tables", action="store_true", help="skip 04_tables at the end")
    return ap.parse_args(argv)


def _split(value: str | None, default: list[str], known: list[str], what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()] if value else list(default)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise P.ParamsError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def plan(args) -> tuple[P.Profile, list[Job]]:
    """Validate every parameter file and the data, then list the runs (before any training)."""
    P.validate_all()
    profile = P.load_profile(args.profile)
    datasets = _split(args.datasets, profile.datasets, P.list_names("datasets"), "datasets")
    techniques = _split(
        args.techniques, P.list_names("phase2"), P.list_names("phase2"), "techniques"
    )
    variants = _split(
        args.phase1_variants, P.list_names("phase1"), P.list_names("phase1"), "phase-1 variants"
    )
    jobs: list[Job] = []
    for ds in datasets:
        needed = list(variants)
        for t in techniques:
            v = P.load_phase2(t).phase1
            if v is not None and v not in needed:
                needed.append(v)
        for v in needed:
            jobs.append(
                Job(pl.make_spec(args.profile, ds, "phase1", v, args.output_root, args.data_dir))
            )
        for t in techniques:
            spec = pl.make_spec(args.profile, ds, "phase2", t, args.output_root, args.data_dir)
            p1 = spec.phase1_spec()
            jobs.append(Job(spec, [f"{ds}/{p1.run_id}"] if p1 else []))
        first = jobs[-1].spec
        for split in ("train", "valid", "test"):  # data errors now, not after hours of training
            pl.load_corpus(first, split)
    return profile, jobs


@contextmanager
def exclusive(lock_path: Path):
    """Refuse a second reproduce on the same output directory (results are never half-written)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"another ./reproduce.sh is running on {lock_path.parent} (lock {lock_path}); "
                "wait for it or use --output-root"
            ) from None
        f.write(str(os.getpid()))
        f.flush()
        yield


def execute(notebook: str, out_dir: Path, parameters: dict, log) -> None:
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(NOTEBOOKS / notebook), str(out_dir / notebook), parameters=parameters, kernel_name="python3",
        cwd=str(NOTEBOOKS), progress_bar=False, log_output=True, stdout_file=log, stderr_file=log,
    )  # fmt: skip


def common_parameters(spec: pl.RunSpec) -> dict:
    return {"profile": spec.profile.name, "dataset": spec.dataset.name,
            "output_root": str(spec.runs_root.parent), "data_dir": spec.data_dir}  # fmt: skip


def run_job(job: Job) -> str:
    spec = job.spec
    if is_complete(spec.results_file):
        return "skipped (results exist)"
    nb = NB_PHASE1 if spec.stage == "phase1" else NB_PHASE2
    key = "variant" if spec.stage == "phase1" else "technique"
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    with open(spec.run_dir / "run.log", "a") as log:
        execute(nb, spec.run_dir, {**common_parameters(spec), key: spec.name}, log)
        execute(
            NB_EVAL,
            spec.run_dir,
            {**common_parameters(spec), "stage": spec.stage, "name": spec.name},
            log,
        )
    if not is_complete(spec.results_file):
        raise RuntimeError(f"{NB_EVAL} finished without writing {spec.results_file}")
    return "done"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        profile, jobs = plan(args)
    except (P.ParamsError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root = pl.output_root(args.output_root)
    results_dir, runs_dir = root / "results" / profile.name, root / "runs" / profile.name
    with exclusive(results_dir / ".lock"):
        t0 = time.time()
        datasets = sorted({j.spec.dataset.name for j in jobs})
        for ds in datasets:  # base models first (shared by every run of the dataset)
            spec = next(j.spec for j in jobs if j.spec.dataset.name == ds)
            print(f"[base] {profile.name}/{ds}: tokenizer + base model", flush=True)
            spec.dataset_dir.mkdir(parents=True, exist_ok=True)
            with open(spec.dataset_dir / "base.log", "a") as log:
                execute(NB_BASE, spec.base_dir, common_parameters(spec), log)
        if args.jobs > 1:  # the base stage ran alone; now share the cores between parallel kernels
            os.environ.setdefault(
                "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs))
            )
        try:
            status = _run_grid(jobs, args.jobs, t0)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: finished runs are kept; run the same command again to resume",
                file=sys.stderr,
            )
            return 130
        if not args.no_tables:
            print("[tables] 04_tables", flush=True)
            execute(
                NB_TABLES,
                runs_dir,
                {"profile": profile.name, "output_root": str(root)},
                sys.stdout,
            )
        failed = [k for k, s in status.items() if s.startswith("failed")]
        print(
            f"\nfinished in {time.time() - t0:.0f}s: {len(status) - len(failed)} runs ok, {len(failed)} failed"
        )
        for k in failed:
            print(f"  FAILED {k}: {status[k]}")
        print(f"results: {results_dir}/ (tables.md, tables.csv, tables.tex, figures/)")
        print(f"runs:    {runs_dir}/ (executed notebooks, logs, checkpoints)")
    return 1 if failed else 0


def _run_grid(jobs: list[Job], n_workers: int, t0: float) -> dict[str, str]:
    status: dict[str, str] = {}
    pending = {j.key: j for j in jobs}
    running: dict[Future, Job] = {}
    total, finished = len(jobs), 0
    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        while pending or running:
            for key, job in list(pending.items()):
                if len(running) >= max(1, n_workers):
                    break
                deps = [status.get(d) for d in job.depends]
                if any(d is None for d in deps):
                    continue
                del pending[key]
                if any(d.startswith("failed") for d in deps):
                    msg = f"failed: its phase-1 run {job.depends[0]} failed"
                    write_failure(job.spec, msg)
                    status[key] = msg
                    finished += 1
                    continue
                print(f"[{finished + 1}/{total}] start {key}", flush=True)
                running[pool.submit(run_job, job)] = job
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                finished += 1
                try:
                    status[job.key] = fut.result()
                except Exception as e:  # the grid goes on; the run is marked failed in the tables
                    msg = f"failed: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
                    write_failure(job.spec, msg + "\n" + traceback.format_exc(limit=3))
                    status[job.key] = msg
                elapsed = time.time() - t0
                eta = elapsed / finished * (total - finished)
                print(f"[{finished}/{total}] {job.key}: {status[job.key]} "
                      f"(elapsed {elapsed:.0f}s, about {eta:.0f}s left)", flush=True)  # fmt: skip
    return status


if __name__ == "__main__":
    sys.exit(main())
