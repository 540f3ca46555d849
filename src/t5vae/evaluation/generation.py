"""Decoding text from latent codes: greedy or sampled decoding, reconstruction, prior samples,
interpolation (homotopy) and latent arithmetic.

All functions decode a batch of z at once with the decoder's key/value cache (the memory slot
of z is the cache's first entry), so the cost per token is one decoder step for the batch.
"""

from __future__ import annotations

import torch

from t5vae.data.corpora import collate, encode
from t5vae.model.vae import T5VAE, evaluating


@torch.inference_mode()
def decode(
    model: T5VAE,
    z: torch.Tensor,
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    top_k: int = 0,
    top_p: float = 1.0,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Token ids (EOS excluded) decoded from each row of z [B, D].

    strategy "greedy": argmax at each step (batch-size independent); "sample": ancestral sampling
    with optional top-k / nucleus (top-p) truncation and temperature.
    """
    if strategy not in ("greedy", "sample"):
        raise ValueError(f"strategy must be 'greedy' or 'sample', got {strategy!r}")
    with evaluating(model):
        out = _decode(model, z, max_new_tokens, strategy, top_k, top_p, temperature, generator)
    eos = model.t5.config.eos_token_id
    return [row[: row.index(eos)] if eos in row else row for row in out.tolist()]


def _decode(model, z, max_new_tokens, strategy, top_k, top_p, temperature, generator):
    batch, device = z.shape[0], z.device
    eos = model.t5.config.eos_token_id
    tokens = torch.full((batch, 1), model.start_id, dtype=torch.long, device=device)
    out = torch.empty((batch, 0), dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    cache = None
    for _ in range(max_new_tokens):
        logits, cache = model.decoder_logits(z, tokens, cache=cache, return_cache=True)
        logits = logits[:, -1].float()
        if strategy == "greedy":
            nxt = logits.argmax(-1)
        else:
            nxt = _sample(logits / max(temperature, 1e-6), top_k, top_p, generator)
        nxt = nxt.masked_fill(finished, model.pad_id)
        out = torch.cat([out, nxt.unsqueeze(1)], 1)
        finished |= nxt == eos
        if finished.all():
            break
        tokens = nxt.unsqueeze(1)
    return out


def _sample(logits: torch.Tensor, top_k: int, top_p: float, generator) -> torch.Tensor:
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keep the smallest prefix with mass >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


def to_text(tokenizer, ids: list[list[int]]) -> list[str]:
    """Token ids -> text, keeping literal tokens such as PTB's "<unk>"."""
    return [
        tokenizer.decode(x, skip_special_tokens=False).replace("<pad>", "").strip() for x in ids
    ]


@torch.inference_mode()
def encode_sentences(model: T5VAE, tokenizer, sentences: list[str], max_length: int | None = None):
    """(mu, logvar) of each sentence (eval mode), cut to max_length tokens like `evaluate`."""
    device = next(model.parameters()).device
    batch = collate(encode(tokenizer, sentences, max_length or 10**9).ids, model.pad_id)
    with evaluating(model):
        return model.encode(batch["input_ids"].to(device), batch["attention_mask"].to(device))


def posterior_means(model: T5VAE, tokenizer, sentences: list[str], batch_size: int = 64,
                    max_length: int | None = None) -> torch.Tensor:  # fmt: skip
    """mu of each sentence [N, D] (`encode_sentences`), batch by batch."""
    return torch.cat([encode_sentences(model, tokenizer, sentences[i : i + batch_size], max_length)[0]
                      for i in range(0, len(sentences), batch_size)])  # fmt: skip


def decode_text(model: T5VAE, tokenizer, z: torch.Tensor, batch_size: int = 64,
                **decode_kw) -> list[str]:  # fmt: skip
    """The text decoded from each row of z (`decode`), batch by batch."""
    return [text for i in range(0, len(z), batch_size)
            for text in to_text(tokenizer, decode(model, z[i : i + batch_size], **decode_kw))]  # fmt: skip


def reconstruct(model: T5VAE, tokenizer, sentences: list[str], batch_size: int = 64,
                max_length: int | None = None, **decode_kw) -> list[str]:  # fmt: skip
    """Decode each sentence from its posterior mean (greedy by default), batch by batch."""
    mu = posterior_means(model, tokenizer, sentences, batch_size, max_length)
    return decode_text(model, tokenizer, mu, batch_size, **decode_kw)


def reconstruction_bleu(references: list[str], hypotheses: list[str]) -> float:
    """Corpus BLEU (sacrebleu, 0-100) of reconstructions against their inputs."""
    import sacrebleu

    # force: the corpora are tokenized text on both sides (what the warning it silences is about)
    return float(sacrebleu.corpus_bleu(hypotheses, [references], force=True).score)


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique word n-grams / all word n-grams over `texts`."""
    grams = [tuple(w[i : i + n]) for w in (t.split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: list[str]) -> float:
    """Self-BLEU (Zhu et al. 2018, Texygen): the mean sentence BLEU (sacrebleu, 0-100) of each
    text against all the others as references; 100: every sample is the same sentence."""
    import sacrebleu

    if len(texts) < 2:
        raise ValueError("self-BLEU needs at least two texts")
    scores = [
        sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)
    ]
    return float(sum(scores) / len(scores))


def repetition_rate(texts: list[str]) -> float:
    """The fraction of texts that repeat an earlier one: 1 - unique / all (0: all different)."""
    return 1.0 - len(set(texts)) / len(texts) if texts else 0.0


def sample_prior(model: T5VAE, tokenizer, n: int, seed: int = 0, **decode_kw) -> list[str]:
    """Sentences decoded from z ~ N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((n, model.config.latent_dim), generator=gen).to(next(model.parameters()).device)
    return to_text(tokenizer, decode(model, z, **decode_kw))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows a, b [D] at each t [S] -> [S, D] (Shoemake 1985; White
    2016 for generative models): sin((1-t) w) / sin w * a + sin(t w) / sin w * b, cos w = a.b/|a||b|
    (linear when a and b are parallel)."""
    t = t.unsqueeze(1)
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(torch.sin(omega)) < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(model: T5VAE, tokenizer, a: str, b: str, steps: int = 5, kind: str = "lerp",
                **decode_kw) -> list[str]:  # fmt: skip
    """Decode the path from mu_a to mu_b at `steps` evenly spaced t in [0, 1]: `kind` "lerp", the
    homotopy (1 - t) mu_a + t mu_b (Bowman et al. 2016), or "slerp"."""
    if kind not in ("lerp", "slerp"):
        raise ValueError(f"kind must be 'lerp' or 'slerp', got {kind!r}")
    mu, _ = encode_sentences(model, tokenizer, [a, b])
    t = torch.linspace(0, 1, steps, device=mu.device)
    z = slerp(mu[0], mu[1], t) if kind == "slerp" else (1 - t[:, None]) * mu[0] + t[:, None] * mu[1]
    return to_text(tokenizer, decode(model, z, **decode_kw))


def arithmetic(model: T5VAE, tokenizer, a: str, b: str, c: str, **decode_kw) -> str:
    """Decode mu_a - mu_b + mu_c (latent analogy: a is to b as ? is to c)."""
    mu, _ = encode_sentences(model, tokenizer, [a, b, c])
    return to_text(tokenizer, decode(model, (mu[0] - mu[1] + mu[2]).unsqueeze(0), **decode_kw))[0]
