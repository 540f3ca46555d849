"""The paper-sized code path: t5-small shape (random init), its tokenizer, real PTB sentences."""

from __future__ import annotations

import torch

from t5vae.data import collate, encode, load_split
from t5vae.model import T5VAE
from t5vae.objectives import Objective, vae_loss
from t5vae.phases import TrainConfig, set_trainable
from t5vae.tokenizer import load_tokenizer


def test_t5_small_forward_backward_on_ptb(t5_small_dir, ptb_data_dir):
    torch.manual_seed(0)
    tokenizer = load_tokenizer(t5_small_dir)
    sentences = load_split("ptb", "valid", ptb_data_dir).sentences[:8]
    model = T5VAE.from_base(str(t5_small_dir), latent_dim=32, pooling="max", pretrained=False)
    set_trainable(model, TrainConfig(phase="phase2"))
    batch = collate(encode(tokenizer, sentences, max_length=128).ids, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] < 128  # dynamic padding, not 256
    terms = vae_loss(model, batch, kl_weight=0.5, objective=Objective(kl_threshold=3.0, denoise_prob=0.15),
                     generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.isfinite(terms["loss"])
    # a random 32k-way softmax costs about log(32101) = 10.4 nats per token
    n_tokens = int((batch["labels"] >= 0).sum())
    assert 9.0 < float(terms["rec"]) * len(sentences) / n_tokens < 12.0
    terms["loss"].backward()
    for name in ("to_mu.weight", "latent_to_memory.weight", "t5.encoder.block.5.layer.1.DenseReluDense.wi.weight",
                 "t5.decoder.block.5.layer.0.SelfAttention.q.weight", "t5.shared.weight"):  # fmt: skip
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
