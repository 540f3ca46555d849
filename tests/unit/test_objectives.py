"""KL, thresholding, schedules and token-deletion denoising."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from t5vae.data.corpora import collate, encode
from t5vae.model.objectives import (
    KLSchedule,
    Objective,
    bag_of_words_nll,
    delete_tokens,
    kl_per_dim,
    thresholded_kl,
    vae_loss,
    word_dropout,
)
from t5vae.model.vae import labels_to_decoder_inputs, reparameterize


def test_kl_is_zero_for_standard_normal_posterior():
    mu, logvar = torch.zeros(4, 32), torch.zeros(4, 32)
    assert torch.equal(kl_per_dim(mu, logvar), torch.zeros(4, 32))


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(kl_per_dim(mu, logvar), expected)


def test_threshold_clamps_per_dimension_without_gradient_below():
    kl = torch.tensor([[0.1, 1.0, 5.0], [0.4, 0.6, 0.0]], requires_grad=True)
    out = thresholded_kl(kl, 0.5)
    torch.testing.assert_close(out, torch.tensor([0.5 + 1.0 + 5.0, 0.5 + 0.6 + 0.5]))
    out.sum().backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]]))
    torch.testing.assert_close(thresholded_kl(kl, None), kl.sum(-1))
    torch.testing.assert_close(thresholded_kl(kl, 0.0), kl.sum(-1))


def test_linear_schedule_reaches_full_weight():
    s = KLSchedule("linear", total_steps=1000, steps_per_epoch=100, warmup_ratio=0.5)
    assert s(0) == 0.0
    assert s(250) == pytest.approx(0.5)
    assert s(500) == 1.0 and s(999) == 1.0


def test_released_ramp_stays_below_one_tenth_in_ten_epochs():
    """The released code ramps over 100 epochs of steps: kept as an option, never the default."""
    s = KLSchedule("released", total_steps=1000, steps_per_epoch=100)
    assert max(s(t) for t in range(1000)) < 0.1
    assert KLSchedule(total_steps=1000, steps_per_epoch=100)(999) == 1.0  # default: linear


def test_cyclical_schedule_shape():
    s = KLSchedule(
        "cyclical",
        total_steps=400,
        steps_per_epoch=10,
        n_cycles=4,
        ratio_increase=0.5,
        ratio_zero=0.25,
    )
    # cycle of 100 steps: 0 for 25 steps, rises over 50, then 1 for 25
    assert s(0) == 0.0 and s(24) == 0.0
    assert s(50) == pytest.approx(0.5)
    assert s(80) == 1.0 and s(99) == 1.0
    assert s(100) == 0.0  # next cycle restarts
    with pytest.raises(ValueError, match="kind"):
        KLSchedule("exponential")


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "constant"},
        {"kind": "linear", "warmup_ratio": 0.25},
        {"kind": "linear", "warmup_ratio": 1.0},
        {"kind": "cyclical", "n_cycles": 4, "ratio_zero": 0.25, "ratio_increase": 0.5},
        {"kind": "cyclical", "n_cycles": 3, "ratio_zero": 0.0, "ratio_increase": 1.0},
        {"kind": "released"},
    ],
)
def test_settled_from_is_the_first_step_of_the_final_plateau(config):
    """settled_from() against a walk over every step: the first step from which beta stays at
    max_weight to the end of the run (total_steps when it never gets there: a ramp over the whole
    run, the released one)."""
    s = KLSchedule(**config, total_steps=403, steps_per_epoch=13)
    weights = [s(t) for t in range(s.total_steps)]
    first = next(t for t in range(s.total_steps + 1)
                 if all(w == s.max_weight for w in weights[t:]))  # fmt: skip
    assert s.settled_from() == first


def _is_subsequence(small: list[int], big: list[int]) -> bool:
    it = iter(big)
    return all(t in it for t in small)


def test_delete_tokens_only_deletes_and_keeps_order_and_eos():
    """Catches the released code's swap of token ids and attention mask (0/1 inputs)."""
    torch.manual_seed(0)
    lengths = [20, 7, 13, 1, 30]
    ids = [list(torch.randint(3, 500, (n - 1,)).tolist()) + [1] for n in lengths]
    batch = collate(ids)
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        new_ids, new_mask = delete_tokens(batch["input_ids"], batch["attention_mask"], 0.4, gen)
        assert new_ids.shape[1] <= batch["input_ids"].shape[1]
        for i, orig in enumerate(ids):
            n_new = int(new_mask[i].sum())
            assert torch.all(new_mask[i, :n_new] == 1) and torch.all(new_mask[i, n_new:] == 0)
            kept = new_ids[i, :n_new].tolist()
            assert _is_subsequence(kept, orig)
            assert kept[-1] == 1  # EOS kept
            assert len(orig) - n_new <= math.floor(0.4 * (len(orig) - 1))
            assert torch.all(new_ids[i, n_new:] == 0)
            assert set(kept) - {1} <= set(orig)  # real token ids, never the mask's 0/1
            assert max(kept[:-1], default=3) >= 3


def test_delete_tokens_count_is_uniform_up_to_p_of_length():
    ids = collate([list(range(3, 23)) + [1]] * 4000)  # 20 deletable tokens, p = 0.4 -> k in 0..8
    gen = torch.Generator().manual_seed(0)
    _, mask = delete_tokens(ids["input_ids"], ids["attention_mask"], 0.4, gen)
    deleted = 21 - mask.sum(1)
    counts = torch.bincount(deleted, minlength=9)
    assert deleted.max() == 8 and deleted.min() == 0
    # uniform over 9 values: each ~ 444 +- 3 sigma (sigma ~ 20)
    assert torch.all((counts - 4000 / 9).abs() < 80), counts


def test_delete_tokens_identity_at_zero_and_deterministic():
    batch = collate([[5, 6, 7, 1], [8, 1]])
    a = delete_tokens(batch["input_ids"], batch["attention_mask"], 0.0)
    assert a[0] is batch["input_ids"]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x = delete_tokens(batch["input_ids"], batch["attention_mask"], 0.3, g1)
    y = delete_tokens(batch["input_ids"], batch["attention_mask"], 0.3, g2)
    assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    with pytest.raises(ValueError, match="denoise_prob"):
        delete_tokens(batch["input_ids"], batch["attention_mask"], 1.0)


def test_denoising_never_touches_the_reconstruction_target(make_model, tokenizer):
    """vae_loss deletes from the encoder input only; rec is -log p(clean sentence | z)."""
    model = make_model()
    sentences = [
        "the chef cooked a soup yesterday and it was lovely , so we all smiled .",
        "the team will win the final tomorrow and it will be great .",
    ]
    batch = collate(encode(tokenizer, sentences).ids)
    labels_before = batch["labels"].clone()
    gen = torch.Generator().manual_seed(7)
    replay = torch.Generator().manual_seed(7)
    terms = vae_loss(
        model, batch, kl_weight=0.0, objective=Objective(denoise_prob=0.4), generator=gen
    )
    assert torch.equal(batch["labels"], labels_before)
    noisy_ids, noisy_mask = delete_tokens(batch["input_ids"], batch["attention_mask"], 0.4, replay)
    mu, logvar = model.encode(noisy_ids, noisy_mask)
    z = reparameterize(mu, logvar, replay)
    expected = -model.log_likelihood(z, labels_before).mean()
    torch.testing.assert_close(terms["rec"], expected)


def test_word_dropout_replaces_decoder_inputs_only(tokenizer):
    """Bowman et al. (2016): each previous word fed to the decoder becomes <unk> with probability
    p; the start token, padding and the targets are never touched."""
    sentences = ["the chef cooked a soup yesterday and it was lovely ."] * 200 + ["the team won ."]
    batch = collate(encode(tokenizer, sentences).ids)
    labels = batch["labels"].clone()
    unk = tokenizer.unk_token_id
    clean = labels_to_decoder_inputs(labels, 0, 0)
    got = word_dropout(labels, 0.3, unk, 0, 0, torch.Generator().manual_seed(0))
    assert torch.equal(batch["labels"], labels)
    assert (got[:, 0] == 0).all()  # start token kept
    real = torch.zeros_like(clean, dtype=torch.bool)
    real[:, 1:] = labels[:, :-1] >= 0
    changed = got != clean
    assert not (changed & ~real).any()  # padding never replaced
    assert (got[changed] == unk).all()
    rate = changed.sum().item() / real.sum().item()
    assert abs(rate - 0.3) < 0.02, rate  # ~2500 draws: sd 0.009
    assert torch.equal(word_dropout(labels, 0.0, unk, 0, 0), clean)
    with pytest.raises(ValueError, match="word_dropout: the tokenizer has no unknown token"):
        word_dropout(labels, 0.3, None, 0, 0)
    with pytest.raises(ValueError, match=r"word_dropout: must be in \[0, 1\)"):
        Objective(word_dropout=1.0)


def test_word_dropout_loss_is_the_likelihood_under_dropped_inputs(make_model, tokenizer):
    model = make_model()
    sentences = ["the chef cooked a soup yesterday .", "the team will win the final tomorrow ."]
    batch = collate(encode(tokenizer, sentences).ids)
    objective = Objective(word_dropout=0.5)
    gen, replay = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    terms = vae_loss(model, batch, 0.0, objective, gen, unk_id=tokenizer.unk_token_id)
    inputs = word_dropout(batch["labels"], 0.5, tokenizer.unk_token_id, 0, 0, replay)
    mu, logvar = model.encode(batch["input_ids"], batch["attention_mask"])
    z = reparameterize(mu, logvar, replay)
    expected = -model.log_likelihood(z, batch["labels"], inputs).mean()
    torch.testing.assert_close(terms["rec"], expected)
    plain = vae_loss(model, batch, 0.0, Objective(), torch.Generator().manual_seed(3))
    assert not torch.equal(plain["rec"], terms["rec"])


def test_bag_of_words_nll_matches_a_direct_sum():
    torch.manual_seed(0)
    logits = torch.randn(2, 7)
    labels = torch.tensor([[1, 3, 3, 6], [2, 5, -100, -100]])
    got = bag_of_words_nll(logits, labels)
    log_p = logits.log_softmax(-1)
    expected = torch.stack(
        [-(log_p[0, 1] + 2 * log_p[0, 3] + log_p[0, 6]), -(log_p[1, 2] + log_p[1, 5])]
    )
    torch.testing.assert_close(got, expected)


def test_bag_of_words_term_trains_its_head_and_the_encoder(make_model, tokenizer):
    """Zhao et al. (2017): loss = rec + beta * KL + w * bow, bow from z through an MLP that the
    objective owns (not part of the saved model)."""
    model = make_model()
    objective = Objective(bow_weight=2.0, kl_threshold=0.5)
    extra = objective.extra_modules(model)
    assert set(extra) == {"bow"} and not any(
        n.startswith("bow") for n, _ in model.named_parameters()
    )
    batch = collate(encode(tokenizer, ["the chef cooked a soup .", "the team won the cup ."]).ids)
    terms = vae_loss(model, batch, 0.7, objective, torch.Generator().manual_seed(1), extra)
    assert set(terms) == {"loss", "rec", "kl", "kl_term", "bow"}
    torch.testing.assert_close(
        terms["loss"].detach(), terms["rec"] + 0.7 * terms["kl_term"] + 2.0 * terms["bow"]
    )
    terms["loss"].backward()
    assert extra["bow"][0].weight.grad.abs().sum() > 0
    assert model.to_mu.weight.grad.abs().sum() > 0
    assert not Objective().extra_modules(model)  # no bow: no extra module
    with pytest.raises(ValueError, match="bow_weight: must be >= 0"):
        Objective(bow_weight=-1)
