"""Run the experiment grid with papermill, build the tables and compare with the reference:
`./reproduce.sh [options]`.

For each dataset: 00_base (tokenizer + base T5, shared by all seeds), then for every seed every
phase-1 variant (01 + 03) and every phase-2 technique (02 + 03) after the phase-1 run it starts
from, then 04_tables (tables with mean ± std over seeds, figures, claims). Finally the grid's runs
are compared with the committed reference (reference/<profile>/, never written by a run) and the
last line printed is the verdict.

A run whose results file in the output folder is complete is skipped; an interrupted run resumes
from its last checkpoint; a failed run is recorded as failed and the grid goes on.
Exit status: 0 all runs ok and matching the reference (or no reference), 1 a run failed,
2 bad parameters or data, 3 the comparison found runs that do not match, 130 interrupted.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from t5vae import params as P
from t5vae import pipeline as pl
from t5vae import runs
from t5vae.compare import finish_with_verdict, save_reference
from t5vae.jobs import (
    NB_BASE,
    NB_TABLES,
    Job,
    common_parameters,
    execute,
    run_job,
    stop_running_kernels,
    write_timing,
)
from t5vae.results import is_complete, write_failure


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="./reproduce.sh", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--profile", default="quick", help="params/profiles/<name>.yaml (default: quick)"
    )
    ap.add_argument("--datasets", help="comma-separated; default: the profile's datasets")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a profile value, e.g. --set phase2.epochs=10 --set eval.iw_samples=500 "
                         "(validated like the YAML; the runs go to results/<profile>+<hash>/)")  # fmt: skip
    ap.add_argument("--seeds", help="comma-separated finetuning seeds, e.g. 0,1,2; default: the profile's seeds")  # fmt: skip
    ap.add_argument(
        "--techniques",
        help="phase-2 techniques (params/phase2), comma-separated, or none; default: all",
    )
    ap.add_argument(
        "--phase1-variants",
        help="phase-1 variants (params/phase1), comma-separated, or none (only those the techniques "
        "start from); default: all",
    )
    ap.add_argument("--data-dir", help="root of the Optimus-layout data (default: $T5VAE_DATA_DIR)")
    ap.add_argument("--output-root", default=None,
                    help="where runs/ and results/ go (default: $T5VAE_OUTPUT_ROOT or the repo)")  # fmt: skip
    ap.add_argument("--jobs", type=positive_int, default=None,
                    help="independent runs executed in parallel (default: CPU cores / the profile's "
                         "cpu_threads; 1 with a GPU)")  # fmt: skip
    ap.add_argument("--no-tables", action="store_true", help="skip 04_tables and the comparison")
    ap.add_argument("--reference", default=None,
                    help="reference folder to compare with (default: reference/<profile>/)")  # fmt: skip
    ap.add_argument("--save-reference", action="store_true",
                    help="after a grid with every run ok, copy its results into the reference folder")  # fmt: skip
    ap.add_argument("--dry-run", action="store_true",
                    help="the profile's exact code path on a random-init model of its base, 2 steps and "
                         "8 evaluation sentences per run, generated data where none is found (dryrun.py)")  # fmt: skip
    ap.add_argument("--base-config", help="--dry-run and --plan: folder with the base's config and "
                    "tokenizer (default: $T5VAE_SHARED_DIR/models/<base> if there, else the Hub)")  # fmt: skip
    ap.add_argument("--launcher", choices=("local", "slurm", "submitit-local"), default=None,
                    help="where runs execute (default: the profile's launcher.name, local); slurm: one "
                         "submitit job per run, phase 2 after its phase 1 (launchers.py)")  # fmt: skip
    ap.add_argument("--collect", action="store_true",
                    help="build tables and the comparison from whatever finished, run nothing")  # fmt: skip
    ap.add_argument("--plan", action="store_true",
                    help="time a few real batches here and print what the grid would cost (hours, "
                         "peak memory per stage), then stop (plan.py)")  # fmt: skip
    return ap.parse_args(argv)


def positive_int(text: str) -> int:
    """--jobs: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _split(value: str | None, default: list[str], known: list[str], what: str) -> list[str]:
    if value == "none":  # e.g. --techniques none: phase-1 runs only
        return []
    names = [v.strip() for v in value.split(",") if v.strip()] if value else list(default)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise P.ParamsError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def parse_seeds(value: str | None, default: list[int]) -> list[int]:
    if not value:
        return list(default)
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise P.ParamsError(f"--seeds: expected integers such as 0,1,2, got {value!r}") from None
    return P.check_seeds(seeds, "--seeds")


def plan(args) -> tuple[P.Profile, list[Job]]:
    """Validate every parameter file and the data, then list the runs (before any training)."""
    P.validate_all()
    if args.dry_run:  # the same profile, made cheap by overrides (dryrun.py)
        from t5vae import dryrun

        plain = P.load_profile(args.profile, overrides=args.overrides)
        yours = {o.split("=", 1)[0] for o in args.overrides}  # an explicit --set wins
        args.overrides = [*(o for o in dryrun.overrides(plain, args.base_config)
                            if o.split("=", 1)[0] not in yours), *args.overrides]  # fmt: skip
        datasets = _split(args.datasets, plain.datasets, P.list_names("datasets"), "datasets")
        args.data_dir = dryrun.data_dir(datasets, args.data_dir, runs.output_root(args.output_root))
    profile = P.load_profile(args.profile, overrides=args.overrides)
    seeds = parse_seeds(args.seeds, profile.seeds)
    datasets = _split(args.datasets, profile.datasets, P.list_names("datasets"), "datasets")
    all2, all1 = P.list_names("phase2"), P.list_names("phase1")
    techniques = _split(args.techniques, profile.techniques or all2, all2, "techniques")
    variants = _split(
        args.phase1_variants, profile.phase1_variants or all1, all1, "phase-1 variants"
    )
    jobs: list[Job] = []
    for ds in datasets:
        for seed in seeds:
            where = (args.output_root, args.data_dir, seed, args.overrides)
            phase2 = [pl.make_spec(args.profile, ds, "phase2", t, *where) for t in techniques]
            needed = list(variants)  # and the phase-1 runs the techniques start from
            needed += [p1.name for s in phase2 if (p1 := s.phase1_spec()) and p1.name not in needed]
            jobs += [
                Job(pl.make_spec(args.profile, ds, "phase1", v, *where))
                for v in dict.fromkeys(needed)
            ]
            jobs += [Job(s, [p1.key] if (p1 := s.phase1_spec()) else []) for s in phase2]
        if not jobs:
            raise P.ParamsError("no runs: --techniques none and --phase1-variants none")
        first = jobs[-1].spec
        for split in ("train", "valid", "test"):  # data errors now, not after hours of training
            pl.load_corpus(first, split)
    if profile.model.base != "builtin" and profile.model.pretrained and not args.plan:
        from t5vae.dryrun import require_hub

        require_hub(profile.model.base, "download it where there is network (`hf download "
                    f"{profile.model.base} --local-dir DIR`) and pass --set model.base=DIR")  # fmt: skip
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


def default_jobs(profile: P.Profile) -> int:
    import torch

    if torch.cuda.is_available():
        return 1
    cores = os.cpu_count() or 1
    return max(1, cores // (profile.cpu_threads or cores))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        profile, jobs = plan(args)
    except (P.ParamsError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root = runs.output_root(args.output_root)
    results_dir = runs.results_dir(profile.name, root)
    launcher = args.launcher or profile.launcher.name
    n_jobs = args.jobs or default_jobs(profile)
    if args.plan and launcher != "local":
        from t5vae.launchers import describe

        print(describe(jobs, profile.launcher, launcher))
        return 0
    if args.plan:
        from t5vae.plan import print_plan

        try:
            return print_plan(profile, jobs, n_jobs, results_dir, args.base_config)
        except P.ParamsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    with exclusive(results_dir / ".lock"):
        if args.collect:  # tables and comparison from whatever finished
            return finish(args, profile, jobs, root, failed=False)
        try:
            status = run_grid(profile, jobs, launcher, n_jobs, results_dir)
        except KeyboardInterrupt:
            print("\ninterrupted: finished runs are kept; run the same command again to resume",
                  file=sys.stderr)  # fmt: skip
            return 130
        failed = [k for k, s in status.items() if s.startswith("failed")]
        return finish(args, profile, jobs, root, failed=bool(failed))


def run_grid(
    profile: P.Profile, jobs: list[Job], launcher: str, n_jobs: int, results_dir: Path
) -> dict:
    """Every run of the grid through the launcher (bases first where a run needs one)."""
    t0 = time.time()
    todo = [j for j in jobs if not is_complete(j.spec.results_file, j.spec.identity)]
    print(f"[grid] {profile.name}: {len(jobs)} runs ({len({j.spec.seed for j in jobs})} seeds), "
          f"{len(jobs) - len(todo)} complete in {results_dir} (skipped), {len(todo)} to run, "
          f"{n_jobs if launcher == 'local' else launcher} at a time", flush=True)  # fmt: skip
    bases = {j.spec.dataset.name: j.spec for j in todo}  # one base per dataset that needs it
    if launcher == "local":
        base_s = 0.0
        for ds, spec in sorted(bases.items()):
            print(f"[base] {profile.name}/{ds}: tokenizer + base model", flush=True)
            spec.dataset_dir.mkdir(parents=True, exist_ok=True)
            with open(spec.dataset_dir / "base.log", "a") as log:
                base_s += execute(NB_BASE, spec.base_dir, common_parameters(spec), log)
        if n_jobs > 1:  # libraries other than torch (BLAS in probes) share the cores too
            os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n_jobs)))
        status = _run_grid(jobs, n_jobs, time.time())
    else:
        status, base_s = _run_with_executor(profile, jobs, launcher, bases), 0.0
    grid_s = time.time() - t0
    write_timing(
        results_dir, [j for j in todo if status.get(j.key) == "done"], base_s, grid_s, n_jobs
    )
    failed = [k for k, s in status.items() if s.startswith("failed")]
    print(f"\nfinished in {grid_s:.0f}s: {len(status) - len(failed)} runs ok, {len(failed)} failed")
    for k in failed:
        print(f"  FAILED {k}: {status[k]}")
    return status


def _run_with_executor(profile: P.Profile, jobs: list[Job], launcher: str, bases: dict) -> dict:
    """slurm / submitit-local: a base job per dataset, then one job per run (launchers.py)."""
    import submitit

    from t5vae.launchers import run_with_executor, slurm_executor

    folder = runs.runs_dir(profile.name, jobs[0].spec.root) / "jobs"
    if launcher == "slurm":
        executor = slurm_executor(folder, profile.launcher)
    else:
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=profile.launcher.timeout_min)
    base_jobs = {ds: Job(replace(spec, stage="base", name="base")) for ds, spec in bases.items()}
    for job in jobs:  # every run waits for its dataset's base (when one is built)
        if job.spec.dataset.name in base_jobs and not job.depends:
            job.depends = [base_jobs[job.spec.dataset.name].key]
    status = run_with_executor(
        [*base_jobs.values(), *jobs], executor, dependencies=launcher == "slurm"
    )
    return {k: v for k, v in status.items() if not k.endswith("/base-base")}


def finish(args, profile: P.Profile, jobs: list[Job], root: Path, failed: bool) -> int:
    """Tables (04_tables), the comparison's verdict, and --save-reference."""
    results_dir, runs_dir = runs.results_dir(profile.name, root), runs.runs_dir(profile.name, root)
    reference = Path(args.reference) if args.reference else runs.reference_dir(profile.name)
    if args.no_tables:
        return 1 if failed else 0
    print("[tables] 04_tables", flush=True)
    execute(NB_TABLES, runs_dir, {"profile": profile.name, "output_root": str(root)}, sys.stdout)
    print(f"results: {results_dir}/ (tables.md, summary.csv, claims.md, figures/)")
    print(f"runs:    {runs_dir}/ (executed notebooks, logs, checkpoints)")
    code = finish_with_verdict(results_dir, reference, [j.key for j in jobs], failed)
    if args.save_reference:  # (the verdict above compared with the reference it replaces)
        if failed:
            print("--save-reference: not saved, some runs failed", file=sys.stderr)
            return 1
        save_reference(results_dir, reference)
        print(f"reference saved: {reference}/")
        return 0
    return code


@dataclass
class _Grid:
    """The local launcher's state: runs waiting, running (threads), finished (status)."""

    jobs: list[Job]
    n_workers: int
    t0: float
    status: dict[str, str] = field(default_factory=dict)
    running: dict = field(default_factory=dict)  # Future -> Job
    started: dict[str, float] = field(default_factory=dict)
    finished: int = 0
    work_s: float = 0.0  # wall time of the runs computed here (for the estimate of time left)
    worked: int = 0

    def __post_init__(self):
        self.pending = {j.key: j for j in self.jobs}
        unknown = sorted({d for j in self.jobs for d in j.depends} - set(self.pending))
        if unknown:  # (would wait forever)
            raise ValueError(f"runs depend on runs that are not in the grid: {', '.join(unknown)}")

    def _finish(self, job: Job, status: str, note: str = "") -> None:
        self.finished += 1
        self.status[job.key] = status
        print(f"[{self.finished}/{len(self.jobs)}] {job.key}: {status}{note}", flush=True)

    def start_ready(self, pool: ThreadPoolExecutor) -> None:
        """Start every run whose phase-1 run is done, up to n_workers at a time."""
        for key, job in list(self.pending.items()):
            if len(self.running) >= self.n_workers:
                return
            deps = [self.status.get(d) for d in job.depends]
            if any(d is None for d in deps):
                continue
            del self.pending[key]
            if is_complete(
                job.spec.results_file, job.spec.identity
            ):  # (checked again: nothing lost on resume)
                self._finish(job, "skipped (results exist)")
            elif any(d.startswith("failed") for d in deps):
                msg = f"failed: its phase-1 run {job.depends[0]} failed"
                write_failure(job.spec, msg)
                self._finish(job, msg)
            else:
                print(f"[{self.finished + 1}/{len(self.jobs)}] start {key}", flush=True)
                self.started[key] = time.time()
                self.running[pool.submit(run_job, job)] = job

    def collect(self, done) -> None:
        """Record finished runs; a failure is written to the run's results file, the grid goes on."""
        for fut in done:
            job = self.running.pop(fut)
            try:
                status = fut.result()
            except Exception as e:  # the run is marked failed in the tables
                last = str(e).strip().splitlines()[-1] if str(e).strip() else ""
                status = f"failed: {type(e).__name__}: {last}"
                write_failure(job.spec, status + "\n" + traceback.format_exc(limit=3))
            self.worked += 1
            self.work_s += time.time() - self.started[job.key]
            left = sum(
                1
                for j in self.pending.values()
                if not is_complete(j.spec.results_file, j.spec.identity)
            )
            eta = self.work_s / self.worked * (left + len(self.running)) / self.n_workers
            self._finish(
                job, status, f" (elapsed {time.time() - self.t0:.0f}s, about {eta:.0f}s left)"
            )


def _run_grid(jobs: list[Job], n_workers: int, t0: float) -> dict[str, str]:
    grid = _Grid(jobs, max(1, n_workers), t0)
    with ThreadPoolExecutor(max_workers=grid.n_workers) as pool:
        try:
            while grid.pending or grid.running:
                grid.start_ready(pool)
                if grid.running:
                    grid.collect(wait(list(grid.running), return_when=FIRST_COMPLETED)[0])
        except KeyboardInterrupt:  # stop now: kill the running notebooks, start nothing more
            stop_running_kernels()
            for fut in grid.running:
                fut.cancel()
            raise
    return grid.status


if __name__ == "__main__":
    sys.exit(main())
