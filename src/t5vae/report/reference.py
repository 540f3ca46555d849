"""A reference folder (reference/<profile>/): a grid's results saved as the reference, and the
exact numbers of other environments added to it (report/compare.py says how both are judged)."""

from __future__ import annotations

import shutil
from pathlib import Path

from t5vae.report.compare import ENVIRONMENTS, compare
from t5vae.report.results import collect, read_results, result_files
from t5vae.utils.files import atomic_dir

# what --save-reference copies from results/<profile>/ into reference/<profile>/
REFERENCE_FILES = ("tables.md", "tables.csv", "tables.tex", "summary.csv", "claims.md",
                   "claims.csv", "released.md", "timing.csv", "timing.md", "literature.md", "plan_check.md",
                   "interpolation.json")  # fmt: skip


def _copy_results(results_dir: Path, dest_dir: Path) -> None:
    for path in result_files(results_dir):
        dest = dest_dir / path.relative_to(results_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def save_reference(results_dir: Path, reference: Path) -> None:
    """Replace `reference` by the results files, tables, claims and figures of results_dir (the
    exact numbers of other environments it held were numbers of the reference it replaces: they go
    too)."""
    with atomic_dir(reference) as tmp:
        _copy_results(results_dir, tmp)
        for name in REFERENCE_FILES:
            if (results_dir / name).is_file():
                shutil.copy2(results_dir / name, tmp / name)
        if (results_dir / "figures").is_dir():
            shutil.copytree(results_dir / "figures", tmp / "figures",
                            ignore=shutil.ignore_patterns("comparison.png"))  # fmt: skip


def save_environment(results_dir: Path, reference: Path) -> Path:
    """Add results_dir's results files to `reference` as the exact numbers of their environment
    (`environments/<cpu>-<threads>t-<fingerprint>/`, replacing an earlier copy of the same
    environment), so that a grid run there later is judged exactly. Only a grid that reproduced
    the reference in another environment qualifies: every run judged (the same parameters), none
    failed or missing, every claim kept; else ValueError says why."""
    c = compare(results_dir, reference)
    if not c.ok or c.runs.empty:
        raise ValueError(
            f"--save-environment: the grid does not reproduce {reference}: {c.verdict}"
        )
    not_judged = c.runs[c.runs["mode"] != "other environment"]
    if not not_judged.empty:
        r = not_judged.iloc[0]
        why = "is in the reference's own environment" if r["mode"] else f"has {r['status']}"
        raise ValueError(f"--save-environment: run {r['run']} {why}: only runs of another "
                         "environment, each with a reference to compare with, are added")  # fmt: skip
    got = collect(results_dir)
    if got["env"].nunique() != 1:
        raise ValueError(f"--save-environment: {results_dir} holds results of several environments")
    prov = read_results(result_files(results_dir)[0])["provenance"]
    cpu = "-".join(
        "".join(ch if ch.isalnum() else " " for ch in str(prov.get("cpu"))).lower().split()
    )
    name = f"{cpu[:40]}-{prov.get('torch_threads')}t-{got['env'].iloc[0][:8]}"
    with atomic_dir(Path(reference) / ENVIRONMENTS / name) as tmp:
        _copy_results(results_dir, tmp)
    return Path(reference) / ENVIRONMENTS / name
