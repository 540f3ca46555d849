"""A study's table: one line per row, mean ± sd over its seeds of each column (config/study.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from t5vae.config.study import Study
from t5vae.evaluation.metrics import metric
from t5vae.report.format import markdown_table, mean_std_cell
from t5vae.report.results import read_results
from t5vae.utils.files import atomic_write_text


def table(study: Study, files: dict[int, list[Path]]) -> pd.DataFrame:
    """One line per row: mean ± sd over the seeds of each column, and n."""
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
    t = table(study, files)
    glossary = [f"- `{c}`: {metric(c).description or 'epochs trained'}" for c in study.columns]
    md = [f"# Study: {study.name}", "", study.description.strip(), "",
          f"Profile `{study.profile}`, dataset `{study.dataset}`, seeds "
          f"{', '.join(map(str, study.seeds))} (mean ± sd over seeds)"
          + (f", every row with the study's `set` (params/studies/{study.name}.yaml)"
             if study.set else "")
          + f". Regenerate: `python -m t5vae.grid.study {study.name}`.", "", markdown_table(t), "",
          *glossary, ""]  # fmt: skip
    paths = {"md": out / f"{study.name}.md", "csv": out / f"{study.name}.csv"}
    atomic_write_text(paths["md"], "\n".join(md))
    atomic_write_text(paths["csv"], t.to_csv(index=False))
    return paths


def reference_files(folder: Path, study: Study) -> dict[int, list[Path]]:
    """The results files of each row (row00/seed0/....json) in a saved study folder."""
    return {i: sorted((folder / f"row{i:02d}").glob("*/*.json")) for i in range(len(study.rows))}
