"""T5VAE: pooling, memory injection, batch/padding invariance, checkpoints."""

from __future__ import annotations

import pytest
import torch

from helpers import tiny_t5_config
from t5vae.data.corpora import collate, encode
from t5vae.model.vae import T5VAE, masked_pool

SENTENCES = [
    "the chef cooked a soup yesterday and it was lovely .",
    "the band will record an album tomorrow and it will be boring , so we all will complain .",
    "the sky brings some rain today and it is awful .",
    "my brother won the cup yesterday and it was great , and everyone was happy .",
]


def batch_of(tokenizer, sentences):
    return collate(encode(tokenizer, sentences).ids)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_pooling_ignores_padding(pooling):
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    pooled = masked_pool(hidden, mask, pooling)
    # junk in the padded positions (e.g. huge values) must not change the result
    junk = hidden.masked_fill(mask.unsqueeze(-1) == 0, 1e6)
    torch.testing.assert_close(masked_pool(junk, mask, pooling), pooled)
    for i in range(3):
        real = hidden[i, : int(mask[i].sum())]
        expected = real.mean(0) if pooling == "mean" else real.max(0).values
        torch.testing.assert_close(pooled[i], expected)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_encode_does_not_depend_on_padding_or_neighbours(make_model, tokenizer, pooling):
    model = make_model(pooling=pooling)
    batch = batch_of(tokenizer, SENTENCES)
    mu, logvar = model.encode(batch["input_ids"], batch["attention_mask"])
    for i, s in enumerate(SENTENCES):
        alone = batch_of(tokenizer, [s])
        # pad the single sentence with 7 extra positions: nothing may change
        ids = torch.nn.functional.pad(alone["input_ids"], (0, 7))
        mask = torch.nn.functional.pad(alone["attention_mask"], (0, 7))
        mu1, logvar1 = model.encode(ids, mask)
        torch.testing.assert_close(mu1[0], mu[i], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logvar1[0], logvar[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("injection", ["memory", "cross_attention"])
def test_sentence_likelihood_independent_of_batch_neighbours(make_model, tokenizer, injection):
    """Catches the released code's memory reshape, which mixed the sentences of a batch."""
    model = make_model(injection=injection)
    batch = batch_of(tokenizer, SENTENCES)
    z = torch.randn(len(SENTENCES), model.config.latent_dim)
    together = model.log_likelihood(z, batch["labels"])
    alone = torch.stack(
        [
            model.log_likelihood(z[i : i + 1], batch_of(tokenizer, [s])["labels"])[0]
            for i, s in enumerate(SENTENCES)
        ]
    )
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-5)
    perm = torch.tensor([2, 0, 3, 1])
    shuffled = model.log_likelihood(z[perm], batch["labels"][perm])
    torch.testing.assert_close(shuffled, together[perm], atol=1e-4, rtol=1e-5)
    # changing a neighbour's z changes nothing for sentence 0
    z2 = z.clone()
    z2[1:] = torch.randn_like(z2[1:]) * 5
    torch.testing.assert_close(model.log_likelihood(z2, batch["labels"])[0], together[0])


def test_labels_padding_as_pad_id_or_minus_100(make_model, tokenizer):
    model = make_model()
    batch = batch_of(tokenizer, SENTENCES)
    z = torch.randn(len(SENTENCES), 8)
    with_pad_id = batch["labels"].masked_fill(batch["labels"] == -100, tokenizer.pad_token_id)
    torch.testing.assert_close(
        model.log_likelihood(z, batch["labels"]), model.log_likelihood(z, with_pad_id)
    )


def test_decoder_sees_source_only_through_z(make_model, tokenizer):
    """log p(x|z) has no path from the encoder: zero gradient there, no cross-attention calls."""
    model = make_model(injection="memory")
    calls = []
    for block in model.t5.decoder.block:
        block.layer[1].register_forward_hook(lambda *a: calls.append(1))
    batch = batch_of(tokenizer, SENTENCES)
    z = torch.randn(len(SENTENCES), 8, requires_grad=True)
    model.log_likelihood(z, batch["labels"]).sum().backward()
    assert not calls, "memory injection must skip the decoder's cross-attention"
    assert z.grad.abs().sum() > 0
    assert model.latent_to_memory.weight.grad.abs().sum() > 0
    for name, p in model.t5.encoder.named_parameters():
        if p is model.t5.shared.weight:
            continue  # tied with the decoder's embeddings: gets the decoder's gradient
        assert p.grad is None or p.grad.abs().sum() == 0, name
    # the full forward with z = mu: two different inputs with the same mu decode the same
    ll_a = model.log_likelihood(z.detach(), batch["labels"])
    assert torch.isfinite(ll_a).all()


def test_z_changes_the_decoder_output(make_model, tokenizer):
    model = make_model()
    labels = batch_of(tokenizer, SENTENCES[:1])["labels"]
    a = model.log_likelihood(torch.zeros(1, 8), labels)
    b = model.log_likelihood(torch.ones(1, 8) * 3, labels)
    assert not torch.allclose(a, b)


def test_log_likelihood_matches_per_token_softmax(make_model, tokenizer):
    """log p(x|z) = sum_t log softmax(logits_t)[x_t], EOS included, padding excluded."""
    model = make_model()
    batch = batch_of(tokenizer, SENTENCES[:2])
    z = torch.randn(2, 8)
    labels = batch["labels"]
    dec_in = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1].clamp_min(0)], 1)
    logp = model.decoder_logits(z, dec_in).log_softmax(-1)
    for i in range(2):
        n = int((labels[i] >= 0).sum())
        assert labels[i, n - 1] == tokenizer.eos_token_id
        manual = sum(logp[i, t, labels[i, t]] for t in range(n))
        torch.testing.assert_close(model.log_likelihood(z, labels)[i], manual, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("untie", [False, True])
def test_save_load_round_trip(make_model, tokenizer, tmp_path, untie):
    model = make_model(latent_dim=5, pooling="mean")
    if untie:
        model.untie_encoder_embeddings()
        with torch.no_grad():
            model.t5.encoder.embed_tokens.weight.add_(1.0)
    model.save_pretrained(tmp_path / "ck")
    loaded = T5VAE.from_pretrained(tmp_path / "ck")
    assert loaded.config == model.config
    assert not loaded.training
    batch = batch_of(tokenizer, SENTENCES)
    for a, b in zip(model.encode(batch["input_ids"], batch["attention_mask"]),
                    loaded.encode(batch["input_ids"], batch["attention_mask"]), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b)
    z = torch.randn(4, 5)
    torch.testing.assert_close(
        model.log_likelihood(z, batch["labels"]), loaded.log_likelihood(z, batch["labels"])
    )
    tied = loaded.t5.encoder.embed_tokens.weight is loaded.t5.shared.weight
    assert tied is not untie
    assert loaded.t5.lm_head.weight is loaded.t5.shared.weight


def test_corrupted_checkpoint_is_named(make_model, tmp_path):
    make_model().save_pretrained(tmp_path / "ck")
    weights = tmp_path / "ck" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="model.safetensors"):
        T5VAE.from_pretrained(tmp_path / "ck")
    with pytest.raises(FileNotFoundError, match="t5vae_config.json"):
        T5VAE.from_pretrained(tmp_path / "nothing")


def test_bad_options_are_rejected(tokenizer):
    from helpers import tiny_t5_config

    with pytest.raises(ValueError, match="pooling"):
        T5VAE.from_base(tiny_t5_config(len(tokenizer)), pooling="sum")
    with pytest.raises(ValueError, match="latent_dim"):
        T5VAE.from_base(tiny_t5_config(len(tokenizer)), latent_dim=0)


def test_t5_small_shape_from_local_config(t5_small_dir):
    model = T5VAE.from_base(str(t5_small_dir), latent_dim=32, pretrained=False)
    from transformers import T5Config, T5ForConditionalGeneration

    n = sum(p.numel() for p in model.parameters())
    base = sum(
        p.numel()
        for p in T5ForConditionalGeneration(T5Config.from_pretrained(t5_small_dir)).parameters()
    )
    assert 60_000_000 < base < 61_000_000  # t5-small (tied embeddings)
    # the VAE adds the mu/logvar heads and one key + one value (8 heads x 64) per decoder layer
    extra = 2 * (512 * 32 + 32) + 32 * 6 * 2 * 8 * 64
    assert n == base + extra
    assert model.config.base.endswith("(random init)")


def test_shared_key_value_memory_uses_one_vector_for_both(tmp_path):
    """shared_kv (the released code, Optimus): one projected vector per layer serves as the key and
    the value of z's memory slot; sentences of a batch still do not mix; the option is saved."""
    torch.manual_seed(0)
    cfg = tiny_t5_config(200)
    shared = T5VAE.from_base(cfg, latent_dim=8, shared_kv=True).eval()
    separate = T5VAE.from_base(cfg, latent_dim=8).eval()
    assert shared.latent_to_memory.out_features * 2 == separate.latent_to_memory.out_features
    z = torch.randn(3, 8)
    cache = shared.memory_cache(z)
    for layer in range(shared.n_dec_layers):
        k, v = cache.layers[layer].keys, cache.layers[layer].values
        assert torch.equal(k, v) and k.shape == (3, shared.n_heads, 1, shared.d_kv)
    labels = torch.tensor([[5, 6, 7, 1], [8, 9, 1, -100], [10, 1, -100, -100]])
    alone = shared.log_likelihood(z[1:2], labels[1:2])
    together = shared.log_likelihood(z, labels)[1:2]
    torch.testing.assert_close(alone, together)
    shared.save_pretrained(tmp_path / "m")
    loaded = T5VAE.from_pretrained(tmp_path / "m")
    assert loaded.config.shared_kv
    torch.testing.assert_close(loaded.log_likelihood(z, labels), shared.log_likelihood(z, labels))
