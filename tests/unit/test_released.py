"""The released code's defects as switches (released.py): each shows its signature when on and
none when off. Off is the default everywhere."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import tiny_t5_config
from t5vae.data.corpora import collate, encode
from t5vae.model.objectives import Objective, vae_loss
from t5vae.model.released import SWITCHES, ReleasedSwitches
from t5vae.model.vae import T5VAE
from t5vae.notebook import steps

SENTENCES = ["the chef cooked a soup yesterday and it was lovely .", "the team won .",
             "my sister will record an album tomorrow and it will be great ."]  # fmt: skip


def model_with(tokenizer, **options):
    torch.manual_seed(0)
    return T5VAE.from_base(
        tiny_t5_config(len(tokenizer), dropout_rate=0.0), latent_dim=8, **options
    ).eval()


def test_every_switch_is_off_by_default():
    assert not ReleasedSwitches().any() and set(SWITCHES) == set(vars(ReleasedSwitches()))
    cfg = steps.train_config(steps.make_spec("smoke", "builtin", "phase2", "l0.5_p0.15", "/tmp/x"))
    assert not cfg.objective.deletion_swap and not cfg.objective.rec_per_token
    assert cfg.objective.kl_schedule.kind == "linear"


@pytest.mark.parametrize("on", [False, True])
def test_memory_view_mixes_the_sentences_of_a_batch(tokenizer, on):
    model = model_with(tokenizer, released_memory_view=on)
    batch = collate(encode(tokenizer, SENTENCES).ids)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    together = model.log_likelihood(z, batch["labels"])
    alone = torch.stack(
        [model.log_likelihood(z[i : i + 1], batch["labels"][i : i + 1]) for i in range(3)]
    )
    assert torch.allclose(together, alone.squeeze(1), atol=1e-5) != on


@pytest.mark.parametrize("on", [False, True])
def test_pooling_over_padding_depends_on_the_padding(tokenizer, on):
    model = model_with(tokenizer, released_pooling=on, pooling="mean")
    ids = encode(tokenizer, SENTENCES[1:2]).ids
    short = collate(ids)
    padded = collate(
        [*ids, encode(tokenizer, SENTENCES[2:3]).ids[0]]
    )  # padded to a longer neighbour
    mu_short = model.encode(short["input_ids"], short["attention_mask"])[0]
    mu_padded = model.encode(padded["input_ids"], padded["attention_mask"])[0][:1]
    assert torch.allclose(mu_short, mu_padded, atol=1e-5) != on


@pytest.mark.parametrize("on", [False, True])
def test_deletion_swap_feeds_the_mask_as_input_ids(tokenizer, on, monkeypatch):
    model = model_with(tokenizer)
    seen = {}
    real = model.encode

    def spy(input_ids, attention_mask):
        seen["ids"] = input_ids.clone()
        return real(input_ids, attention_mask.clamp(max=1))  # (the released mask is the ids)

    monkeypatch.setattr(model, "encode", spy)
    batch = collate(encode(tokenizer, SENTENCES).ids)
    vae_loss(
        model,
        batch,
        0.0,
        Objective(denoise_prob=0.15, deletion_swap=on),
        torch.Generator().manual_seed(0),
    )
    only_01 = set(seen["ids"].unique().tolist()) <= {0, 1}
    assert only_01 == on  # the encoder sees the sentence's length, not its words


def test_pad_to_256_alone_changes_no_number(tokenizer):
    """With masked attention and masked pooling the padding is invisible: the same weights give
    the same posterior (up to float rounding), padded to 256 or not (which is
    why the released study leaves this costly switch out)."""
    batch = collate(encode(tokenizer, SENTENCES).ids)
    plain, padded = model_with(tokenizer), model_with(tokenizer, pad_to=256)
    mu_plain, logvar_plain = plain.encode(batch["input_ids"], batch["attention_mask"])[:2]
    mu_padded, logvar_padded = padded.encode(batch["input_ids"], batch["attention_mask"])[:2]
    assert torch.allclose(mu_plain, mu_padded, atol=1e-5)
    assert torch.allclose(logvar_plain, logvar_padded, atol=1e-5)


@pytest.mark.parametrize("on", [False, True])
def test_pad_to_256_pads_every_encoder_input(tokenizer, on, monkeypatch):
    model = model_with(tokenizer, pad_to=256 if on else None)
    seen = {}
    real = model.t5.encoder.forward

    def spy(*a, **k):
        seen["length"] = k["input_ids"].shape[1]
        return real(*a, **k)

    monkeypatch.setattr(model.t5.encoder, "forward", spy)
    batch = collate(encode(tokenizer, SENTENCES).ids)
    mu = model.encode(batch["input_ids"], batch["attention_mask"])[0]
    assert (seen["length"] == 256) == on and seen["length"] >= batch["input_ids"].shape[1]
    plain = model_with(tokenizer).encode(batch["input_ids"], batch["attention_mask"])[0]
    torch.testing.assert_close(
        mu, plain, atol=1e-5, rtol=1e-5
    )  # masked pooling: padding is only cost


@pytest.mark.parametrize("on", [False, True])
def test_rec_per_token_averages_over_padded_positions(tokenizer, on):
    model = model_with(tokenizer)
    batch = collate(encode(tokenizer, SENTENCES).ids)
    objective = Objective(sample_z=False, rec_per_token=on)
    terms = vae_loss(model, batch, 0.0, objective)
    mu, _ = model.encode(batch["input_ids"], batch["attention_mask"])
    per_sentence = -model.log_likelihood(mu, batch["labels"])
    b, t = batch["labels"].shape
    expected = per_sentence.sum() / (b * t) if on else per_sentence.mean()
    torch.testing.assert_close(terms["rec"], expected)


def test_profile_switches_reach_the_run(tmp_path):
    sets = [f"released.{s}=true" for s in SWITCHES]
    p2 = steps.make_spec("smoke", "builtin", "phase2", "l0.5_p0.15", tmp_path, overrides=sets)
    cfg = steps.train_config(p2)
    assert cfg.objective.deletion_swap and cfg.objective.rec_per_token
    schedule = cfg.kl_weight_schedule(total_steps=1000, steps_per_epoch=100)
    assert max(schedule(s) for s in range(1000)) < 0.1  # the 100-epoch ramp in a 10-epoch run
    p1 = steps.make_spec("smoke", "builtin", "phase1", "max_pnone_frozen", tmp_path, overrides=sets)
    assert steps.train_config(p1).phase1_embeddings == "frozen"
    model = steps.new_model(p1, "max")
    assert (
        model.config.released_memory_view
        and model.config.released_pooling
        and model.config.pad_to == 256
    )


def test_released_metrics_table_uses_the_released_formulas(tmp_path):
    from t5vae.evaluation.metrics import METRIC_KEYS
    from t5vae.report.released import released_frame
    from t5vae.report.results import collect, write_results

    spec = steps.make_spec("smoke", "builtin", "phase2", "vanilla", tmp_path)
    metrics = dict.fromkeys(METRIC_KEYS, 1.0) | {"rec": 30.0, "kl": 2.0, "neg_elbo": 32.0, "nll": 31.0,
                                                 "n_sentences": 10, "n_tokens": 110, "mi_batch256": 0.5}  # fmt: skip
    write_results(spec, metrics)
    row = released_frame(collect(spec.results_dir), "builtin").iloc[0]
    assert row["NLL as released: one-sample -ELBO"] == "32.00"
    assert row["-ELBO as released: rec - KL"] == "28.00"
    assert row["PPL as released: per subword, from the bound"] == f"{math.exp(32.0 * 10 / 100):.2f}"
    assert row["MI as released: batches of 256"] == "0.50"
