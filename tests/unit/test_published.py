"""Published numbers (params/published/): loading and validation, the section beside our rows,
and each definition the section states for this package checked against the code."""

from __future__ import annotations

import csv
import inspect
import json
import math
import shutil

import pandas as pd
import pytest
import torch
import yaml

from helpers import REPO, SHARED
from t5vae.config import params as P
from t5vae.evaluation import metrics
from t5vae.evaluation.metrics import METRIC_KEYS
from t5vae.report import published
from t5vae.report.published import (
    comparison_frame,
    definitions_frame,
    published_section,
    targets_frame,
)

DATASETS = ("ptb", "yelp", "yahoo", "snli")


def test_every_dataset_of_the_paper_has_its_published_rows():
    for name in DATASETS:
        pub = P.load_published(name)
        assert pub is not None and pub.rows, name
        assert {r.source for r in pub.rows} <= set(pub.sources)
        assert pub.park_lee2021 == []  # the labelled empty slot
    assert P.load_published("builtin") is None
    ptb = {r.label: r.metrics for r in P.load_published("ptb").rows}
    assert ptb["LSTM-LM"] == {"ppl": 100.47, "neg_elbo": 101.04}
    assert ptb["AE-BP (Li et al. 2019), λ = 5"]["mi"] == 5.31
    assert P.load_published("ptb").definitions.test_sentences == 3761


def test_published_rows_equal_the_shared_table_they_were_read_from():
    """Every row's numbers are a row of ../shared/published/literature.csv (same source, table,
    dataset), value for value: nothing mistyped while entering them."""
    path = SHARED / "published" / "literature.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found (set T5VAE_SHARED_DIR)")
    printed = {}
    for row in csv.DictReader(path.open()):
        values = {k: float(row[k]) for k in published.COLUMNS if row.get(k)}
        printed.setdefault((row["source"], str(row["table"]), row["dataset"]), []).append(values)
    alias = {"he2019": "he2019review"}
    for name in DATASETS:
        for r in P.load_published(name).rows:
            key = (alias.get(r.source, r.source), str(r.table), name)
            got = {k: float(v) for k, v in r.metrics.items()}
            assert got in printed.get(key, []), f"{name}: {r.label} ({key}) {got}"


@pytest.fixture
def params_copy(tmp_path, monkeypatch):
    root = tmp_path / "params"
    shutil.copytree(REPO / "params", root)
    return root


def _edit(root, change):
    path = root / "published" / "ptb.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["rows"][0].pop("source"), r"ptb\.yaml: rows\[0\]\.source: must name its source"),
        (lambda d: d["rows"][1].update(source="nobody"),
         r"ptb\.yaml: rows\[1\]\.source: 'nobody' is not one of the file's sources \(optimus2020\)"),
        (lambda d: d["rows"][0].pop("table"), r"rows\[0\]\.table: must name the table"),
        (lambda d: d["rows"][2]["metrics"].update(bleu=3), r"rows\[2\]\.metrics\.bleu: must be one of"),
        (lambda d: d["rows"][2]["metrics"].update(ppl="101"), r"rows\[2\]\.metrics\.ppl: must be a number"),
        (lambda d: d["rows"][0].update(metrics={}), r"rows\[0\]\.metrics: must give at least one"),
        (lambda d: d["sources"]["optimus2020"].pop("citation"), r"sources\.optimus2020\.citation"),
        (lambda d: d["definitions"].update(mi_aggregate="all"), r"definitions\.mi_aggregate: must be one of"),
        (lambda d: d["park_lee2021"].append({"model": "T5-VAE", "table": 2, "metrics": {"ppl": 1}}),
         r"park_lee2021\[0\]\.source: must name its source"),
        (lambda d: d["targets"][0]["require"][0].update(row="LSTM"),
         r"targets\[0\]\.require\[0\]\.row: 'LSTM' is not a row of the file \(LSTM-LM; LSTM-AE;"),
        (lambda d: d["targets"][1]["require"][0].update(metric="ppl"),
         r"targets\[1\]\.require\[0\]\.metric: the row 'LSTM-AE' prints no ppl"),
        (lambda d: d["targets"][0]["require"][0].update(op="=="),
         r"targets\[0\]\.require\[0\]\.op: must be one of <=, <, >=, >, got '=='"),
        (lambda d: d["targets"][0].update(technique="l9_pnone"),
         r"targets\[0\]\.technique: 'l9_pnone' is not a file of params/phase2 \(autoencoder,"),
        (lambda d: d["targets"][0].update(require=[]), r"targets\[0\]\.require: must give at least one bound"),
        (lambda d: d["targets"][2].pop("name"), r"targets\[2\]\.name: must say what the target shows"),
    ],
)  # fmt: skip
def test_a_bad_published_row_names_file_and_row(params_copy, change, message):
    _edit(params_copy, change)
    with pytest.raises(P.ParamsError, match=message):
        P.validate_all(params_copy)


def _runs(n_sentences=400, iw_samples=25, nll=(150.0, 152.0), dataset="ptb") -> pd.DataFrame:
    rows = [dict(dataset=dataset, stage="phase2", name="l0.5_pnone", label="λ=0.5, p=none",
                 status="ok", seed=seed, nll=v, ppl_word=800.0 + seed, neg_elbo=v + 3, rec=v - 2,
                 kl=5.0, mi=2.0, au=32, n_sentences=n_sentences, iw_samples=iw_samples,
                 latent_dim=32) for seed, v in enumerate(nll)]  # fmt: skip
    return pd.DataFrame(rows)


def test_targets_name_published_rows_and_phase2_techniques():
    ptb = P.load_published("ptb")
    bounds = [(t.technique, b.metric, b.op, ptb.row(b.row).metrics[b.metric])
              for t in ptb.targets for b in t.require]  # fmt: skip
    # issue 23's targets: LSTM-LM's PPL, LSTM-AE's rec, AE + thresholding's MI, AU and PPL
    assert bounds == [("lnone_pnone", "ppl", "<=", 100.47), ("autoencoder", "rec", "<=", 70.36),
                      ("l0.5_pnone", "mi", ">=", 5.31), ("l0.5_pnone", "au", ">=", 32),
                      ("l0.5_pnone", "ppl", "<", 96.86)]  # fmt: skip


def _target_runs() -> pd.DataFrame:
    """l0.5_pnone (mi 2, au 32, ppl 800 and 801) and a two-phase run at ppl 90 and 100."""
    runs = _runs()
    other = runs.assign(name="lnone_pnone", label="λ=none, p=none", ppl_word=[90.0, 100.0])
    return pd.concat([runs, other], ignore_index=True)


def test_each_target_is_judged_on_the_mean_with_its_distance():
    table = targets_frame(_target_runs(), P.load_published("ptb")).set_index("condition")
    lm = table.loc["PPL (per word) ≤ LSTM-LM"]  # mean 95 <= 100.47
    assert (lm["ours"], lm["published"], lm["met"]) == ("95.00 ± 7.07", "100.47", "yes")
    assert lm["distance"] == f"{95 - 100.47:+.2f} ({95 / 100.47:.2f}×)" == "-5.47 (0.95×)"
    li = "AE-BP (Li et al. 2019), λ = 5"
    assert table.loc[f"MI ≥ {li}", ["met", "distance"]].tolist() == ["**no**", "-3.31 (0.38×)"]
    assert table.loc[f"AU ≥ {li}", ["met", "distance"]].tolist() == [
        "yes",
        "+0.00 (1.00×)",
    ]  # 32 >= 32
    assert table.loc[f"PPL (per word) < {li}", "met"] == "**no**"  # 800.5 against 96.86
    ae = table.loc["Rec ≤ LSTM-AE"]  # no autoencoder run in these runs
    assert (ae["run"], ae["ours"], ae["met"], ae["distance"]) == (
        "autoencoder",
        "-",
        "not in this grid",
        "-",
    )


def test_literature_file_counts_targets_met_and_states_the_definitions_that_differ(tmp_path):
    lines = "\n".join(published.literature_section(_target_runs(), "field"))
    assert "### ptb: field next to the literature" in lines
    # the λ = 0.5 target has one condition of three met: not met; the autoencoder's is not judged
    assert "1 of 2 targets met (1 not judged: their runs are not in this grid)." in lines
    assert "Our K = 25 against their K = 500" in lines
    assert "test sentences (400 here, 3,761 there)" in lines
    assert "| (same) | λ=0.5, p=none | AU ≥ AE-BP" in lines  # the same target's next condition
    # the tables carry the same targets; a dataset without targets writes no literature file
    assert "1 of 2 targets met" in "\n".join(published_section(_target_runs()))
    assert published.literature_section(_runs(dataset="builtin"), "x") == []


def test_the_section_puts_our_rows_beside_the_published_ones():
    lines = "\n".join(published_section(_runs()))
    assert "## ptb: next to the published numbers" in lines
    # ours: mean ± sample sd over the two seeds, n = 2; theirs as printed, with source and table
    assert "| this package: λ=0.5, p=none | this grid | 2 | 151.00 ± 1.41 |" in lines
    assert "| LSTM-LM | optimus2020, Table 8 | - | - | 100.47 | 101.04 |" in lines
    assert "| AE-BP (Li et al. 2019), λ = 5 | optimus2020, Table 8 | - | - | 96.86 |" in lines
    assert "printed -ELBO equals Rec" in lines  # the printed caveat
    assert "Park & Lee 2021" in lines and "no published number of theirs is known" in lines
    assert published_section(_runs(dataset="builtin")) == []  # no published rows: no section


def test_definitions_that_differ_are_said_not_converted():
    defs = definitions_frame(_runs(), P.load_published("ptb")).set_index("quantity")
    assert defs.loc["test sentences", ["this package", "published", "same"]].tolist() == [
        "400", "3,761", "**differs**"]  # fmt: skip
    assert defs.loc["K of the IW-NLL (NLL, PPL)", "same"] == "**differs**"
    assert (
        "upper bounds on what K = 500 would give" in defs.loc["K of the IW-NLL (NLL, PPL)", "note"]
    )
    assert defs.loc["MI: q(z) aggregated over", "same"] == "**differs**"  # unstated in the sources
    for same in ("PPL", "AU threshold δ", "latent size", "units"):
        assert defs.loc[same, "same"] == "yes", same
    # the whole test set at K = 500: those two agree
    full = definitions_frame(_runs(3761, 500), P.load_published("ptb")).set_index("quantity")
    assert (
        full.loc["test sentences", "same"]
        == full.loc["K of the IW-NLL (NLL, PPL)", "same"]
        == "yes"
    )
    # our cells are the runs' own numbers, unconverted
    table = comparison_frame(_runs(), P.load_published("ptb"))
    assert table.iloc[0]["PPL (per word)"] == "800.50 ± 0.71"


def test_entered_park_lee_rows_join_the_table(params_copy):
    def add(d):
        d["sources"]["parklee2021"] = {"citation": "Park, Lee. Finetuning Pretrained Transformers "
                                       "into Variational Autoencoders. Insights @ EMNLP 2021.",
                                       "read_from": "Table 1 (hypothetical, for the test)"}  # fmt: skip
        d["park_lee2021"] = [{"model": "T5-VAE", "setting": "λ = 3", "source": "parklee2021",
                              "table": 1, "metrics": {"mi": 1.5}}]  # fmt: skip

    _edit(params_copy, add)
    lines = "\n".join(published_section(_runs(), params_copy))
    assert "| T5-VAE, λ = 3 | parklee2021, Table 1 | - | - | - | - | - | - | 1.5 | - |" in lines
    assert "no published number of theirs is known" not in lines


# ------------------------------------------------ this package's side of each definition, checked

SENTENCES = ["the cat sat on the mat .", "a dog ran", "the market fell sharply today",
             "he said no", "prices rose", "it was a good year for the company"]  # fmt: skip


def test_our_stated_definitions_are_what_the_code_computes(make_model, tokenizer):
    ours = published.OURS
    # AU's delta: the default of evaluate() and of active_units
    assert inspect.signature(metrics.evaluate).parameters["au_delta"].default == ours["au_delta"]
    assert inspect.signature(metrics.active_units).parameters["delta"].default == ours["au_delta"]
    m = metrics.evaluate(make_model(), tokenizer, SENTENCES, iw_samples=3, batch_size=2,
                         progress=False, return_posteriors=True)  # fmt: skip
    # PPL per word, one EOS per sentence counted: from the per-sentence NLL, independently
    words = sum(len(s.split()) for s in SENTENCES)
    assert ours["ppl_per"] == "word" and ours["ppl_counts_eos"]
    assert m["ppl_word"] == pytest.approx(
        torch.tensor(m["nll"] * len(SENTENCES) / (words + len(SENTENCES))).exp().item()
    )
    # MI: q(z) is the mixture over the whole evaluation set, not over each batch of 2
    assert ours["mi_aggregate"] == "test set"
    whole = metrics.mutual_information(m["mu"], m["logvar"], m["z"])
    per_batch = metrics.batched_mutual_information(m["mu"], m["logvar"], m["z"], 2)
    assert m["mi"] == pytest.approx(whole) and m["mi"] != pytest.approx(per_batch)
    # units: nats per sentence (rec is a mean over sentences of a sum over tokens, natural log)
    assert ours["units"] == "nats per sentence" and "nats" in metrics.__doc__.splitlines()[0]


def _with_results(tmp_path, rows: list[dict]) -> pd.DataFrame:
    """Phase-2 runs as collect() gives them, each with a results file holding its examples."""
    out = []
    for i, row in enumerate(rows):
        path = tmp_path / f"run{i}.json"
        examples = {"reconstructions": [{"input": f"in {row['name']} | {i}", "reconstruction": "x " * 200}],
                    "prior_samples": row.pop("samples", ["a", "b"])}  # fmt: skip
        record = {"run_id": f"r{i}", "status": "ok", "metrics": dict.fromkeys(METRIC_KEYS, 1.0),
                  "provenance": {}, "examples": examples, "history": row.pop("history", [])}  # fmt: skip
        path.write_text(json.dumps(record))
        out.append({"dataset": "ptb", "stage": "phase2", "status": "ok", "seed": 0, "label": row["name"],
                    "latent_dim": 32, "path": str(path), **row})  # fmt: skip
    return pd.DataFrame(out)


def test_the_best_row_is_the_lowest_nll_among_informative_runs_and_its_examples_are_shown(tmp_path):
    runs = _with_results(tmp_path, [
        dict(name="collapsed", nll=100.0, au=0, mi=0.0, kl=0.0, diagnosis="collapsed"),
        dict(name="informative", nll=120.0, au=32, mi=5.0, kl=9.0, diagnosis="informative"),
        # no stored diagnosis: the rules decide from its metrics (AU = 0: collapsed)
        dict(name="old", nll=110.0, au=0, mi=0.0, kl=0.0, diagnosis=None),
        # stored none, metrics informative, but every prior sample the same sentence: collapsed
        dict(name="one_sentence", nll=105.0, au=32, mi=5.0, kl=9.0, diagnosis=None, samples=["s", "s"]),
    ])  # fmt: skip
    assert published.best_row(runs)[0]["name"].tolist() == ["informative"]
    lines = "\n".join(published.examples_lines(runs))
    assert "Examples of the best row, informative (the lowest NLL among rows" in lines
    assert "- reconstruction: `in informative | 1` → `x x" in lines  # code spans: <unk> as written
    assert f"{'x ' * 79}x…`" in lines  # cut at EXAMPLE_CHARS characters
    assert "- prior sample: `a`" in lines
    # no run informative in every seed: the lowest NLL of all
    none = runs[runs["name"] != "informative"]
    rows, why = published.best_row(none)
    assert rows["name"].tolist() == ["collapsed"]
    assert (
        why
        == "no row is diagnosed informative in every seed: the lowest NLL of all, diagnosed collapsed"
    )


COLLAPSED = {"nll": 100.0, "diagnosis": "collapsed"}  # what the examples need of a row


def _epochs(
    column: str, values: list[float], steps: int = 100, seconds: float = 90.0
) -> list[dict]:
    """A training history: one row per epoch with the validation value, cumulative steps, seconds."""
    return [{"epoch": e + 1, "step": steps * (e + 1), f"valid_{column}": v, "wall_time_s": seconds}
            for e, v in enumerate(values)]  # fmt: skip


def test_what_reaching_a_missed_target_costs_is_the_gap_over_the_last_epochs_change(tmp_path):
    runs = _with_results(tmp_path, [
        # PPL 400 on test against the LSTM-LM's 100.47; validation PPL 800 -> 600 -> 500 (two seeds)
        dict(name="lnone_pnone", seed=0, **COLLAPSED, ppl_word=390.0, history=_epochs("ppl_word", [800, 600, 490])),
        dict(name="lnone_pnone", seed=1, **COLLAPSED, ppl_word=410.0, history=_epochs("ppl_word", [800, 600, 510])),
        # rec 150 against the LSTM-AE's 70.36, but its validation rec rose in the last epoch
        dict(name="autoencoder", seed=0, **COLLAPSED, rec=150.0, history=_epochs("rec", [160.0, 148.0, 151.0])),
        # met (AU 32 >= 32): no row; missed without a history (MI): no row either
        dict(name="l0.5_pnone", seed=0, **COLLAPSED, au=32, mi=1.0, ppl_word=90.0),
    ])  # fmt: skip
    table = published.reach_frame(runs, P.load_published("ptb")).set_index("condition")
    assert table.index.tolist() == ["PPL (per word) ≤ LSTM-LM", "Rec ≤ LSTM-AE"]
    lm = table.loc["PPL (per word) ≤ LSTM-LM"]
    # in nats per word: the test gap ln(100.47 / 400) over the last change ln(500 / 600), both
    # seeds' validation values averaged epoch by epoch; steps and seconds of an epoch: 100, 90 s
    epochs = -(-math.log(100.47 / 400) // math.log(500 / 600))
    assert epochs == 8 and lm["more epochs"] == "8"
    assert (lm["steps"], lm["hours"]) == ("800", f"{8 * 90 / 3600:.1f}")
    assert lm["validation by epoch"] == "800.00 → 600.00 → 500.00"
    assert (
        lm["change per epoch"]
        == f"{math.log(600 / 800):+.3f}, {math.log(500 / 600):+.3f} nats/word"
    )
    # the changes shrink by r = ln(5/6) / ln(3/4): the test value's geometric-series limit
    r = math.log(5 / 6) / math.log(3 / 4)
    assert lm["levels off at"] == f"{400 * (5 / 6) ** (r / (1 - r)):.2f}" == "291.77"
    rec = table.loc["Rec ≤ LSTM-AE"]
    assert rec["levels off at"] == "-"  # the changes changed sign: no series
    assert (rec["change per epoch"], rec["more epochs"]) == (
        "-12.000, +3.000", "not reached: the last epoch moved away")  # fmt: skip
    # rec is in nats already: 150 - 70.36 over a last change of -10 takes 8 epochs
    (tmp_path / "x").mkdir()
    runs.loc[runs["name"] == "autoencoder", "path"] = _with_results(tmp_path / "x", [
        dict(name="autoencoder", rec=150.0, history=_epochs("rec", [160.0, 150.0]))])["path"].iloc[0]  # fmt: skip
    table = published.reach_frame(runs, P.load_published("ptb")).set_index("condition")
    assert table.loc["Rec ≤ LSTM-AE", "more epochs"] == str(math.ceil((150 - 70.36) / 10)) == "8"
    # the literature file carries it, with what it assumes; no histories (no paths): nothing
    lines = "\n".join(published.literature_section(runs, "field"))
    assert "What reaching each missed condition would cost" in lines and "lower bound" in lines
    assert published.reach_lines(_target_runs(), P.load_published("ptb")) == []


def test_the_best_rows_interpolation_is_shown_only_when_made_from_that_run_and_seed(tmp_path):
    runs = _with_results(tmp_path, [dict(name="best", run_id="phase2-best", nll=1.0, diagnosis="informative"),
                                    dict(name="other", run_id="phase2-other", nll=2.0, diagnosis="informative")])  # fmt: skip
    made = {"run_id": "phase2-best", "seed": 0, "t": [0.0, 0.5, 1.0], "path": ["a", "<unk> b", "c"]}
    lines = "\n".join(published.examples_lines(runs, made))
    assert "Its interpolation between the posterior means of the first two test sentences" in lines
    assert "- t = 0.00: `a`\n- t = 0.50: `<unk> b`\n- t = 1.00: `c`" in lines
    for stale in ({**made, "run_id": "phase2-other"}, {**made, "seed": 1}, None):
        assert "Its interpolation" not in "\n".join(published.examples_lines(runs, stale))
