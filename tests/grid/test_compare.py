"""Comparison with the reference, tables over seeds and the claims table, on synthetic results
files whose numbers are known (every expected value is computed here independently)."""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest
from scipy import stats

from t5vae.config import params as P
from t5vae.evaluation.metrics import METRIC_KEYS
from t5vae.notebook import steps
from t5vae.report.claims import evaluate_claims, write_claims
from t5vae.report.compare import DIFFERS, MATCH, OUTLIER, compare, verdict, write_comparison
from t5vae.report.results import collect, write_failure, write_results
from t5vae.report.tables import summary, write_tables

SEEDS = (0, 1, 2)


def write_grid(root, values: dict[tuple[str, str], list[float]], **fixed):
    """Results files of smoke runs: values[(stage, name)][i] is every metric's value for seed i."""
    for (stage, name), per_seed in values.items():
        for seed, v in zip(SEEDS, per_seed, strict=False):
            spec = steps.make_spec("smoke", "builtin", stage, name, root, seed=seed)
            write_results(spec, {**{k: v for k, v in zip(METRIC_KEYS, [v] * len(METRIC_KEYS), strict=True)},
                                 **fixed})  # fmt: skip
    return root / "results" / "smoke"


def edit(path, **metrics):
    record = json.loads(path.read_text())
    record["metrics"].update(metrics)
    path.write_text(json.dumps(record))


def set_cpu(results_dir, cpu: str):
    for path in results_dir.glob("*/seed*/*.json"):
        record = json.loads(path.read_text())
        record["provenance"]["cpu"] = cpu
        path.write_text(json.dumps(record))


GRID = {("phase1", "max_pnone_frozen"): [10.0, 11.0, 12.0],
        ("phase2", "vanilla"): [1.0, 2.0, 3.0]}  # fmt: skip


def test_same_environment_requires_the_same_numbers(tmp_path):
    ref = write_grid(tmp_path / "ref", GRID)
    got = write_grid(tmp_path / "got", GRID)
    assert compare(got, ref).ok
    path = got / "builtin" / "seed1" / "phase2-vanilla.json"
    edit(path, kl=2.0 + 1e-4)  # far below any seed spread, but not the same number
    c = compare(got, ref)
    assert not c.ok
    row = c.runs.set_index("run").loc["builtin/seed1/phase2-vanilla"]
    assert row["status"] == DIFFERS and row["outside"] == "kl" and row["mode"] == "same environment"
    m = c.metrics.set_index(["run", "metric"]).loc[("builtin/seed1/phase2-vanilla", "kl")]
    assert m["reference"] == 2.0 and m["reproduced"] == pytest.approx(2.0001)
    assert m["difference"] == pytest.approx(1e-4)
    assert c.verdict.startswith("5/6 runs match the reference")
    assert "builtin/seed1/phase2-vanilla [DIFFERS: kl]" in c.verdict


def test_a_missing_or_failed_run_is_listed_never_skipped(tmp_path):
    ref = write_grid(tmp_path / "ref", GRID)
    got = write_grid(tmp_path / "got", {("phase2", "vanilla"): [1.0, 2.0, 3.0]})
    keys = [
        f"builtin/seed{s}/{r}" for s in SEEDS for r in ("phase1-max_pnone_frozen", "phase2-vanilla")
    ]
    c = compare(got, ref, keys)
    status = c.runs.set_index("run")["status"]
    assert status["builtin/seed0/phase1-max_pnone_frozen"] == "missing in reproduced"
    assert (status[[k for k in keys if "vanilla" in k]] == MATCH).all()
    assert c.verdict.startswith("3/6 runs match") and "missing in reproduced" in c.verdict
    write_failure(
        steps.make_spec("smoke", "builtin", "phase2", "l0.5_pnone", tmp_path / "got"), "boom"
    )
    c = compare(got, ref)  # keys: the reproduced runs (incl. the failed one)
    assert (
        c.runs.set_index("run").loc["builtin/seed0/phase2-l0.5_pnone", "status"]
        == "failed in reproduced"
    )
    extra = write_grid(tmp_path / "got", {("phase2", "lnone_pnone"): [5.0]})
    c = compare(extra, ref)
    assert (
        c.runs.set_index("run").loc["builtin/seed0/phase2-lnone_pnone", "status"]
        == "missing in reference"
    )


def test_other_environment_uses_the_prediction_interval_of_the_reference_seeds(tmp_path):
    ref = write_grid(tmp_path / "ref", GRID)
    got = write_grid(tmp_path / "got", {("phase2", "vanilla"): [2.5]})
    set_cpu(got, "another CPU")
    c = compare(got, ref)
    assert c.ok and c.runs["mode"].tolist() == ["other environment"]
    # independent: reference values 1, 2, 3 -> mean 2, sd 1 (cv 0.5; the median cv of the two
    # runs, 0.5 and 1/11, is below it: the run's own sd decides), Bonferroni
    n_metrics = len(METRIC_KEYS)
    t = stats.t.ppf(1 - 0.01 / n_metrics / 2, df=2)
    half = t * 1.0 * math.sqrt(1 + 1 / 3)
    m = c.metrics.set_index("metric").loc["kl"]
    assert m["tolerance"] == pytest.approx(half) and m["reference"] == pytest.approx(2.0)
    assert m["low"] == pytest.approx(0.0)  # 2 - half < 0: clipped to KL's range
    path = got / "builtin" / "seed0" / "phase2-vanilla.json"
    edit(path, kl=2.0 + 1.01 * half)
    c = compare(got, ref)
    # another environment only warns on metrics: listed with the distance in reference sds
    assert c.ok and c.runs["status"].tolist() == [OUTLIER]
    assert c.runs["outside"].tolist() == [f"kl ({1.01 * half:.1f} sd)"]
    assert "1 with metrics outside the reference seeds' interval (warnings)" in c.verdict
    # one reference seed: no spread, the run cannot be judged (said so)
    one = write_grid(tmp_path / "one", {("phase2", "vanilla"): [2.0]})
    c = compare(got, one)
    assert c.runs["status"].tolist() == ["no spread (1 reference seed)"]
    assert "no spread (1 reference seed) 1" in c.verdict


def test_a_zero_spread_reference_is_judged_by_resolution_and_pooled_spread(tmp_path):
    """Three reference seeds that agree exactly do not make a point of the interval: the metric's
    resolution (AU: 1; probe accuracy: 1 / test sentences) and its typical relative spread over
    the reference's runs are floors; an accuracy at its bound gets a one-sided interval."""
    values = {("phase1", "max_pnone_frozen"): [10.0, 10.0, 10.0],
              ("phase2", "vanilla"): [1.0, 2.0, 3.0]}  # fmt: skip
    ref = write_grid(tmp_path / "ref", values, probe_tense=1.0, n_sentences=200)
    for s, acc in zip(SEEDS, [0.8, 0.9, 1.0], strict=True):  # vanilla: probe spread, cv > 0
        edit(ref / "builtin" / f"seed{s}" / "phase2-vanilla.json", probe_tense=acc)
    got = write_grid(tmp_path / "got", {("phase1", "max_pnone_frozen"): [10.0]},
                     probe_tense=1.0 - 0.5 / 200, n_sentences=200)  # fmt: skip
    set_cpu(got, "another CPU")
    c = compare(got, ref)
    m = c.metrics.set_index("metric")
    # AU 10 ± 0 with AU's median cv: vanilla (1, 2, 3) 0.5, frozen 0 -> 0.25 (independent)
    cv = statistics.median([0.5, 0.0])
    n_metrics = len(m)
    t2 = stats.t.ppf(1 - 0.01 / n_metrics / 2, df=4)  # the floor decides: its dof, 2 + 2
    assert m.loc["au", "tolerance"] == pytest.approx(t2 * cv * 10.0 * math.sqrt(4 / 3))
    # probe_tense: 1.0 in every reference seed, at the bound: one-sided, from the median cv of
    # the vanilla run's 0.8, 0.9, 1.0 (cv 0.1 / 0.9) and the frozen run's 0
    cv_probe = statistics.median([0.1 / 0.9, 0.0])
    t1 = stats.t.ppf(1 - 0.01 / n_metrics, df=4)  # the floor's dof: both runs' seeds, 2 + 2
    assert m.loc["probe_tense", "low"] == pytest.approx(1.0 - t1 * cv_probe * math.sqrt(4 / 3))
    assert m.loc["probe_tense", "high"] == 1.0 and m.loc["probe_tense", "status"] == MATCH
    assert c.runs["status"].tolist() == [MATCH]
    # far outside: flagged (a warning), with the distance in reference sds (the floor's)
    edit(got / "builtin" / "seed0" / "phase1-max_pnone_frozen.json", probe_tense=0.2)
    c = compare(got, ref)
    row = c.metrics.set_index("metric").loc["probe_tense"]
    assert row["status"] == OUTLIER
    assert row["distance"] == pytest.approx(0.8 / (cv_probe * 1.0))
    # no spread anywhere: the resolution alone, e.g. 1 / 200 test sentences
    flat = write_grid(tmp_path / "flat", {("phase1", "max_pnone_frozen"): [10.0, 10.0, 10.0]},
                      probe_tense=0.5, n_sentences=200)  # fmt: skip
    near = write_grid(tmp_path / "near", {("phase1", "max_pnone_frozen"): [10.0]},
                      probe_tense=0.5 + 1 / 200, n_sentences=200)  # fmt: skip
    set_cpu(near, "another CPU")
    m = compare(near, flat).metrics.set_index("metric")
    assert m.loc["probe_tense", "tolerance"] == pytest.approx(1 / 200)
    assert m.loc["probe_tense", "status"] == MATCH and m.loc["au", "tolerance"] == 1.0
    edit(near / "builtin" / "seed0" / "phase1-max_pnone_frozen.json", probe_tense=0.5 + 2 / 200)
    assert compare(near, flat).metrics.set_index("metric").loc["probe_tense", "status"] == OUTLIER


def test_comparison_report_files(tmp_path):
    ref = write_grid(tmp_path / "ref", GRID)
    got = write_grid(tmp_path / "got", GRID)
    edit(got / "builtin" / "seed2" / "phase1-max_pnone_frozen.json", rec=99.0)
    c, paths = write_comparison(got, ref)
    md = paths["md"].read_text()
    assert md.strip().splitlines()[-1] == f"**Verdict:** {c.verdict}"
    assert "| builtin/seed2/phase1-max_pnone_frozen | rec | 12 | 99 | 87 |" in md
    csv = paths["csv"].read_text()
    assert csv.count("\n") == 1 + 6 * len(METRIC_KEYS)
    assert paths["figure"].stat().st_size > 1000


def test_tables_show_mean_std_and_n_computed_from_results_files(tmp_path):
    results = write_grid(tmp_path, GRID)
    spec = steps.make_spec("smoke", "builtin", "phase2", "l0.5_pnone", tmp_path, seed=0)
    write_results(spec, dict.fromkeys(METRIC_KEYS, 4.0))
    write_failure(
        steps.make_spec("smoke", "builtin", "phase2", "l0.5_pnone", tmp_path, seed=1), "x"
    )
    md = write_tables(results)["md"].read_text()
    # vanilla: values 1, 2, 3 -> mean 2.00, sample sd 1.00, n 3; AU one decimal over seeds
    # phase 2 rows name the phase-1 run they started from (none for the vanilla VAE)
    assert f"| vanilla VAE | 3 | - | {2.0:.2f} ± {statistics.stdev([1, 2, 3]):.2f} |" in md
    assert " 2.0 ± 1.0 |" in md  # AU over seeds: one decimal
    assert "| λ=0.5, p=none | 1 (1 failed) | max_pnone_frozen | 4.00 |" in md
    assert md.splitlines()[2].startswith("Seeds 0, 1, 2: each cell is the mean")
    s = summary(collect(results)).set_index("name")
    assert s.loc["vanilla", "kl_mean"] == 2.0 and s.loc["vanilla", "kl_std"] == 1.0
    assert s.loc["vanilla", "kl_n"] == 3 and s.loc["l0.5_pnone", "failed_seeds"] == "1"
    assert math.isnan(s.loc["l0.5_pnone", "kl_std"])  # one seed: no spread


def test_claims_are_computed_with_welch_tests(tmp_path):
    results = write_grid(tmp_path, {("phase2", "lnone_pnone"): [20.0, 24.0, 22.0],
                                    ("phase2", "vanilla"): [0.0, 1.0, 0.5],
                                    ("phase2", "l0.5_pnone"): [23.0, 21.0, 22.5]})  # fmt: skip
    claims = [
        P.Claim(
            "keeps units", "phase2/lnone_pnone", "au", versus="phase2/vanilla", expect="higher"
        ),
        P.Claim(
            "thresholding", "phase2/l0.5_pnone", "mi", versus="phase2/lnone_pnone", expect="higher"
        ),
        P.Claim("collapse", "phase2/vanilla", "kl", below=0.5),
        P.Claim("wrong way", "phase2/vanilla", "au", versus="phase2/lnone_pnone", expect="higher"),
        P.Claim("not run", "phase2/l3_p0.15", "mi", versus="phase2/vanilla"),
    ]
    t = evaluate_claims(collect(results), claims).set_index("claim")
    # independent Welch: t = (m1 - m2) / sqrt(s1^2/n1 + s2^2/n2), Welch-Satterthwaite df
    a, b = [20.0, 24.0, 22.0], [0.0, 1.0, 0.5]
    va, vb = statistics.variance(a) / 3, statistics.variance(b) / 3
    tt = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert t.loc["keeps units", "p"] == pytest.approx(2 * stats.t.sf(abs(tt), df))
    assert t.loc["keeps units", "difference"] == pytest.approx(21.5)
    assert t.loc["keeps units", "verdict"] == "supported"
    assert t.loc["thresholding", "verdict"] == "within seed noise"
    assert t.loc["collapse", "verdict"] == "within seed noise"  # mean 0.5 = the bound
    assert t.loc["wrong way", "verdict"] == "contradicted"
    assert t.loc["not run", "verdict"] == "not run in this grid"
    assert t.loc["keeps units", "run_value"] == "22 ± 2 (n=3)"
    one = write_grid(tmp_path / "one", {("phase2", "vanilla"): [0.1]})
    t1 = evaluate_claims(collect(one), claims[2:3])
    assert t1["verdict"].tolist() == ["one seed, no test (lower)"] and t1["p"].isna().all()
    paths = write_claims(results)
    assert (
        "| builtin | The vanilla VAE (no phase 1, no remedy) collapses | kl |"
        in paths["md"].read_text()
    )


def test_claims_file_is_validated(tmp_path):
    root = tmp_path / "params"
    import shutil

    from helpers import REPO

    shutil.copytree(REPO / "params", root)
    assert len(P.load_claims(root)) >= 10
    (root / "claims.yaml").write_text(
        "- {claim: x, run: phase2/vanilla, metric: kl, versus: phase2/nope}\n"
    )
    with pytest.raises(P.ParamsError, match=r"claims\.yaml: \[0\]\.versus: 'phase2/nope' is not"):
        P.load_claims(root)
    (root / "claims.yaml").write_text("- {claim: x, run: phase2/vanilla, metric: kl}\n")
    with pytest.raises(P.ParamsError, match=r"\[0\]\.versus: give exactly one of versus"):
        P.load_claims(root)


def test_results_written_before_a_metric_existed_still_load_and_tabulate(tmp_path):
    """A results file from before a registry metric (here bleu, distinct_2 and the schema field)
    is complete, not recomputed; its table cells for the new metrics are empty."""
    from t5vae.report.results import is_complete

    results = write_grid(tmp_path, {("phase2", "vanilla"): [1.0]})
    path = results / "builtin" / "seed0" / "phase2-vanilla.json"
    record = json.loads(path.read_text())
    assert record["schema"] == 2
    del record["schema"], record["history"]
    record["metrics"] = {k: v for k, v in record["metrics"].items() if k in METRIC_KEYS}
    path.write_text(json.dumps(record))
    assert is_complete(path)
    md = write_tables(results)["md"].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| vanilla VAE |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in md.splitlines() if line.startswith("| run |"))
    names = [c.strip() for c in header.strip("|").split("|")]
    assert cells[names.index("bleu")] == "-" and cells[names.index("distinct_2")] == "-"
    assert cells[names.index("kl")] == "1.00"


def test_the_verdict_counts_what_does_not_match_and_names_the_first_runs():
    runs = pd.DataFrame({
        "run": [f"builtin/seed0/phase2-t{i}" for i in range(9)],
        "status": [MATCH, MATCH] + [DIFFERS] * 6 + ["missing in reproduced"],
        "mode": ["same environment"] * 8 + [""],
        "outside": ["", ""] + ["kl, mi"] * 6 + [""],
    })  # fmt: skip
    text = verdict(runs, named=3)
    assert text.startswith("2/9 runs match the reference (same environment); not matching (")
    assert f"{DIFFERS} 6" in text and "missing in reproduced 1" in text
    assert f"builtin/seed0/phase2-t2 [{DIFFERS}: kl, mi]" in text and "phase2-t4 " in text
    assert "phase2-t5" not in text and text.endswith("; and 4 more (comparison.md)")


def test_a_claim_whose_direction_flips_fails_the_grid_in_any_environment(tmp_path):
    """params/claims.yaml: two-phase training (lnone_pnone) keeps more active units and MI than
    the vanilla VAE. The reference shows it beyond seed noise; a reproduction in another
    environment that reverses it beyond the reference's seed noise DISAGREES (exit status 3), a
    reversal within that noise is a warning, the same direction reproduces."""
    from t5vae.report.claims import DISAGREES, FLIPPED, REPRODUCED
    from t5vae.report.compare import exit_status

    grid = {("phase2", "lnone_pnone"): [20.0, 22.0, 24.0], ("phase2", "vanilla"): [1.0, 2.0, 3.0]}
    ref = write_grid(tmp_path / "ref", grid)
    got = write_grid(
        tmp_path / "got", {("phase2", "lnone_pnone"): [21.0], ("phase2", "vanilla"): [2.5]}
    )
    set_cpu(got, "another CPU")
    c = compare(got, ref)
    claim = "Two-phase training keeps active units that the vanilla VAE loses"
    rows = c.claims.set_index(["claim", "metric"])
    assert rows.loc[(claim, "au"), "status"] == REPRODUCED and c.ok
    assert exit_status(c, failed=False) == 0 and "claims: " in c.verdict
    # independent: D_ref = 22 - 2 = 20; var = 2^2 (1 + 1/3) + 1^2 (1 + 1/3) (the runs' own sds
    # exceed the typical cv floor: median(2/22, 1/2) = 0.295 * 22 = 6.5 > 2: the floor decides
    # for lnone_pnone with dof 4, vanilla keeps its own sd 1 (0.295 * 2 < 1))
    cv = statistics.median([2 / 22, 1 / 2])
    var = (cv * 22) ** 2 * (1 + 1 / 3) + 1.0**2 * (1 + 1 / 3)
    judged = int((c.claims["status"] == REPRODUCED).sum() + (c.claims["status"] == DISAGREES).sum()
                 + (c.claims["status"] == FLIPPED).sum())  # fmt: skip
    t = stats.t.ppf(1 - 0.01 / judged / 2, df=2)  # the smallest side's dof (vanilla: 3 - 1)
    assert rows.loc[(claim, "au"), "half_width"] == pytest.approx(t * math.sqrt(var))
    # reversed by more than that: disagrees, the grid fails
    edit(
        got / "builtin" / "seed0" / "phase2-lnone_pnone.json",
        au=2.0 - 1.01 * t * math.sqrt(var) + 20,
    )
    edit(got / "builtin" / "seed0" / "phase2-vanilla.json", au=20.0 + 2.5)
    c = compare(got, ref)
    row = c.claims.set_index(["claim", "metric"]).loc[(claim, "au")]
    assert (
        row["reproduced_difference"] < 0
        and abs(row["reproduced_difference"] - 20) > row["half_width"]
    )
    assert row["status"] == DISAGREES and not c.ok and exit_status(c, failed=False) == 3
    assert f"1 {DISAGREES} ({claim}, au on builtin)" in c.verdict
    # reversed, but within the reference's noise: a warning, the grid passes
    edit(got / "builtin" / "seed0" / "phase2-lnone_pnone.json", au=2.0)
    edit(got / "builtin" / "seed0" / "phase2-vanilla.json", au=2.5)
    c = compare(got, ref)
    assert c.claims.set_index(["claim", "metric"]).loc[(claim, "au"), "status"] == FLIPPED and c.ok


def test_a_grid_with_nothing_to_compare_with_says_so_and_passes(tmp_path, capsys):
    from t5vae.report.compare import finish_with_verdict

    got = write_grid(tmp_path / "got", GRID)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert finish_with_verdict(got, empty, [], failed=False) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"verdict: nothing to compare with: no reference results in {empty}"
    )
    other = write_grid(tmp_path / "other", {("phase2", "l0.5_pnone"): [1.0, 2.0, 3.0]})
    c = compare(got, other)
    assert c.ok and not c.compared
    assert c.verdict.startswith("nothing to compare with: none of the 6 runs has a reference")


def test_exact_numbers_of_another_environment_make_it_judged_exactly(tmp_path):
    """A reference can hold the results of a grid that reproduced it on another CPU: a later grid
    there is judged exactly (a changed value DIFFERS), a third environment still by the seeds'
    interval; a grid in the reference's own environment, or one that does not reproduce, is not
    added; replacing the reference drops them."""
    from t5vae.report.compare import ENVIRONMENTS
    from t5vae.report.reference import save_environment, save_reference

    ref = write_grid(tmp_path / "ref", GRID)
    got = write_grid(tmp_path / "got", {k: v[:1] for k, v in GRID.items()})  # seed 0
    vanilla = got / "builtin" / "seed0" / "phase2-vanilla.json"
    edit(vanilla, kl=1.2)  # another CPU's float for the reference's 1.0: inside the interval
    set_cpu(got, "AMD EPYC 9R14")
    c = compare(got, ref)
    assert c.ok and set(c.runs["mode"]) == {"other environment"}
    before = collect(ref)[["run_id", "seed", "kl"]]
    saved = save_environment(got, ref)
    assert saved.parent == ref / ENVIRONMENTS and saved.name.startswith("amd-epyc-9r14-")
    assert collect(ref)[["run_id", "seed", "kl"]].equals(before)  # the seeds are untouched
    c = compare(got, ref)
    assert c.ok and set(c.runs["mode"]) == {"same environment"}
    m = c.metrics.set_index(["run", "metric"]).loc[("builtin/seed0/phase2-vanilla", "kl")]
    assert m["reference"] == 1.2 and m["status"] == MATCH
    edit(vanilla, kl=1.2 + 1e-4)
    c = compare(got, ref)
    assert (
        not c.ok
        and c.runs.set_index("run").loc["builtin/seed0/phase2-vanilla", "status"] == DIFFERS
    )
    set_cpu(got, "a third CPU")
    assert set(compare(got, ref).runs["mode"]) == {"other environment"}
    with pytest.raises(ValueError, match="reference's own environment"):
        save_environment(write_grid(tmp_path / "same", GRID), ref)
    extra = write_grid(tmp_path / "extra", {("phase2", "lnone_pnone"): [5.0]})
    set_cpu(extra, "AMD EPYC 9R14")
    with pytest.raises(ValueError, match="has missing in reference"):
        save_environment(extra, ref)
    save_reference(write_grid(tmp_path / "new", GRID), ref)
    assert not (ref / ENVIRONMENTS).exists()


def test_the_latent_space_table_shows_each_runs_diagnosis_and_the_headline_shift(tmp_path):
    from t5vae.report.figures import write_figures

    root = write_grid(tmp_path, {("phase2", "vanilla"): [1.0, 2.0, 3.0]},
                      transfer_accuracy_a1=0.25, transfer_accuracy_a2=0.5, mig=0.1)  # fmt: skip
    for seed, label in ((0, "collapsed"), (1, "collapsed"), (2, "weak")):
        path = root / "builtin" / f"seed{seed}" / "phase2-vanilla.json"
        record = json.loads(path.read_text())
        record["diagnosis"] = {"label": label, "rule": "AU = 0"}
        path.write_text(json.dumps(record))
    text = write_tables(root)["md"].read_text()
    section = text.split("## builtin: the latent space (phase 2)", 1)[1].split("\n## ", 1)[0]
    header, _, row = section.strip().splitlines()[-3:]
    assert "| diagnosis | transfer_accuracy_a1 |" in header and "transfer_accuracy_a2" not in header
    assert "| collapsed (2), weak (1) | 0.250 ± 0.000 |" in row
    assert (root / "figures" / "builtin_transfer_by_alpha.png") in write_figures(root)


def test_the_end_of_training_prints_the_diagnosis_of_its_last_epoch():
    hist = [{"epoch": 1, "valid_au": 0, "valid_mi": 0.0, "valid_kl": 0.0},
            {"epoch": 2, "valid_au": 30, "valid_mi": 2.5, "valid_kl": 9.0}]  # fmt: skip
    assert steps.training_diagnosis(hist, 32) == (
        "diagnosis on the validation split after epoch 2: informative (MI = 2.50 nats, AU = 30 of 32)"
    )
    assert steps.training_diagnosis([], 32) == "no validation metrics to diagnose"
