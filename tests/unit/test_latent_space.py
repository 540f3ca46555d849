"""The latent space beyond the ELBO: the built-in grammar's parser, controlled generation and its
scores, interpolation and traversals, diversity, disentanglement (MIG, DCI), the collapse
diagnosis. Each against a hand-computed case or an independent property."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from t5vae.data import builtin
from t5vae.evaluation import control
from t5vae.evaluation.diagnosis import diagnose
from t5vae.evaluation.disentanglement import dci, dci_scores, mig
from t5vae.evaluation.generation import interpolate, repetition_rate, self_bleu, slerp


# --------------------------------------------------------------------------- the parser
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 50))
def test_every_generated_sentence_parses_to_its_factors(seed, n):
    sentences, factors = builtin.generate(n, seed)
    assert [builtin.parse(s) for s in sentences] == factors


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_a_phrase_of_another_topic_tense_or_sentiment_is_not_grammatical(seed):
    (sentence,), (f,) = builtin.generate(1, seed)
    other_topic = next(t for t in builtin.FACTORS["topic"] if t != f["topic"])
    obj = next(o for o in builtin._OBJECTS[f["topic"]] if f" {o} " in sentence)
    assert (
        builtin.parse(sentence.replace(f" {obj} ", f" {builtin._OBJECTS[other_topic][0]} ")) is None
    )
    time = builtin._TIMES[builtin.FACTORS["tense"].index(f["tense"])]
    other_time = next(t for t in builtin._TIMES if t != time)
    assert builtin.parse(sentence.replace(f" {time} ", f" {other_time} ")) is None
    adjective = next(a for a in builtin._ADJECTIVES[f["sentiment"]] if f" {a}" in sentence)
    if f["length"] == "long":  # the clause says the sentiment again: the other adjective disagrees
        other = "negative" if f["sentiment"] == "positive" else "positive"
        assert builtin.parse(sentence.replace(adjective, builtin._ADJECTIVES[other][0])) is None


def test_parse_normalizes_spacing_and_case_and_rejects_other_text():
    s = "The chef cooked a soup yesterday and it was great, and everyone was happy."
    assert builtin.parse(s) == {"topic": "food", "sentiment": "positive", "tense": "past",
                                "length": "long"}  # fmt: skip
    for bad in ("", "the chef cooked a soup", "the chef cooked a soup yesterday and it was great . .",
                "the chef cooked a soup yesterday and it was great , and everyone was upset ."):  # fmt: skip
        assert builtin.parse(bad) is None, bad


# --------------------------------------------------------------------------- scores of generated text
def test_transfer_scores_by_hand():
    src = ["the chef cooked a soup yesterday and it was great .",
           "the team wins the cup today and it is awful ."]  # fmt: skip
    gen = [
        "the chef cooked a soup yesterday and it was awful .",  # transferred, content kept
        "the team wins the cup today and it is awful .",
    ]  # not transferred (already negative)
    scores = control.transfer_scores(src, gen, "sentiment", "negative")
    assert scores["grammatical"] == 1.0 and scores["transfer_accuracy"] == 1.0
    assert scores["content_kept"] == 1.0 and 0 < scores["bleu_to_source"] < 100
    gen = ["the chef cooked the cup yesterday and it was awful .", src[1]]  # ungrammatical first
    scores = control.transfer_scores(src, gen, "sentiment", "negative")
    assert scores["grammatical"] == 0.5 and scores["transfer_accuracy"] == 0.5
    with pytest.raises(ValueError, match="grammar"):
        control.transfer_scores(["not a sentence ."], src[:1], "sentiment", "negative")


def test_smoothness_by_hand():
    a = "the chef cooked a soup yesterday and it was great ."
    b = "the chef cooked a soup yesterday and it was awful ."
    assert control.smoothness([a, a, b, b]) == {"grammatical": 1.0, "monotone_factors": 1.0}
    # sentiment flips twice: 3 of 4 factors monotone; one step is not a sentence of the grammar
    path = [a, b, "soup soup soup", a]
    assert control.smoothness(path) == {"grammatical": 0.75, "monotone_factors": 0.75}
    assert math.isnan(control.smoothness(["x"])["monotone_factors"])


def test_self_bleu_and_repetition_by_hand():
    assert self_bleu(["the cat sat on the mat ."] * 3) == pytest.approx(100.0)
    assert self_bleu(["a b c d e", "f g h i j", "k l m n o"]) == 0.0
    assert repetition_rate(["a", "a", "b", "c"]) == 0.25 and repetition_rate(["a", "b"]) == 0.0
    with pytest.raises(ValueError):
        self_bleu(["one"])


# --------------------------------------------------------------------------- disentanglement
def test_mig_is_one_for_a_factor_in_one_dimension_and_zero_when_it_is_copied():
    v = np.array([0, 1] * 50)
    assert mig(np.c_[v, np.zeros(100)], {"v": v}) == {
        "mig_v": pytest.approx(1.0),
        "mig": pytest.approx(1.0),
    }
    assert mig(np.c_[v, v], {"v": v})["mig"] == pytest.approx(0.0)
    # a half-informative second dimension: (H(v) - I(z2; v)) / H(v) with I from the 2x2 table
    z2 = np.array([0, 1] * 25 + [0, 0] * 25)
    p = np.array([[25, 25], [0, 50]]) / 100  # joint of (z2, v): z2=1 only with v=1
    pz, pv = p.sum(1), p.sum(0)
    mi = sum(
        p[i, j] * math.log(p[i, j] / (pz[i] * pv[j])) for i in range(2) for j in range(2) if p[i, j]
    )
    assert mig(np.c_[v, z2], {"v": v})["mig"] == pytest.approx((math.log(2) - mi) / math.log(2))


def test_dci_scores_by_hand():
    assert dci_scores(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert dci_scores(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-12)
    # R = [[1, 0], [1, 1]]: dimension 0 is pure (weight 1/3), dimension 1 uniform (weight 2/3);
    # factor 0 spread over both dimensions, factor 1 in one
    assert dci_scores(np.array([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx((1 / 3, 0.5))


def test_dci_finds_a_disentangled_code():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 600), rng.integers(0, 2, 600)
    code = np.c_[a + 0.05 * rng.normal(size=600), b + 0.05 * rng.normal(size=600)]
    scores = dci(code, {"a": a, "b": b})
    assert scores["dci_informativeness"] == 1.0
    assert scores["dci_disentanglement"] > 0.9 and scores["dci_completeness"] > 0.9
    mixed = np.c_[a + b, a - b] + 0.05 * rng.normal(size=(600, 2))
    assert dci(mixed, {"a": a, "b": b})["dci_disentanglement"] < scores["dci_disentanglement"]


# --------------------------------------------------------------------------- the collapse diagnosis
def test_diagnosis_rules_in_order():
    assert diagnose({"au": 0, "mi": 3.0, "kl": 5.0}, 32).label == "collapsed"
    assert diagnose({"au": 10, "mi": 0.01, "kl": 5.0}, 32).rule.startswith("MI = 0.010")
    assert diagnose({"au": 10, "mi": 2.0, "kl": 0.01}, 32).label == "collapsed"
    assert diagnose({"au": 10, "mi": 2.0, "kl": 5.0}, 32, ["same ."] * 5).label == "collapsed"
    assert diagnose({"au": 10, "mi": 0.5, "kl": 5.0}, 32).label == "weak"
    assert diagnose({"au": 7, "mi": 2.0, "kl": 5.0}, 32).label == "weak"
    d = diagnose({"au": 8, "mi": 2.0, "kl": 5.0}, 32, ["a .", "b ."])
    assert d.label == "informative" and str(d) == "informative (MI = 2.00 nats, AU = 8 of 32)"


# --------------------------------------------------------------------------- codes and decoding
def test_attribute_vector_and_class_conditional_by_hand():
    mu = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    labels = ["pos", "pos", "neg", "neg"]
    assert torch.allclose(control.attribute_vector(mu, labels, "pos"), torch.tensor([2.0, -3.0]))
    z = control.class_conditional(mu, labels, "neg", 2000, seed=0)
    assert torch.allclose(z.mean(0), torch.tensor([0.0, 3.0]), atol=0.1)
    assert torch.allclose(z.std(0), torch.tensor([0.0, math.sqrt(2)]), atol=0.1)
    with pytest.raises(ValueError, match="with and without"):
        control.attribute_vector(mu, ["pos"] * 4, "pos")


def test_slerp_by_hand():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    path = slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(path[0], a) and torch.allclose(path[2], b, atol=1e-6)
    # halfway: angle 45 degrees, sin(w/2)/sin(w) * (a + b)
    assert torch.allclose(path[1], math.sin(math.pi / 4) * (a + b), atol=1e-6)
    same = slerp(a, 2 * a, torch.tensor([0.5]))  # parallel: linear
    assert torch.allclose(same[0], 1.5 * a)


def test_decoding_functions_work_one_sentence_at_a_time(make_model, tokenizer, builtin_corpus):
    model = make_model(seed=0)
    sentences = builtin_corpus.sentences[:3]
    vector = torch.ones(model.config.latent_dim)
    one = [control.shift(model, tokenizer, [s], vector, 2.0, batch_size=1, max_new_tokens=8)[0]
           for s in sentences]  # fmt: skip
    assert one == control.shift(model, tokenizer, sentences, vector, 2.0, max_new_tokens=8)
    for kind in ("lerp", "slerp"):
        path = interpolate(model, tokenizer, sentences[0], sentences[1], steps=4,
                                     kind=kind, max_new_tokens=8)  # fmt: skip
        assert len(path) == 4
    steps = control.traversal(model, tokenizer, sentences[0], 0, [-2.0, 0.0, 2.0], max_new_tokens=8)
    assert len(steps) == 3
    mu = torch.tensor([[0.0, 3.0], [0.0, -3.0]])
    assert control.dimensions_by_kl(mu, torch.zeros_like(mu)) == [1, 0]


def test_builtin_attribute_vector_is_the_class_mean_difference_at_any_batch_size(
    make_model, tokenizer
):
    """From the grammar's own sentences and factors, batch by batch: the same vector as
    attribute_vector over one batch of all of them, at batch size 1 too."""
    from t5vae.evaluation.generation import encode_sentences

    model = make_model(seed=0)
    sentences, factors = builtin.generate(6, seed=3)
    mu, _ = encode_sentences(model, tokenizer, sentences)
    whole = control.attribute_vector(mu, [f["tense"] for f in factors], factors[0]["tense"])
    for batch_size in (1, 4):
        got = control.builtin_attribute_vector(model, tokenizer, "tense", factors[0]["tense"],
                                               n=6, seed=3, batch_size=batch_size)  # fmt: skip
        assert torch.allclose(got, whole, atol=1e-5)
    with pytest.raises(ValueError, match="unknown attribute colour=red: known topic="):
        control.builtin_attribute_vector(model, tokenizer, "colour", "red")
