"""Run a study: each row an ordinary `./reproduce.sh` call, then its table.

    python -m t5vae.grid.study phase1 [--jobs 2] [--save-reference]

Every row is a `./reproduce.sh` call (notebooks, results files with provenance, resume, identity:
a row already computed is not recomputed), run `--jobs` at a time; the table (mean ± sd over the
seeds) is written to results/studies/<name>.md and .csv, and with --save-reference copied with the
rows' results files to reference/studies/<name>/, where the README quotes it from.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from t5vae.config import params as P
from t5vae.config import paths
from t5vae.config.study import Row, Study, load_study
from t5vae.report.study import reference_files, write_study
from t5vae.utils.files import atomic_dir


def command(study: Study, row: Row, output_root: Path | None) -> list[str]:
    stage, name = row.run.split("/", 1)
    cmd = [sys.executable, "-m", "t5vae.grid.reproduce", "--profile", study.profile, "--datasets",
           study.dataset, "--seeds", ",".join(map(str, study.seeds)), "--jobs", "1", "--no-tables"]  # fmt: skip
    if stage == "phase1":
        cmd += ["--phase1-variants", name, "--techniques", "none"]
    else:
        cmd += ["--phase1-variants", "none", "--techniques", name]
    for item in study.overrides(row):
        cmd += ["--set", item]
    return cmd + (["--output-root", str(output_root)] if output_root else [])


def run_rows(study: Study, jobs: int, output_root: Path | None) -> list[int]:
    """Each row's ./reproduce.sh call, `jobs` at a time; their exit codes."""

    def one(row: Row) -> int:
        print(f"[study {study.name}] {row.label}", flush=True)
        return subprocess.run(command(study, row, output_root)).returncode

    first = one(study.rows[0])  # alone: it builds the base model the other rows share
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [first, *pool.map(one, study.rows[1:])]


def parser() -> argparse.ArgumentParser:
    """The options of `python -m t5vae.grid.study`."""
    ap = argparse.ArgumentParser(
        prog="python -m t5vae.grid.study", description=__doc__.split("\n")[0]
    )
    ap.add_argument("name", help="params/studies/<name>.yaml")
    ap.add_argument("--jobs", type=int, default=2, help="rows run in parallel (default 2)")
    ap.add_argument("--output-root", default=None, help="where runs/ and results/ go")
    ap.add_argument("--save-reference", action="store_true",
                    help="copy the table and the rows' results files to reference/studies/<name>/")  # fmt: skip
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        study = load_study(args.name)
    except (P.ParamsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    codes = run_rows(study, args.jobs, args.output_root)
    files = {i: [study.spec(row, s, args.output_root).results_file for s in study.seeds]
             for i, row in enumerate(study.rows)}  # fmt: skip
    out = paths.study_results_dir(args.output_root)
    written = write_study(study, out, files)
    print(written["md"].read_text())
    if args.save_reference and not any(codes):
        with atomic_dir(paths.study_reference_dir(study.name)) as tmp:
            for i, paths_i in files.items():
                for p in paths_i:
                    dest = tmp / f"row{i:02d}" / p.parent.name / p.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, dest)
            write_study(study, tmp, reference_files(tmp, study))
        print(f"reference saved: {paths.study_reference_dir(study.name)}/")
    return 1 if any(codes) else 0


if __name__ == "__main__":
    sys.exit(main())
