"""benchmarks/bench_iw_k.py: the test NLL at a profile's K against K = 500 on a subset, from a
checkpoint folder, with the same evaluation as a run's (checked against evaluate() called here)."""

from __future__ import annotations

import json

import pytest

from helpers import load_script
from t5vae.evaluation.metrics import evaluate

SENTENCES = ["the cat sat on the mat .", "a dog ran", "the market fell sharply today",
             "he said no", "prices rose", "it was a good year for the company", "not this one"]  # fmt: skip


def _script():
    return load_script("benchmarks/bench_iw_k.py")


def test_each_k_and_seed_is_a_test_evaluation_of_the_first_n_sentences(
    make_model, tokenizer, tmp_path
):
    model = make_model()
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    text = tmp_path / "test.txt"
    text.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "iw.json"
    args = [str(tmp_path / "ckpt"), "--sentences", str(text), "--n", "6", "--k", "2", "5",
            "--seeds", "0", "1", "--batch-size", "4", "--out", str(out)]  # fmt: skip
    assert _script().main(args) == 0
    got = json.loads(out.read_text())
    assert got["n"] == 6 and [(r["k"], r["seed"]) for r in got["runs"]] == [
        (2, 0),
        (2, 1),
        (5, 0),
        (5, 1),
    ]

    def nll(k, seed):  # the run's own evaluation, independently
        return evaluate(model, tokenizer, SENTENCES[:6], iw_samples=k, batch_size=4, seed=seed,
                        progress=False)["nll"]  # fmt: skip

    for r in got["runs"]:
        assert r["nll"] == pytest.approx(nll(r["k"], r["seed"]), rel=1e-6)
    means = {k: (nll(k, 0) + nll(k, 1)) / 2 for k in (2, 5)}
    assert got["by_k"]["2"]["nll"] == pytest.approx(means[2], rel=1e-6)
    assert got["nll_gap"] == pytest.approx(means[2] - means[5], rel=1e-6, abs=1e-9)


def test_bad_n_or_k_is_an_error_before_loading(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        _script().main([str(tmp_path), "--sentences", "x", "--k", "0", "--out", "y"])
    assert exit_.value.code == 2
