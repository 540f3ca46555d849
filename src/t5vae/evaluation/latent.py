"""A run's latent space, scored: controlled generation, disentanglement, the smoothness of paths
through z, and the diversity of prior samples. What `latent_space_metrics` adds to a results file:

    transfer_accuracy_a<alpha>  sources shifted to z = mu_x + alpha * v_c (v_c the attribute vector
        of a value c other than the source's, evaluation.control) whose decoding has factor = c;
        content_kept_a<alpha> (every other factor unchanged), grammatical_a<alpha> and
        transfer_bleu_a<alpha> (BLEU to the sources) of the same sentences; means over factors
    conditional_accuracy    sentences decoded from the class-conditional Gaussian of a value that
        have it (conditional_grammatical: that are sentences of the grammar); mean over values
    mig, mig_<factor>, dci_*  disentanglement of mu against the factors (evaluation.disentanglement)
    lerp_/slerp_/traversal_ grammatical, monotone  smoothness of decoded paths (control.smoothness)
    self_bleu, repetition_rate  diversity of the prior samples (evaluation.generation)

Attribute vectors and class-conditional Gaussians are fitted on the mu of one split (validation),
sources are taken from another (test). Factors are read off decoded text by a `Scorer`: the
built-in grammar's parser (exact, with a grammatical / not answer), or on labelled real data
(Yelp's sentiment) a classifier trained on the training split (TF-IDF + logistic regression,
scikit-learn), which reads a label off any text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from t5vae.data.builtin import FACTORS
from t5vae.evaluation import control
from t5vae.evaluation.disentanglement import dci, mig
from t5vae.evaluation.generation import (
    decode_text,
    interpolate,
    posterior_means,
    repetition_rate,
    self_bleu,
)
from t5vae.model.vae import T5VAE

ALPHAS = (0.5, 1.0, 2.0, 4.0)  # attribute-shift strengths, in class-mean differences
HEADLINE_ALPHA = 1.0  # the strength the tables and claims report (figures: every alpha)
N_SOURCES = 100  # test sentences shifted per factor
N_CONDITIONAL = 20  # sentences decoded per class-conditional Gaussian
N_PATHS = 10  # interpolated pairs; traversed sentences: N_PATHS // 2
PATH_STEPS = 7
TRAVERSED_DIMS = 3  # the most informative dimensions (by KL) traversed, at -3 ... 3


@dataclass(frozen=True)
class Scorer:
    """Reads factor values off sentences: `read(sentences)` gives a {factor: value} per sentence,
    or None for text that is not a sentence of the grammar (`grammar`: whether that can happen)."""

    factors: dict[str, tuple]
    read: Callable[[list[str]], list[dict | None]]
    grammar: bool


def grammar_scorer() -> Scorer:
    """The built-in grammar's parser: exact factors, and grammatical or not."""
    return Scorer(dict(FACTORS), control.parse_each, grammar=True)


def label_scorer(sentences: list[str], labels: list, seed: int = 0) -> Scorer:
    """A classifier of the label (e.g. Yelp's sentiment) trained on labelled sentences: TF-IDF of
    word 1-2-grams and logistic regression (scikit-learn); every text gets a label."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    values = tuple(sorted({str(y) for y in labels}))
    if len(values) < 2:
        raise ValueError("a label classifier needs sentences of at least two labels")
    clf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1),
                        LogisticRegression(max_iter=1000, random_state=seed))  # fmt: skip
    clf.fit(sentences, [str(y) for y in labels])
    return Scorer(
        {"label": values}, lambda s: [{"label": y} for y in clf.predict(s)], grammar=False
    )


def controlled_generation(model, tokenizer, scorer: Scorer, fit: tuple[list[str], list[dict]],
                          test: tuple[list[str], list[dict]], batch_size: int = 64,
                          max_new_tokens: int = 64, seed: int = 0) -> tuple[dict, dict]:  # fmt: skip
    """Attribute shifts at each alpha and class-conditional samples, scored by `scorer`;
    (metrics, examples: the shifted sentences at alpha = 1, three per factor)."""
    mu_fit = posterior_means(model, tokenizer, fit[0], batch_size)
    sources, source_factors = test[0][:N_SOURCES], test[1][:N_SOURCES]
    mu_src = posterior_means(model, tokenizer, sources, batch_size)
    rows, examples, conditional = [], {}, []
    for factor, values in scorer.factors.items():
        labels = [f[factor] for f in fit[1]]
        present = [v for v in values if v in labels and labels.count(v) < len(labels)]
        if len(present) < 2:
            continue
        vectors = {v: control.attribute_vector(mu_fit, labels, v) for v in present}
        # each source goes to the next value of the factor after its own
        targets = [present[(present.index(f[factor]) + 1) % len(present)]
                   if f[factor] in present else present[0] for f in source_factors]  # fmt: skip
        shift = torch.stack([vectors[t] for t in targets])
        for alpha in ALPHAS:
            text = decode_text(model, tokenizer, mu_src + alpha * shift, batch_size,
                               max_new_tokens=max_new_tokens)  # fmt: skip
            scores = control.transfer_scores(sources, text, factor, targets, read=scorer.read,
                                             source_factors=source_factors)  # fmt: skip
            rows.append({"factor": factor, "alpha": alpha, **scores})
            if alpha == HEADLINE_ALPHA:
                examples[factor] = [{"source": s, "target": t, "shifted": g}
                                    for s, t, g in list(zip(sources, targets, text, strict=True))[:3]]  # fmt: skip
        for i, v in enumerate(present):
            z = control.class_conditional(mu_fit, labels, v, N_CONDITIONAL, seed=seed + i)
            read = scorer.read(
                decode_text(model, tokenizer, z, batch_size, max_new_tokens=max_new_tokens)
            )
            conditional.append(
                ([r is not None for r in read], [r is not None and r[factor] == v for r in read])
            )
    metrics = {}
    for alpha in ALPHAS:
        at = [r for r in rows if r["alpha"] == alpha]
        if at:
            metrics[f"transfer_accuracy_a{alpha:g}"] = float(
                np.mean([r["transfer_accuracy"] for r in at])
            )
            metrics[f"content_kept_a{alpha:g}"] = float(np.mean([r["content_kept"] for r in at]))
            metrics[f"transfer_bleu_a{alpha:g}"] = float(np.mean([r["bleu_to_source"] for r in at]))
            if scorer.grammar:
                metrics[f"grammatical_a{alpha:g}"] = float(np.mean([r["grammatical"] for r in at]))
    if conditional:
        metrics["conditional_accuracy"] = float(np.mean([np.mean(hit) for _, hit in conditional]))
        if scorer.grammar:
            metrics["conditional_grammatical"] = float(
                np.mean([np.mean(ok) for ok, _ in conditional])
            )
    return metrics, {"shifts": examples, "transfer": rows}


def path_smoothness(model, tokenizer, sentences: list[str], mu: torch.Tensor, logvar: torch.Tensor,
                    max_new_tokens: int = 64) -> tuple[dict, dict]:  # fmt: skip
    """Lerp and slerp between pairs of sentences and traversals of the most informative
    dimensions, each path scored by control.smoothness (grammar only); (metrics, one example of
    each path)."""
    kw = {"max_new_tokens": max_new_tokens}
    pairs = [
        (sentences[2 * i], sentences[2 * i + 1]) for i in range(min(N_PATHS, len(sentences) // 2))
    ]
    paths = {kind: [interpolate(model, tokenizer, a, b, PATH_STEPS, kind, **kw) for a, b in pairs]
             for kind in ("lerp", "slerp")}  # fmt: skip
    dims = control.dimensions_by_kl(mu, logvar)[:TRAVERSED_DIMS]
    values = np.linspace(-3.0, 3.0, PATH_STEPS).tolist()
    paths["traversal"] = [control.traversal(model, tokenizer, s, d, values, **kw)
                          for s in sentences[: N_PATHS // 2] for d in dims]  # fmt: skip
    metrics = {}
    for kind, found in paths.items():
        scores = [control.smoothness(p) for p in found]
        metrics[f"{kind}_grammatical"] = float(np.mean([s["grammatical"] for s in scores]))
        monotone = [s["monotone_factors"] for s in scores if not np.isnan(s["monotone_factors"])]
        if monotone:
            metrics[f"{kind}_monotone"] = float(np.mean(monotone))
    examples = {"interpolation": {"a": pairs[0][0], "b": pairs[0][1], "lerp": paths["lerp"][0],
                                  "slerp": paths["slerp"][0]},
                "traversal": {"sentence": sentences[0], "dim": dims[0], "values": values,
                              "path": paths["traversal"][0]}} if pairs and dims else {}  # fmt: skip
    return metrics, examples


def latent_space_metrics(model: T5VAE, tokenizer, scorer: Scorer | None,
                         fit: tuple[list[str], list[dict]] | None,
                         test: tuple[list[str], list[dict]] | None, mu: torch.Tensor,
                         logvar: torch.Tensor, prior_samples: list[str], batch_size: int = 64,
                         max_new_tokens: int = 64, seed: int = 0) -> tuple[dict, dict]:  # fmt: skip
    """Every score above that the data allows: diversity always; with factors (`scorer`, `fit`
    and `test` as (sentences, factors) with factors known) controlled generation, and against the
    test split's known factors MIG and DCI (mu: the test split's); path smoothness with a
    grammar. Returns (metrics, examples)."""
    metrics = {
        "self_bleu": self_bleu(prior_samples),
        "repetition_rate": repetition_rate(prior_samples),
    }
    examples: dict = {}
    if scorer is None or fit is None or test is None:
        return metrics, examples
    found = controlled_generation(
        model, tokenizer, scorer, fit, test, batch_size, max_new_tokens, seed
    )
    metrics.update(found[0])
    examples.update(found[1])
    factors = {k: [f[k] for f in test[1]] for k in scorer.factors}
    if mu.shape[1] >= 2:
        metrics.update(mig(mu.double().numpy(), factors))
    metrics.update(dci(mu.double().numpy(), factors, seed=seed))
    if scorer.grammar:
        found = path_smoothness(model, tokenizer, test[0], mu, logvar, max_new_tokens)
        metrics.update(found[0])
        examples.update(found[1])
    return metrics, examples
