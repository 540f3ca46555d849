"""Studies: tables whose rows are runs of the grid under different settings.

    python -m t5vae.study phase1 [--jobs 2] [--save-reference]

params/studies/<name>.yaml lists rows, each a run (`phase1/<variant>` or `phase2/<technique>`) of
a profile with `--set` overrides. Every row is an ordinary `./reproduce.sh` call (notebooks,
results files with provenance, resume, identity: a row already computed is not recomputed), run
`--jobs` at a time; the table (mean ± sd over the seeds) is written to results/studies/<name>.md
and .csv, and with --save-reference copied with the rows' results files to
reference/studies/<name>/, where the README quotes it from.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from t5vae import params as P
from t5vae import runs
from t5vae.io import atomic_dir, atomic_write_text
from t5vae.metrics import metric
from t5vae.results import read_results


@dataclass
class Row:
    label: str
    run: str  # <stage>/<name>
    set: list = field(default_factory=list)  # --set overrides of the profile


@dataclass
class Study:
    name: str
    description: str
    profile: str
    dataset: str
    seeds: list
    columns: list  # metrics shown
    rows: list  # of Row
    # --set overrides of the profile for every row, before the row's own: e.g. the profile's
    # settings at the commit the study was measured at, so that a later change of the profile
    # neither recomputes the study nor leaves its committed rows unlike what the study names
    set: list = field(default_factory=list)

    def overrides(self, row: Row) -> list[str]:
        """The study's overrides, then the row's (a key the row sets replaces the study's)."""
        own = {item.split("=", 1)[0] for item in row.set}
        return [*(item for item in self.set if item.split("=", 1)[0] not in own), *row.set]

    def spec(self, row: Row, seed: int, output_root=None) -> runs.RunSpec:
        stage, name = row.run.split("/", 1)
        return runs.make_spec(self.profile, self.dataset, stage, name, output_root, seed=seed,
                              overrides=self.overrides(row) or None)  # fmt: skip


def load_study(name: str) -> Study:
    """params/studies/<name>.yaml, every row's parameters validated (errors name file and row)."""
    path = P.params_dir() / "studies" / f"{name}.yaml"
    data = P.read_yaml(path)
    rows = []
    for i, item in enumerate(data.pop("rows", [])):
        try:
            rows.append(Row(**item))
        except TypeError as e:
            raise P.ParamsError(f"{path}: rows[{i}]: {e}") from None
    try:
        study = Study(name=name, rows=rows, **data)
    except TypeError as e:
        raise P.ParamsError(f"{path}: {e}") from None
    P.check_seeds(study.seeds, "seeds")
    for i, row in enumerate(rows):
        try:
            study.spec(row, study.seeds[0])
        except (P.ParamsError, ValueError) as e:
            raise P.ParamsError(f"{path}: rows[{i}] ({row.label}): {e}") from None
    return study


def command(study: Study, row: Row, output_root: Path | None) -> list[str]:
    stage, name = row.run.split("/", 1)
    cmd = [sys.executable, "-m", "t5vae.reproduce", "--profile", study.profile, "--datasets",
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


def table(study: Study, files: dict[int, list[Path]]) -> pd.DataFrame:
    """One line per row: mean ± sd over the seeds of each column, and n."""
    from t5vae.tables import mean_std_cell

    lines = []
    for i, row in enumerate(study.rows):
        records = [read_results(p) for p in files.get(i, []) if p.is_file()]
        ok = [r for r in records if r["status"] == "ok"]
        line = {"setting": row.label, "n": len(ok)}
        for col in study.columns:
            if col == "epochs":
                values = pd.Series([len(r.get("history") or []) for r in ok], dtype=float)
            else:
                values = pd.Series([r["metrics"].get(col) for r in ok], dtype=float)
            line[col] = mean_std_cell(values, col, len(ok)) if ok else "not run"
        lines.append(line)
    return pd.DataFrame(lines)


def write_study(study: Study, out: Path, files: dict[int, list[Path]]) -> dict[str, Path]:
    from t5vae.tables import markdown_table

    t = table(study, files)
    glossary = [f"- `{c}`: {metric(c).description or 'epochs trained'}" for c in study.columns]
    md = [f"# Study: {study.name}", "", study.description.strip(), "",
          f"Profile `{study.profile}`, dataset `{study.dataset}`, seeds "
          f"{', '.join(map(str, study.seeds))} (mean ± sd over seeds)"
          + (f", every row with the study's `set` (params/studies/{study.name}.yaml)"
             if study.set else "")
          + f". Regenerate: `python -m t5vae.study {study.name}`.", "", markdown_table(t), "",
          *glossary, ""]  # fmt: skip
    paths = {"md": out / f"{study.name}.md", "csv": out / f"{study.name}.csv"}
    atomic_write_text(paths["md"], "\n".join(md))
    atomic_write_text(paths["csv"], t.to_csv(index=False))
    return paths


def reference_dir(name: str) -> Path:
    """Where `--save-reference` puts a study: its table and each row's results files."""
    return runs.REFERENCE_ROOT / "studies" / name


def reference_files(folder: Path, study: Study) -> dict[int, list[Path]]:
    """The results files of each row (row00/seed0/....json) in a saved study folder."""
    return {i: sorted((folder / f"row{i:02d}").glob("*/*.json")) for i in range(len(study.rows))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m t5vae.study", description=__doc__.split("\n")[0])
    ap.add_argument("name", help="params/studies/<name>.yaml")
    ap.add_argument("--jobs", type=int, default=2, help="rows run in parallel (default 2)")
    ap.add_argument("--output-root", default=None, help="where runs/ and results/ go")
    ap.add_argument("--save-reference", action="store_true",
                    help="copy the table and the rows' results files to reference/studies/<name>/")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        study = load_study(args.name)
    except (P.ParamsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    codes = run_rows(study, args.jobs, args.output_root)
    files = {i: [study.spec(row, s, args.output_root).results_file for s in study.seeds]
             for i, row in enumerate(study.rows)}  # fmt: skip
    out = runs.output_root(args.output_root) / "results" / "studies"
    paths = write_study(study, out, files)
    print(paths["md"].read_text())
    if args.save_reference and not any(codes):
        with atomic_dir(reference_dir(study.name)) as tmp:
            for i, paths_i in files.items():
                for p in paths_i:
                    dest = tmp / f"row{i:02d}" / p.parent.name / p.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, dest)
            write_study(study, tmp, reference_files(tmp, study))
        print(f"reference saved: {reference_dir(study.name)}/")
    return 1 if any(codes) else 0


if __name__ == "__main__":
    sys.exit(main())
