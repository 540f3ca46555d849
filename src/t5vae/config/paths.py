"""Where the grid's files are: the one place their folders and names are laid out.

    <repo>/params/  <repo>/notebooks/  <repo>/reference/<profile>/  <repo>/requirements/lock.txt
    <output root>/runs/base/<dataset>-<hash>/                 tokenizer + base T5 (shared)
    <output root>/runs/tokenized/                             tokenised splits (Arrow cache)
    <output root>/runs/<profile>/<dataset>/seed<k>/<stage>/<name>/   run.json, checkpoints,
                                                              history, executed notebooks, run.log
    <output root>/results/<profile>/<dataset>/seed<k>/<stage>-<name>.json   a run's results
    <output root>/results/<profile>/{tables,claims,comparison,...}           a grid's report
The output root is --output-root, $T5VAE_OUTPUT_ROOT or the repository. What a layer writes
inside a folder it is given is its own format: a checkpoint's last/ and best/ (training/loop.py),
a corpus's {train,valid,test}.txt (data/corpora.py), a report's tables.md, claims.md,
comparison.md, figures/ (report/), a grid's timing.md (grid/jobs.py).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PARAMS = REPO / "params"
NOTEBOOKS = REPO / "notebooks"
REFERENCE_ROOT = REPO / "reference"
LOCK_FILE = REPO / "requirements" / "lock.txt"
OUTPUT_ENV = "T5VAE_OUTPUT_ROOT"
RUN_FILE = "run.json"  # a run's resolved parameters, in its run folder (config.run)


def output_root(value: str | os.PathLike | None = None) -> Path:
    """Where runs/ and results/ go: `value`, else $T5VAE_OUTPUT_ROOT, else the repository."""
    return Path(value or os.environ.get(OUTPUT_ENV) or REPO).resolve()


def results_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """results/<profile>/: every results file of the profile, its tables and comparison."""
    return output_root(root) / "results" / profile


def runs_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """runs/<profile>/: checkpoints, logs and executed notebooks (git-ignored)."""
    return output_root(root) / "runs" / profile


def reference_dir(profile: str) -> Path:
    """reference/<profile>/: the committed reference results, never written by a run."""
    return REFERENCE_ROOT / profile


def study_results_dir(root: str | os.PathLike | None = None) -> Path:
    return output_root(root) / "results" / "studies"


def study_reference_dir(name: str) -> Path:
    """reference/studies/<name>/: a study's committed table and each row's results files."""
    return REFERENCE_ROOT / "studies" / name


def dry_run_data_dir(root: str | os.PathLike | None = None) -> Path:
    return output_root(root) / "runs" / "dry-run-data"
