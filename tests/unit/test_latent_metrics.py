"""evaluation.latent: controlled generation, disentanglement, path smoothness and diversity as a
run's results file gets them. Scores against a decoder whose behaviour is known (hand-computed),
the label classifier on generated Yelp-layout files, and batch-size independence on a real model."""

from __future__ import annotations

import pytest
import torch

from t5vae.data import builtin
from t5vae.data.corpora import load_split
from t5vae.evaluation import latent

TOPICS = builtin.FACTORS["topic"]


@pytest.fixture
def topic_world(monkeypatch):
    """A code of one-hot topics (mu = e_topic over the first 4 of 8 dimensions) and a decoder that
    writes a grammar sentence of the topic with the largest coordinate: what attribute shifts do
    to it is computable by hand."""
    sentences, factors = builtin.generate(400, seed=5)
    by_topic = {f["topic"]: s for s, f in zip(sentences, factors, strict=True)}

    def mu(model, tokenizer, texts, batch_size):
        out = torch.zeros(len(texts), 8)
        for i, t in enumerate(texts):
            out[i, TOPICS.index(builtin.parse(t)["topic"])] = 1.0
        return out

    def decode_text(model, tokenizer, z, batch_size, **decode_kw):
        return [by_topic[TOPICS[int(row[:4].argmax())]] for row in z]

    monkeypatch.setattr(latent, "posterior_means", mu)
    monkeypatch.setattr(latent, "decode_text", decode_text)
    topic_only = latent.Scorer(
        {"topic": TOPICS},
        lambda texts: [
            None if (p := builtin.parse(t)) is None else {"topic": p["topic"]} for t in texts
        ],
        True,
    )
    return topic_only, (sentences[:200], factors[:200]), (sentences[200:], factors[200:])


def test_attribute_shifts_reach_the_target_once_alpha_passes_the_hand_computed_point(topic_world):
    """v_c = e_c - 1/3 sum_{j != c} e_j, so a source of topic a shifted to c has z_c = alpha and
    z_a = 1 - alpha / 3: the decoder writes topic c once alpha > 3/4, never below."""
    scorer, fit, test = topic_world
    metrics, examples = latent.controlled_generation(None, None, scorer, fit, test)
    assert metrics["transfer_accuracy_a0.5"] == 0.0
    assert metrics["transfer_accuracy_a1"] == metrics["transfer_accuracy_a2"] == 1.0
    assert metrics["grammatical_a0.5"] == metrics["content_kept_a1"] == 1.0  # no other factor
    # each source goes to the next topic after its own
    for ex in examples["shifts"]["topic"]:
        own = builtin.parse(ex["source"])["topic"]
        assert ex["target"] == TOPICS[(TOPICS.index(own) + 1) % 4]
        assert builtin.parse(ex["shifted"])["topic"] == ex["target"]
    # class-conditional samples: every topic's mu is e_topic exactly (sd 0): all reach it
    assert metrics["conditional_accuracy"] == metrics["conditional_grammatical"] == 1.0
    rows = [r for r in examples["transfer"] if r["alpha"] == 1.0]
    assert rows == [{**rows[0], "n": latent.N_SOURCES}]


def test_a_label_classifier_scores_shifts_on_labelled_yelp_layout_files(tmp_path, monkeypatch):
    """Yelp layout ("label<TAB>text"), generated here: the classifier trained on the training split
    reads the sentiment of held-out text; shifts scored by it reach the other label."""
    from t5vae.config import params as P

    words = {"1": ["great", "lovely", "tasty", "friendly"], "0": ["awful", "rude", "cold", "bland"]}
    folder = tmp_path / "yelp"
    folder.mkdir()
    for split, n in (("train", 200), ("valid", 40), ("test", 40)):
        lines = [f"{y}\tthe food was {words[y][i % 4]} and the staff {words[y][(i + 1) % 4]} ."
                 for i in range(n) for y in ("0", "1")]  # fmt: skip
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    train = load_split(P.load_dataset("yelp"), "train", str(tmp_path))
    test = load_split(P.load_dataset("yelp"), "test", str(tmp_path))
    scorer = latent.label_scorer(train.sentences, train.labels)
    assert scorer.factors == {"label": ("0", "1")} and not scorer.grammar
    assert [r["label"] for r in scorer.read(test.sentences)] == [str(y) for y in test.labels]

    def mu(model, tokenizer, texts, batch_size):  # 1 for a positive sentence, else 0
        return torch.tensor([[float(any(w in t for w in words["1"])), 0.0] for t in texts])

    monkeypatch.setattr(latent, "posterior_means", mu)
    monkeypatch.setattr(
        latent,
        "decode_text",
        lambda m, t, z, b, **kw: [
            f"the food was {'great' if row[0] > 0.5 else 'awful'} ." for row in z
        ],
    )
    labelled = lambda c: (c.sentences, [{"label": str(y)} for y in c.labels])  # noqa: E731
    metrics, _ = latent.controlled_generation(None, None, scorer, labelled(train), labelled(test))
    # v_1 = mean(mu | 1) - mean(mu | 0) = 1 and v_0 = -1: a source of label y goes to
    # z = y + alpha (1 - 2y); at alpha = 0.5 both sit at 0.5, which the decoder writes as "awful":
    # the positive half of the (balanced) sources reaches its target; from alpha = 1 all do
    assert metrics["transfer_accuracy_a0.5"] == 0.5 and metrics["transfer_accuracy_a1"] == 1.0
    assert "grammatical_a1" not in metrics  # a classifier cannot tell grammatical text
    # one factor: DCI's disentanglement would be 1 whatever the code, so it is left out
    from t5vae.evaluation.disentanglement import dci

    one = dci(mu(None, None, test.sentences, 1).numpy(), {"label": [str(y) for y in test.labels]})
    assert set(one) == {"dci_completeness", "dci_informativeness"}


def test_a_run_on_a_labelled_corpus_is_scored_by_its_classifier_and_the_grammar_by_its_parser(
    tmp_path,
):
    """What a run's evaluation hands to latent_space_metrics (notebook.steps._factor_sets): on
    Yelp-layout files the training split's classifier and the labels of the validation and test
    splits; on the built-in corpus the grammar's parser and the known factors; else nothing."""
    from t5vae.notebook import steps

    folder = tmp_path / "yelp"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        lines = [
            f"{y}\tthe food was {'great' if y == '1' else 'awful'} number {i} ."
            for i in range(30)
            for y in "01"
        ]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    spec = steps.make_spec(
        "smoke", "yelp", "phase2", "l0.5_pnone", tmp_path, data_dir=str(tmp_path)
    )
    test = steps.load_corpus(spec, "test")
    scorer, fit, scored = steps._factor_sets(spec, test)
    assert not scorer.grammar and scorer.factors == {"label": ("0", "1")}
    assert scored == (test.sentences, [{"label": str(y)} for y in test.labels]) and len(
        fit[0]
    ) == len(fit[1])
    assert [r["label"] for r in scorer.read(["the food was great number 99 ."])] == ["1"]
    builtin_spec = steps.make_spec("smoke", "builtin", "phase2", "l0.5_pnone", tmp_path)
    scorer, fit, scored = steps._factor_sets(builtin_spec, steps.load_corpus(builtin_spec, "test"))
    assert scorer.grammar and scored[1][0] == builtin.parse(scored[0][0])
    ptb = steps.load_corpus(builtin_spec, "test")
    ptb.factors, ptb.labels = None, None  # a corpus with neither (PTB)
    assert steps._factor_sets(builtin_spec, ptb) == (None, None, None)


def test_latent_space_metrics_do_not_depend_on_the_batch_size(make_model, tokenizer, monkeypatch):
    """On a real (tiny, random) model: every score at batch size 1 equals the batched one, each in
    its range; without known factors only the diversity of prior samples is computed."""
    from t5vae.evaluation.generation import encode_sentences, sample_prior

    for name, value in (("N_SOURCES", 4), ("N_CONDITIONAL", 2), ("N_PATHS", 2), ("PATH_STEPS", 3)):
        monkeypatch.setattr(latent, name, value)
    model = make_model(seed=1, latent_dim=4)
    sentences, factors = builtin.generate(24, seed=9)
    mu, logvar = encode_sentences(model, tokenizer, sentences[12:])
    samples = sample_prior(model, tokenizer, 6, max_new_tokens=6)
    args = (model, tokenizer, latent.grammar_scorer(), (sentences[:12], factors[:12]),
            (sentences[12:], factors[12:]), mu, logvar, samples)  # fmt: skip
    one = latent.latent_space_metrics(*args, batch_size=1, max_new_tokens=6)[0]
    many = latent.latent_space_metrics(*args, batch_size=64, max_new_tokens=6)[0]
    assert one == many
    for key in ("transfer_accuracy_a1", "content_kept_a4", "conditional_accuracy", "mig",
                "dci_completeness", "lerp_grammatical", "traversal_grammatical", "repetition_rate"):  # fmt: skip
        assert 0.0 <= one[key] <= 1.0, key
    only = latent.latent_space_metrics(model, tokenizer, None, None, None, mu, logvar, samples)[0]
    assert set(only) == {"self_bleu", "repetition_rate"}
