"""A grid's whole report from its results files, each read once: tables, figures, claims, the
released code's metrics, and the comparison with a reference.

    python -m t5vae.report.build DIR [DIR ...]   (tables, figures, claims of DIR's results files)
"""

from __future__ import annotations

import sys
from pathlib import Path

from t5vae.report.claims import write_claims
from t5vae.report.compare import write_comparison
from t5vae.report.figures import write_figures
from t5vae.report.released import write_released
from t5vae.report.results import collect, result_files
from t5vae.report.tables import write_tables


def write_report(results_dir: Path, reference_dir: Path | None = None) -> dict:
    """Every file of the report in results_dir, from one collection of its results; with a
    reference holding results, the comparison (its verdict under "verdict")."""
    results_dir = Path(results_dir)
    df = collect(results_dir)
    paths = write_tables(results_dir, df)
    paths["figures"] = write_figures(results_dir, df)
    paths["claims"] = write_claims(results_dir, df)["md"]
    paths["released"] = write_released(results_dir, df)
    paths["verdict"] = f"nothing to compare with: no reference results in {reference_dir}"
    if reference_dir is not None and result_files(reference_dir):
        comparison, written = write_comparison(results_dir, reference_dir, got=df)
        paths["comparison"], paths["verdict"] = written["md"], comparison.verdict
        paths["figures"].append(written["figure"])
    return paths


if __name__ == "__main__":
    for folder in sys.argv[1:] or ["."]:
        write_report(Path(folder))
        print(f"{folder}: tables.md, summary.csv, claims.md, released.md, figures/")
