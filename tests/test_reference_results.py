"""The committed results reproduce: a smoke run re-executed now gives the reference metrics, and
the committed tables are exactly what the committed results files generate."""

from __future__ import annotations

import shutil

import pytest

from conftest import REPO
from t5vae import pipeline as pl
from t5vae.metrics import METRIC_KEYS
from t5vae.results import read_results, write_tables

REFERENCE = REPO / "results"
# Same machine type and software stack as the reference run: CPU results are deterministic, so the
# tolerance only absorbs float summation-order noise; any change of method or defaults fails.
RTOL, ATOL = 1e-4, 1e-3


@pytest.mark.parametrize(
    "run", [("phase1", "max_p0.15_frozen"), ("phase2", "l0.5_p0.15")], ids="-".join
)
def test_smoke_run_reproduces_the_reference(tmp_path, run):
    stage, name = run
    ref_file = REFERENCE / "smoke" / "builtin" / f"{stage}-{name}.json"
    if not ref_file.is_file():
        pytest.fail(
            f"{ref_file} is not committed: run ./reproduce.sh --profile smoke and commit results/smoke"
        )
    ref = read_results(ref_file)
    spec = pl.make_spec("smoke", "builtin", stage, name, tmp_path)
    pl.ensure_trained(spec, progress=False)
    got = pl.evaluate_run(spec, progress=False)["metrics"]
    for key in METRIC_KEYS:
        assert got[key] == pytest.approx(ref["metrics"][key], rel=RTOL, abs=ATOL), key


@pytest.mark.parametrize("profile", ["smoke", "quick", "quick-seed1"])
def test_committed_tables_are_generated_from_committed_results(tmp_path, profile):
    src = REFERENCE / profile
    if not (src / "tables.md").is_file():
        pytest.fail(f"{src}/tables.md is not committed: run ./reproduce.sh --profile {profile}")
    copy = tmp_path / profile
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("figures", "tables.*"))
    paths = write_tables(copy)
    for kind in ("md", "csv", "tex"):
        assert paths[kind].read_text() == (src / f"tables.{kind}").read_text(), kind
