"""Run the experiment grid with papermill, build the tables and compare with the reference:
`./reproduce.sh [options]`.

The grid is resolved first (every parameter file validated, every run's values fixed, the data
read): each dataset's base (tokenizer + base T5, shared by all seeds), then for every seed every
phase-1 variant (notebooks 01 + 03) and every phase-2 technique (02 + 03) after the phase-1 run it
starts from, scheduled by grid/scheduler.py; then 04_tables (tables with mean ± std over seeds,
figures, claims). Finally the grid's runs are compared with the committed reference
(reference/<profile>/, never written by a run) and the last line printed is the verdict.

A run whose results file in the output folder is complete is skipped; an interrupted run resumes
from its last checkpoint; a failed run is recorded as failed and the grid goes on.
Exit status: 0 every run ok and the reference reproduced (or nothing to compare with), 1 a run
failed, 2 bad parameters or data, 3 a run of the reference's environment gives other numbers or
a claim of the reference is reversed (report/compare.py), 130 interrupted.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from t5vae.config import params as P
from t5vae.config import paths
from t5vae.config.run import as_base, make_spec, with_seed
from t5vae.grid.jobs import (
    NB_TABLES,
    Job,
    execute,
    write_interpolations,
    write_plan_check,
    write_timing,
)
from t5vae.notebook import steps
from t5vae.report.compare import finish_with_verdict
from t5vae.report.reference import save_environment, save_reference
from t5vae.report.results import is_complete


def parser() -> argparse.ArgumentParser:
    """The options of ./reproduce.sh (the documentation site's CLI page renders them)."""
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
    keep = ap.add_mutually_exclusive_group()
    keep.add_argument("--save-reference", action="store_true",
                      help="after a grid with every run ok, copy its results into the reference folder")  # fmt: skip
    keep.add_argument("--save-environment", action="store_true",
                      help="after a grid that reproduces the reference in another environment (another "
                           "CPU model, say), add its results to the reference as that environment's "
                           "exact numbers (reference/<profile>/environments/): a grid run there later "
                           "is judged exactly")  # fmt: skip
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
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    return parser().parse_args(argv)


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


def expand_grid(args) -> tuple[P.Profile, list[Job]]:
    """Validate every parameter file and the data, then resolve the grid's runs (before any
    training): each technique and variant once, then each seed."""
    P.validate_all()
    if args.dry_run:  # the same profile, made cheap by overrides (dryrun.py)
        from t5vae.grid import dryrun

        plain = P.load_profile(args.profile, overrides=args.overrides)
        yours = {o.split("=", 1)[0] for o in args.overrides}  # an explicit --set wins
        args.overrides = [*(o for o in dryrun.overrides(plain, args.base_config)
                            if o.split("=", 1)[0] not in yours), *args.overrides]  # fmt: skip
        datasets = _split(args.datasets, plain.datasets, P.list_names("datasets"), "datasets")
        args.data_dir = dryrun.data_dir(
            datasets, args.data_dir, paths.output_root(args.output_root)
        )
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
        where = (args.output_root, args.data_dir, seeds[0], args.overrides)
        phase2 = [make_spec(args.profile, ds, "phase2", t, *where) for t in techniques]
        needed = list(variants)  # and the phase-1 runs the techniques start from
        needed += [s.phase1.name for s in phase2 if s.phase1 and s.phase1.name not in needed]
        phase1 = [make_spec(args.profile, ds, "phase1", v, *where) for v in dict.fromkeys(needed)]
        if not phase1 and not phase2:
            raise P.ParamsError("no runs: --techniques none and --phase1-variants none")
        for seed in seeds:
            jobs += [Job(with_seed(s, seed)) for s in phase1]
            jobs += [Job(s, [s.phase1.key] if s.phase1 else [])
                     for s in (with_seed(t, seed) for t in phase2)]  # fmt: skip
        first = (phase2 or phase1)[0]
        for split in ("train", "valid", "test"):  # data errors now, not after hours of training
            steps.load_corpus(first, split)
    if profile.model.base != "builtin" and profile.model.pretrained and not args.plan:
        from t5vae.grid.dryrun import require_hub

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
        profile, jobs = expand_grid(args)
    except (P.ParamsError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root = paths.output_root(args.output_root)
    results_dir = paths.results_dir(profile.name, root)
    launcher = args.launcher or profile.launcher.name
    n_jobs = args.jobs or default_jobs(profile)
    if args.plan and launcher != "local":
        from t5vae.grid.launchers import describe

        print(describe(jobs, profile.launcher, launcher))
        return 0
    if args.plan:
        from t5vae.grid.cost import print_plan

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


def with_bases(jobs: list[Job]) -> list[Job]:
    """The grid's jobs after one base job per dataset that a run still needs (every run of that
    dataset depends on it); a dataset whose runs are all complete builds no base."""
    todo = [j for j in jobs if not is_complete(j.spec.results_file, j.spec.identity)]
    bases = {j.spec.dataset.name: Job(as_base(j.spec)) for j in todo}
    for job in jobs:
        if job.spec.dataset.name in bases:
            job.depends = [bases[job.spec.dataset.name].key, *job.depends]
    return [*bases.values(), *jobs]


def run_grid(
    profile: P.Profile, jobs: list[Job], launcher: str, n_jobs: int, results_dir: Path
) -> dict:
    """Every run of the grid through the launcher's backend, after the bases it needs."""
    from t5vae.grid.scheduler import LocalBackend, schedule

    t0 = time.time()
    todo = [j for j in jobs if not is_complete(j.spec.results_file, j.spec.identity)]
    print(f"[grid] {profile.name}: {len(jobs)} runs ({len({j.spec.seed for j in jobs})} seeds), "
          f"{len(jobs) - len(todo)} complete in {results_dir} (skipped), {len(todo)} to run, "
          f"{n_jobs if launcher == 'local' else launcher} at a time", flush=True)  # fmt: skip
    grid = with_bases(jobs)
    if launcher == "local":
        if n_jobs > 1:  # libraries other than torch (BLAS in probes) share the cores too
            os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n_jobs)))
        status = schedule(grid, LocalBackend(n_jobs), max_running=n_jobs)
    else:
        status = schedule(grid, _submitit_backend(profile, jobs, launcher))
    bases = [j for j in grid if j.spec.stage == "base"]
    base_s = sum(j.timing.get("base_notebook_s", 0.0) for j in bases)
    grid_s = time.time() - t0
    status = {k: v for k, v in status.items() if k not in {b.key for b in bases}}
    write_timing(
        results_dir, [j for j in todo if status.get(j.key) == "done"], base_s, grid_s, n_jobs
    )
    failed = [k for k, s in status.items() if s.startswith("failed")]
    print(f"\nfinished in {grid_s:.0f}s: {len(status) - len(failed)} runs ok, {len(failed)} failed")
    for k in failed:
        print(f"  FAILED {k}: {status[k]}")
    return status


def _submitit_backend(profile: P.Profile, jobs: list[Job], launcher: str):
    """slurm / submitit-local: one submitit job per base and run (launchers.py)."""
    import submitit

    from t5vae.grid.launchers import SubmititBackend, slurm_executor

    folder = paths.runs_dir(profile.name, jobs[0].spec.root) / "jobs"
    if launcher == "slurm":
        return SubmititBackend(slurm_executor(folder, profile.launcher), dependencies=True)
    executor = submitit.LocalExecutor(folder=str(folder))
    executor.update_parameters(timeout_min=profile.launcher.timeout_min)
    return SubmititBackend(executor, dependencies=False)


def finish(args, profile: P.Profile, jobs: list[Job], root: Path, failed: bool) -> int:
    """Tables (04_tables), the comparison's verdict, and --save-reference."""
    results_dir, runs_dir = (
        paths.results_dir(profile.name, root),
        paths.runs_dir(profile.name, root),
    )
    reference = Path(args.reference) if args.reference else paths.reference_dir(profile.name)
    if path := write_plan_check(results_dir, jobs):  # a plan of this grid: against the runs' clocks
        print(f"plan against measured: {path}")
    if path := write_interpolations(results_dir, jobs):  # the best row's, for literature.md
        print(f"the best row's interpolation: {path}")
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
    if args.save_environment:
        try:
            print(
                f"exact numbers of this environment saved: {save_environment(results_dir, reference)}/"
            )
        except ValueError as e:
            print(e, file=sys.stderr)
            return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
