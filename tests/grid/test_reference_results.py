"""The committed reference results reproduce, and the main command recomputes and compares.

reference/<profile>/ holds the committed results (never written by a run); ./reproduce.sh writes
results/<profile>/ and ends with the comparison's verdict.
"""

from __future__ import annotations

import shutil

import pytest

from helpers import REPO
from t5vae.grid import reproduce
from t5vae.notebook import steps
from t5vae.report.claims import write_claims
from t5vae.report.compare import compare, environment_dirs
from t5vae.report.published import INTERPOLATION_FILE
from t5vae.report.results import read_results, result_files
from t5vae.report.tables import write_tables

REFERENCE = REPO / "reference"
REFERENCED = ["smoke", "quick", "replica"]  # the profiles with a committed reference
# with one seed so far (reference/field: the field seed, issue 23)
ONE_SEED = ["field"]
SMOKE_RUNS = [("phase1", "max_p0.15_frozen"), ("phase2", "l0.5_p0.15")]


def reference_folders(profile: str) -> list:
    """A reference's seeds, then the exact numbers of each other environment it holds."""
    return [REFERENCE / profile, *environment_dirs(REFERENCE / profile)]


def _reference_file(stage: str, name: str, seed: int = 0):
    path = REFERENCE / "smoke" / "builtin" / f"seed{seed}" / f"{stage}-{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is not committed: run ./reproduce.sh --profile smoke --seeds 0,1,2 "
                    "--save-reference and commit reference/smoke")  # fmt: skip
    return path


@pytest.mark.parametrize("run", SMOKE_RUNS, ids="-".join)
def test_smoke_run_reproduces_the_reference(tmp_path, run):
    """Re-executed now, a smoke run gives the reference numbers (compare.py's tolerance: exact in
    the reference's environment, within the reference seeds' spread in another)."""
    stage, name = run
    _reference_file(stage, name)
    spec = steps.make_spec("smoke", "builtin", stage, name, tmp_path, seed=0)
    steps.ensure_trained(spec, progress=False)
    steps.evaluate_run(spec, progress=False)
    result = compare(spec.results_dir, REFERENCE / "smoke", keys=[spec.key])
    assert result.ok, result.verdict + "\n" + result.metrics.to_string()
    assert len(result.metrics) >= 12  # every metric was compared, none skipped


@pytest.mark.parametrize("profile", [*REFERENCED, *ONE_SEED])
def test_committed_tables_and_claims_are_generated_from_committed_results(tmp_path, profile):
    src = REFERENCE / profile
    if not (src / "tables.md").is_file():
        pytest.fail(f"{src}/tables.md is not committed: run ./reproduce.sh --profile {profile} "
                    "--save-reference")  # fmt: skip
    copy = tmp_path / profile
    for path in result_files(src):
        dest = copy / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    if (src / INTERPOLATION_FILE).is_file():  # made from a checkpoint, read by the tables
        shutil.copy2(src / INTERPOLATION_FILE, copy / INTERPOLATION_FILE)
    paths = {**write_tables(copy), **{f"claims_{k}": v for k, v in write_claims(copy).items()}}
    for key, path in paths.items():
        assert path.read_text() == (src / path.name).read_text(), key


def test_reference_has_several_seeds_per_run():
    for profile in REFERENCED:
        seeds = {p.parent.name for p in result_files(REFERENCE / profile)}
        assert len(seeds) >= 3, (profile, seeds)
        for path in result_files(REFERENCE / profile):
            assert read_results(path)["status"] == "ok", path


@pytest.mark.slow
def test_fresh_output_recomputes_then_complete_output_skips(tmp_path, capsys):
    """A fresh output folder trains and evaluates every run (the reference is never an output),
    ends with the verdict against reference/smoke; a second call skips everything, base included."""
    _reference_file("phase1", "max_pnone_frozen")
    args = ["--profile", "smoke", "--output-root", str(tmp_path), "--phase1-variants",
            "max_pnone_frozen", "--techniques", "l0.5_pnone", "--seeds", "0"]  # fmt: skip
    assert reproduce.main(args) == 0
    out = capsys.readouterr().out
    assert "0 complete" in out and "2 to run" in out and "[base]" in out
    assert "builtin/seed0/phase1-max_pnone_frozen: started" in out
    assert out.strip().splitlines()[-1].startswith("verdict: 2/2 runs match the reference")
    stamps = {p: p.stat().st_mtime_ns for p in result_files(tmp_path / "results" / "smoke")}
    assert len(stamps) == 2
    timing = (tmp_path / "results" / "smoke" / "timing.csv").read_text()
    assert "builtin/seed0/phase2-l0.5_pnone" in timing and "overhead_s" in timing

    assert reproduce.main(args) == 0
    out = capsys.readouterr().out
    assert "2 complete" in out and "0 to run" in out and "[base]" not in out
    assert "seed0/phase2-l0.5_pnone: skipped (results exist)" in out
    assert "left)" not in out  # no time estimate for runs without work
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert out.strip().splitlines()[-1].startswith("verdict: 2/2 runs match the reference")


@pytest.mark.parametrize("profile", [*REFERENCED, *ONE_SEED])
def test_every_run_of_the_profile_is_in_its_reference_for_each_seed(profile, monkeypatch):
    """A profile that gains a run (a technique, a variant, a dataset) fails here until its
    reference is regenerated: the reference covers exactly the grid ./reproduce.sh runs."""
    monkeypatch.setattr(reproduce.steps, "load_corpus", lambda spec, split: None)  # no data read
    _, jobs = reproduce.expand_grid(reproduce.parse_args(["--profile", profile, "--seeds", "0"]))
    grid = {f"{j.spec.dataset.name}/{j.spec.stage}-{j.spec.name}" for j in jobs}
    for folder in reference_folders(profile):
        files = result_files(folder)
        for seed in sorted({p.parent.name for p in files}):
            have = {f"{p.parent.parent.name}/{p.stem}" for p in files if p.parent.name == seed}
            assert have == grid, (
                folder,
                seed,
                "missing:",
                grid - have,
                "not in the grid:",
                have - grid,
            )


@pytest.mark.parametrize("profile", [*REFERENCED, *ONE_SEED])
def test_committed_results_keep_their_identity_under_this_code(profile):
    """A committed results file that records its identity (the hash of what decides its numbers)
    has the identity this code computes for it: a profile field added since (identity.ADDED_LATER)
    neither forces a recompute nor makes the comparison say 'parameters differ'."""
    checked = 0
    for path in [p for folder in reference_folders(profile) for p in result_files(folder)]:
        record = read_results(path)
        stored = record["provenance"].get("identity")
        assert stored is not None, f"{path}: written by code that recorded no identity"
        spec = steps.make_spec(profile, record["dataset"], record["stage"], record["name"],
                            seed=record["seed"])  # fmt: skip
        assert spec.identity == stored, path
        checked += 1
    assert checked > 0, f"no committed {profile} result records its identity"
