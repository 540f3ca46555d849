"""Studies (python -m t5vae.grid.study): rows validated before anything runs, each row an ordinary
./reproduce.sh call, the table computed from the rows' results files."""

from __future__ import annotations

import shutil

import pytest

from helpers import REPO
from t5vae.config import params as P
from t5vae.config import paths
from t5vae.evaluation.metrics import METRIC_KEYS
from t5vae.grid import study as S
from t5vae.report import study as RS
from t5vae.report.results import read_results, write_results


@pytest.fixture
def params_copy(tmp_path, monkeypatch):
    root = tmp_path / "params"
    shutil.copytree(REPO / "params", root)
    monkeypatch.setenv("T5VAE_PARAMS_DIR", str(root))
    return root


def write_study(root, rows: str):
    (root / "studies" / "t.yaml").write_text(
        "description: a test\nprofile: smoke\ndataset: builtin\nseeds: [0, 1]\n"
        f"columns: [rec, kl, epochs]\nrows:\n{rows}"
    )


def test_committed_studies_are_valid():
    for path in sorted((REPO / "params" / "studies").glob("*.yaml")):
        study = S.load_study(path.stem)
        assert study.rows and study.columns


def test_rows_are_validated_before_running(params_copy):
    write_study(params_copy, "  - {label: ok, run: phase1/max_pnone_frozen, set: [phase1.epochs=2]}\n"
                             "  - {label: bad, run: phase1/max_pnone_frozen, set: [phase1.epochs=0]}\n")  # fmt: skip
    with pytest.raises(
        P.ParamsError, match=r"t\.yaml: rows\[1\] \(bad\): .*phase1\.epochs: must be >= 1"
    ):
        S.load_study("t")
    write_study(params_copy, "  - {label: x, run: phase2/nope}\n")
    with pytest.raises(P.ParamsError, match=r"rows\[0\] \(x\): .*nope\.yaml does not exist"):
        S.load_study("t")


def test_a_row_is_a_reproduce_call_and_the_table_comes_from_its_results(params_copy, tmp_path):
    write_study(params_copy, "  - {label: plain, run: phase1/max_pnone_frozen}\n"
                             "  - {label: longer, run: phase2/vanilla, set: [phase2.epochs=3]}\n")  # fmt: skip
    study = S.load_study("t")
    cmd = S.command(study, study.rows[1], tmp_path)
    assert (
        cmd[cmd.index("--techniques") + 1] == "vanilla"
        and cmd[cmd.index("--set") + 1] == "phase2.epochs=3"
    )
    assert (
        cmd[cmd.index("--seeds") + 1] == "0,1" and cmd[cmd.index("--phase1-variants") + 1] == "none"
    )
    files = {}
    for i, row in enumerate(study.rows):
        files[i] = []
        for seed, value in zip((0, 1), (2.0, 4.0), strict=True):
            spec = study.spec(row, seed, tmp_path)
            write_results(
                spec, dict.fromkeys(METRIC_KEYS, value + i), history=[{"epoch": 1}] * (i + 2)
            )
            files[i].append(spec.results_file)
    assert study.spec(study.rows[1], 0).profile.name.startswith("smoke+")  # its own folder
    t = RS.table(study, files).set_index("setting")
    assert t.loc["plain", "rec"] == "3.00 ± 1.41" and t.loc["longer", "kl"] == "4.00 ± 1.41"
    assert t.loc["longer", "epochs"] == "3.00 ± 0.00" and t.loc["plain", "n"] == 2
    md = RS.write_study(study, tmp_path, files)["md"].read_text()
    assert "| plain | 2 | 3.00 ± 1.41 |" in md and "python -m t5vae.grid.study t" in md


def test_the_study_set_applies_to_every_row_and_a_row_replaces_its_keys(params_copy, tmp_path):
    """A study's `set` (e.g. the profile's settings when it was measured) goes into every row's
    overrides before the row's own; a key the row sets too is the row's value, passed once."""
    write_study(params_copy, "  - {label: plain, run: phase1/max_pnone_frozen}\n"
                             "  - {label: longer, run: phase1/max_pnone_frozen, set: [phase1.epochs=3]}\n")  # fmt: skip
    path = params_copy / "studies" / "t.yaml"
    path.write_text(path.read_text() + "set: [phase1.epochs=2, data.train_size=100]\n")
    study = S.load_study("t")
    plain, longer = (S.command(study, row, tmp_path) for row in study.rows)
    assert [plain[i + 1] for i, a in enumerate(plain) if a == "--set"] == [
        "phase1.epochs=2", "data.train_size=100"]  # fmt: skip
    assert [longer[i + 1] for i, a in enumerate(longer) if a == "--set"] == [
        "data.train_size=100", "phase1.epochs=3"]  # fmt: skip
    specs = [study.spec(row, 0) for row in study.rows]
    assert [s.profile.phase1.epochs for s in specs] == [2, 3]
    assert {s.profile.data.train_size for s in specs} == {100}
    assert (
        "every row with the study's `set`" in RS.write_study(study, tmp_path, {})["md"].read_text()
    )


@pytest.mark.parametrize("name", ["phase1", "released", "released_converged", "replica_phase1"])
def test_committed_study_tables_are_what_their_results_files_give(name, tmp_path):
    """reference/studies/<name>/: the table is computed from the rows' committed results files,
    and each row's files are the runs its settings name (the identity of its overrides)."""
    folder = paths.study_reference_dir(name)
    study = S.load_study(name)
    files = RS.reference_files(folder, study)
    assert all(len(files[i]) == len(study.seeds) for i in files), "a row lacks a seed"
    written = RS.write_study(study, tmp_path, files)
    assert written["md"].read_text() == (folder / f"{name}.md").read_text()
    assert written["csv"].read_text() == (folder / f"{name}.csv").read_text()
    for i, row in enumerate(study.rows):
        for path in files[i]:
            seed = int(path.parent.name.removeprefix("seed"))
            record = read_results(path)
            assert record["provenance"]["identity"] == study.spec(row, seed).identity, row.label
