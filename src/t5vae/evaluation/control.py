"""Using the latent space: attribute shifts, class-conditional sampling, traversals, and scores of
the decoded sentences against the known factors of the built-in grammar.

    attribute vector   v_c = mean(mu | y = c) - mean(mu | y != c)      (a difference of class means)
    shift              z = mu_x + alpha * v_c
    class-conditional  z ~ N(mean(mu | y = c), diag var(mu | y = c))
    (lerp and slerp interpolation: evaluation.generation.interpolate)

Scores of decoded sentences (`data.builtin.parse` gives each one's factors, or None when it is not
a sentence of the grammar): transfer accuracy (the target value reached), content kept (every
other factor unchanged), grammatical rate, BLEU to the source.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t5vae.data.builtin import FACTORS, generate, parse
from t5vae.evaluation.generation import (
    decode,
    decode_text,
    encode_sentences,
    posterior_means,
    reconstruction_bleu,
    to_text,
)
from t5vae.model.objectives import kl_per_dim
from t5vae.model.vae import T5VAE


def attribute_vector(mu: torch.Tensor, labels: list, value) -> torch.Tensor:
    """mean(mu | label = value) - mean(mu | label != value), a [D] vector."""
    inside = torch.tensor([label == value for label in labels], device=mu.device)
    if inside.all() or not inside.any():
        raise ValueError(f"attribute {value!r}: needs sentences with and without it")
    return mu[inside].mean(0) - mu[~inside].mean(0)


def check_attribute(factor: str, value: str) -> None:
    """factor = value is one of the built-in grammar's; else an error naming the known ones."""
    if factor not in FACTORS or value not in FACTORS[factor]:
        known = "; ".join(f"{k}={'|'.join(v)}" for k, v in FACTORS.items())
        raise ValueError(f"unknown attribute {factor}={value}: known {known}")


def builtin_attribute_vector(model: T5VAE, tokenizer, factor: str, value: str, n: int = 1000,
                             seed: int = 0, batch_size: int = 64) -> torch.Tensor:  # fmt: skip
    """The attribute vector of factor = value (`attribute_vector`) from the mu of n sentences of
    the built-in grammar, whose factors are known."""
    check_attribute(factor, value)
    sentences, factors = generate(n, seed)
    mu = posterior_means(model, tokenizer, sentences, batch_size)
    return attribute_vector(mu, [f[factor] for f in factors], value)


def class_conditional(mu: torch.Tensor, labels: list, value, n: int, seed: int = 0) -> torch.Tensor:
    """n codes from the diagonal Gaussian fitted on the mu of the sentences labelled `value`."""
    inside = torch.tensor([label == value for label in labels], device=mu.device)
    if int(inside.sum()) < 2:
        raise ValueError(f"attribute {value!r}: needs at least two sentences with it")
    mean, std = mu[inside].mean(0), mu[inside].std(0)
    gen = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn((n, mu.shape[1]), generator=gen).to(mu.device)


def dimensions_by_kl(mu: torch.Tensor, logvar: torch.Tensor) -> list[int]:
    """Latent dimensions, most informative first: by mean KL(q(z_d|x) || N(0, 1)) over the set."""
    return [int(d) for d in torch.argsort(kl_per_dim(mu, logvar).mean(0), descending=True)]


def traversal(model: T5VAE, tokenizer, sentence: str, dim: int, values: list[float],
              **decode_kw) -> list[str]:  # fmt: skip
    """Decode the sentence's mu with dimension `dim` set to each of `values`."""
    mu, _ = encode_sentences(model, tokenizer, [sentence])
    z = mu.repeat(len(values), 1)
    z[:, dim] = torch.tensor(values, dtype=z.dtype, device=z.device)
    return to_text(tokenizer, decode(model, z, **decode_kw))


def shift(model: T5VAE, tokenizer, sentences: list[str], vector: torch.Tensor, alpha: float,
          batch_size: int = 64, **decode_kw) -> list[str]:  # fmt: skip
    """Decode mu_x + alpha * vector for each sentence, batch by batch."""
    mu = posterior_means(model, tokenizer, sentences, batch_size)
    return decode_text(model, tokenizer, mu + alpha * vector.to(mu.device), batch_size, **decode_kw)


def parse_each(sentences: list[str]) -> list[dict | None]:
    """The built-in grammar's factors of each sentence, None where it is not one of its sentences."""
    return [parse(s) for s in sentences]


def transfer_scores(sources: list[str], generated: list[str], factor: str, target,
                    read: Callable[[list[str]], list[dict | None]] = parse_each,
                    source_factors: list[dict] | None = None) -> dict:  # fmt: skip
    """Scores of `generated[i]`, made from `sources[i]` to reach factor = target (one value, or
    one per sentence). `read` gives each sentence's factors or None when it is not a sentence of
    the grammar (default: the built-in grammar's parser); `source_factors` the sources' known
    factors (default: read off the sources)."""
    if len(sources) != len(generated) or not sources:
        raise ValueError("sources and generated must be non-empty and of the same length")
    targets = list(target) if isinstance(target, list | tuple) else [target] * len(sources)
    src = source_factors if source_factors is not None else read(sources)
    if any(f is None for f in src):
        raise ValueError("every source must be a sentence of the built-in grammar")
    gen = read(generated)
    ok = [(s, g, t) for s, g, t in zip(src, gen, targets, strict=True) if g is not None]
    n = len(sources)
    reached = sum(g[factor] == t for _, g, t in ok)
    kept = sum(all(g[k] == s[k] for k in g if k != factor) for s, g, _ in ok)
    return {"n": n, "grammatical": len(ok) / n, "transfer_accuracy": reached / n,
            "content_kept": kept / n, "bleu_to_source": reconstruction_bleu(sources, generated)}  # fmt: skip


def smoothness(path: list[str]) -> dict:
    """How smooth a decoded path is: the fraction of grammatical steps, and the fraction of
    factors that change at most once along the grammatical steps (monotone: from the start's
    value to the end's, never back)."""
    if not path:
        raise ValueError("empty path")
    parsed = [p for p in map(parse, path) if p is not None]
    if not parsed:
        return {"grammatical": 0.0, "monotone_factors": math.nan}
    changes = {
        k: sum(a[k] != b[k] for a, b in zip(parsed, parsed[1:], strict=False)) for k in parsed[0]
    }
    return {"grammatical": len(parsed) / len(path),
            "monotone_factors": sum(c <= 1 for c in changes.values()) / len(changes)}  # fmt: skip
