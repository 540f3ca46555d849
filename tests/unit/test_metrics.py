"""Metrics checked against independent computations: analytic cases, quadrature, identities."""

from __future__ import annotations

import math

import pytest
import torch

from t5vae.data.corpora import collate, encode
from t5vae.evaluation.metrics import (
    METRIC_KEYS,
    active_units,
    batched_mutual_information,
    evaluate,
    iw_log_marginal,
    mutual_information,
)
from t5vae.model.objectives import log_normal_diag


# ---------------------------------------------------------------- importance weighting
def _linear_gaussian(x, w, s):
    """z ~ N(0,1), x|z ~ N(w z, s^2): exact log p(x) and the exact posterior (mean, var)."""
    log_px = -0.5 * (math.log(2 * math.pi * (w * w + s * s)) + x * x / (w * w + s * s))
    prec = 1 + w * w / (s * s)
    return log_px, (w * x / (s * s)) / prec, 1 / prec


def _iw(x, w, s, q_mean, q_var, k, n_rep, gen):
    mu = torch.full((n_rep, 1), q_mean, dtype=torch.float64)
    logvar = torch.full((n_rep, 1), math.log(q_var), dtype=torch.float64)
    z = mu.unsqueeze(1) + math.sqrt(q_var) * torch.randn(
        (n_rep, k, 1), generator=gen, dtype=torch.float64
    )
    log_px_z = log_normal_diag(
        torch.full_like(z, x), w * z, torch.full_like(z, math.log(s * s))
    )  # [n_rep, k]
    return iw_log_marginal(log_px_z, z, mu, logvar)


def test_iw_is_exact_with_the_true_posterior():
    log_px, m, v = _linear_gaussian(x=1.3, w=2.0, s=0.7)
    est = _iw(1.3, 2.0, 0.7, m, v, k=3, n_rep=10, gen=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, torch.full_like(est, log_px))


def test_iw_lower_bound_tightens_to_log_marginal_as_k_grows():
    x, w, s = 1.3, 2.0, 0.7
    log_px, m, v = _linear_gaussian(x, w, s)
    gen = torch.Generator().manual_seed(0)
    gaps = {
        k: log_px - float(_iw(x, w, s, m + 0.5, v * 2.0, k, 2000, gen).mean())
        for k in (1, 10, 100, 1000)
    }
    # E[estimate] <= log p(x) (Jensen) and the gap shrinks monotonically to ~0
    assert gaps[1] > gaps[10] > gaps[100] > gaps[1000] > -0.005, gaps
    assert gaps[1000] < 0.01, gaps
    # K = 1 is the ELBO: log p(x) - KL(q || posterior)
    kl_q_post = 0.5 * (2.0 * v / v + 0.25 / v - 1 - math.log(2.0))
    assert gaps[1] == pytest.approx(kl_q_post, abs=0.05)


# ---------------------------------------------------------------- mutual information
def test_mi_matches_quadrature_for_a_two_component_posterior():
    """x uniform on {0, 1}, q(z|x) = N(+-a, s^2): I = H(q(z)) - H(N(0, s^2)) by quadrature."""
    a, s, n = 1.0, 0.6, 6000
    grid = torch.linspace(-8, 8, 40001, dtype=torch.float64)
    comp = lambda m: torch.exp(-0.5 * ((grid - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))  # noqa: E731
    mix = 0.5 * comp(a) + 0.5 * comp(-a)
    h_mix = float(torch.trapezoid(-mix * torch.log(mix.clamp_min(1e-300)), grid))
    true_mi = h_mix - 0.5 * math.log(2 * math.pi * math.e * s * s)
    gen = torch.Generator().manual_seed(0)
    mu = torch.where(torch.arange(n) % 2 == 0, a, -a).double().unsqueeze(1)
    logvar = torch.full_like(mu, math.log(s * s))
    z = mu + s * torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    assert 0.3 < true_mi < math.log(2)
    assert mutual_information(mu, logvar, z) == pytest.approx(true_mi, abs=0.03)


def test_mi_and_au_are_zero_when_the_posterior_ignores_the_input():
    gen = torch.Generator().manual_seed(0)
    mu = torch.full((3000, 16), 0.3)
    logvar = torch.full((3000, 16), -0.5)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=gen)
    assert abs(mutual_information(mu, logvar, z)) < 1e-9  # paired estimator: exactly 0 here
    assert active_units(mu) == 0


def test_batch_averaged_mi_is_capped_by_log_batch_size():
    """The released code averaged MI over minibatches: at most log(batch size)."""
    n, b = 512, 8
    mu = (torch.arange(n, dtype=torch.float64) * 10).unsqueeze(1)
    logvar = torch.zeros_like(mu)
    z = mu + torch.randn(mu.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert mutual_information(mu, logvar, z) == pytest.approx(math.log(n), abs=0.01)
    # each batch's aggregate posterior has only b components: the estimate saturates at log b
    # (up to the Monte-Carlo noise of E[log q(z|x)]), far below the dataset value
    assert batched_mutual_information(mu, logvar, z, b) == pytest.approx(math.log(b), abs=0.02)


def test_active_units_threshold():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(20000, 3, generator=gen, dtype=torch.float64)
    mu = base * torch.tensor([math.sqrt(0.02), math.sqrt(0.005), 1.0], dtype=torch.float64)
    assert active_units(mu, 0.01) == 2
    assert active_units(mu, 0.001) == 3
    assert active_units(mu[:1]) == 0


# ---------------------------------------------------------------- evaluate() on a model
SENTENCES = [
    "the chef cooked a soup yesterday and it was lovely .",
    "the band will record an album tomorrow and it will be boring , so we all will complain .",
    "the sky brings some rain today and it is awful .",
    "my brother won the cup yesterday and it was great , and everyone was happy .",
    "the baker bakes the bread today and it is excellent .",
    "the night will bring a storm tomorrow and it will be dreadful .",
]


def test_evaluate_keys_and_counts(make_model, tokenizer):
    m = evaluate(make_model(), tokenizer, SENTENCES, iw_samples=4, batch_size=4, progress=False)
    assert tuple(m) == METRIC_KEYS
    assert m["n_sentences"] == len(SENTENCES)
    assert m["n_tokens"] == sum(len(x) for x in encode(tokenizer, SENTENCES).ids)
    assert m["n_words"] == sum(len(s.split()) for s in SENTENCES)
    total_nll = m["nll"] * m["n_sentences"]
    assert m["ppl"] == pytest.approx(math.exp(total_nll / m["n_tokens"]))
    assert m["ppl_word"] == pytest.approx(math.exp(total_nll / (m["n_words"] + m["n_sentences"])))
    assert m["ppl_elbo"] == pytest.approx(
        math.exp(m["neg_elbo"] * m["n_sentences"] / m["n_tokens"])
    )
    assert m["neg_elbo"] == pytest.approx(
        m["rec"] + m["kl"]
    )  # the ELBO's sign: -ELBO = rec + KL > 0
    assert m["neg_elbo"] > 0 and m["kl"] >= 0


@torch.no_grad()
def test_evaluate_iw_nll_converges_to_the_known_likelihood(make_model, tokenizer, builtin_corpus):
    """With latent_to_memory = 0 the decoder ignores z, so log p(x) = log p(x|z) exactly."""
    model = make_model(latent_dim=4)
    with torch.no_grad():
        model.latent_to_memory.weight.zero_()
        # posterior variance 0.8 >= 1/2 keeps the importance weights p(z)/q(z) of finite variance
        model.to_logvar.weight.zero_()
        model.to_logvar.bias.fill_(math.log(0.8))
    sentences = builtin_corpus.sentences[:60]
    batch = collate(encode(tokenizer, sentences).ids)
    true_nll = float(-model.log_likelihood(torch.zeros(len(sentences), 4), batch["labels"]).mean())
    res = {
        k: evaluate(model, tokenizer, sentences, iw_samples=k, batch_size=20, progress=False)
        for k in (1, 20, 500)
    }
    r = res[500]
    assert r["rec"] == pytest.approx(true_nll, abs=1e-3)  # one-sample rec is exact here
    assert r["neg_elbo"] == pytest.approx(true_nll + r["kl"], abs=1e-3)
    gaps = {k: v["nll"] - true_nll for k, v in res.items()}
    assert r["kl"] > 0.5  # a non-trivial posterior, so the bound has something to close
    assert gaps[1] > gaps[20] > gaps[500] > -1e-3, gaps
    # K = 1 is the ELBO, whose gap is KL(q(z|x) || p(z|x)) = KL here; at K = 500 the bound has
    # closed by more than 90% (the rest shrinks like Var(w) / 2K)
    assert gaps[1] == pytest.approx(r["kl"], rel=0.1)
    assert gaps[500] < 0.1 * gaps[1], gaps
    assert r["nll"] <= r["neg_elbo"]


def test_evaluate_nll_below_neg_elbo_on_a_random_model(make_model, tokenizer):
    m = evaluate(
        make_model(seed=3), tokenizer, SENTENCES, iw_samples=50, batch_size=6, progress=False
    )
    assert m["nll"] < m["neg_elbo"]
    assert m["ppl"] < m["ppl_elbo"]


def test_evaluate_deterministic_parts_do_not_depend_on_batch_size(make_model, tokenizer):
    model = make_model()
    a = evaluate(
        model,
        tokenizer,
        SENTENCES,
        iw_samples=2,
        batch_size=2,
        progress=False,
        return_posteriors=True,
    )
    b = evaluate(
        model,
        tokenizer,
        SENTENCES,
        iw_samples=2,
        batch_size=5,
        progress=False,
        return_posteriors=True,
    )
    torch.testing.assert_close(a["mu"], b["mu"], atol=1e-5, rtol=1e-5)
    assert a["kl"] == pytest.approx(b["kl"], abs=1e-5)
    assert a["au"] == b["au"]
    c = evaluate(
        model,
        tokenizer,
        SENTENCES,
        iw_samples=2,
        batch_size=2,
        progress=False,
        return_posteriors=True,
    )
    assert {k: a[k] for k in METRIC_KEYS} == {
        k: c[k] for k in METRIC_KEYS
    }  # same seed, same numbers


def test_evaluate_rejects_bad_arguments(make_model, tokenizer):
    model = make_model()
    with pytest.raises(ValueError, match="iw_samples"):
        evaluate(model, tokenizer, SENTENCES, iw_samples=0)
    with pytest.raises(ValueError, match="mi_mode"):
        evaluate(model, tokenizer, SENTENCES, mi_mode="epoch")
    with pytest.raises(ValueError, match="at least one"):
        evaluate(model, tokenizer, [])
