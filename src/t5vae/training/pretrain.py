"""An offline pretrained base: a small T5 pretrained here with T5's span-corruption objective.

The paper finetunes a *pretrained* seq2seq model into a VAE. Without network access there is no
t5-small checkpoint, so the offline profiles pretrain a few-million-parameter T5 on the training
corpus (Raffel et al. 2020, section 3.1.4: ~15% of tokens in spans of mean length 3 are replaced by
sentinels in the input; the target lists the sentinels followed by the dropped spans).
The result is cached under a key of everything it depends on, so it is built once.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

from t5vae.data.corpora import collate, encode
from t5vae.training.config import autocast
from t5vae.utils.files import atomic_dir
from t5vae.utils.progress import bar

PRETRAIN_VERSION = 1  # bump when the pretraining code changes what it produces


def random_spans(
    length: int, noise_density: float, mean_span: float, rng: random.Random
) -> list[bool]:
    """A noise mask of `length` with round(length * density) noise tokens in spans of mean length
    `mean_span`, alternating with non-noise segments, starting with non-noise (T5's scheme)."""
    n_noise = min(max(1, round(length * noise_density)), length - 1)
    n_spans = max(1, min(round(n_noise / mean_span), n_noise, length - n_noise))

    def split(total: int, parts: int) -> list[int]:
        cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
        return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]

    noise, keep = split(n_noise, n_spans), split(length - n_noise, n_spans)
    mask: list[bool] = []
    for k, n in zip(keep, noise, strict=True):
        mask += [False] * k + [True] * n
    return mask


def span_corrupt(ids: list[int], sentinels: list[int], eos: int, rng: random.Random,
                 noise_density: float = 0.15, mean_span: float = 3.0) -> tuple[list[int], list[int]]:  # fmt: skip
    """(input, target) for one sentence `ids` (EOS excluded); both end with EOS."""
    if len(ids) < 2:
        return [*ids, eos], [*ids, eos]
    mask = random_spans(len(ids), noise_density, mean_span, rng)
    source, target, s, prev = [], [], 0, False
    for tok, noisy in zip(ids, mask, strict=True):
        if noisy and not prev:
            sentinel = sentinels[min(s, len(sentinels) - 1)]
            source.append(sentinel)
            target.append(sentinel)
            s += 1
        (target if noisy else source).append(tok)
        prev = noisy
    return [*source, eos], [*target, eos]


def sentinel_ids(tokenizer) -> list[int]:
    ids = [tokenizer.convert_tokens_to_ids(f"<extra_id_{i}>") for i in range(100)]
    ids = [i for i in ids if i is not None and i != tokenizer.unk_token_id]
    if not ids:
        raise ValueError("the tokenizer has no <extra_id_N> sentinel tokens for span corruption")
    return ids


def base_t5_config(tokenizer, t5_overrides: dict) -> T5Config:
    """The config of a T5 built here: the tokenizer's vocabulary and special ids, the shape from
    the profile's `model.t5_overrides` (the rest T5Config's defaults)."""
    return T5Config(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, **t5_overrides,
    )  # fmt: skip


def cache_key(sentences: list[str], tokenizer, t5_config: dict, params: dict, seed: int) -> str:
    h = hashlib.sha256()
    for part in (PRETRAIN_VERSION, len(sentences), seed, sorted(t5_config.items()), sorted(params.items()),
                 len(tokenizer), tokenizer.convert_ids_to_tokens(list(range(min(len(tokenizer), 500))))):  # fmt: skip
        h.update(repr(part).encode())
    for s in sentences:
        h.update(s.encode())
    return h.hexdigest()[:16]


def pretrain_t5(
    sentences: list[str],
    tokenizer,
    out_dir: str | Path,
    t5_overrides: dict,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 1e-3,
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    max_length: int = 128,
    seed: int = 0,
    progress: bool = True,
    mixed_precision: str = "no",
) -> tuple[Path, list[dict]]:
    """Pretrain (or load from cache) a small T5; returns (model directory, loss history).

    The directory holds a Hugging Face checkpoint (`from_pretrained`), the tokenizer and
    `pretrain.json` (cache key, parameters, loss history, wall time). `mixed_precision="bf16"`
    runs the forward pass under `torch.autocast` (bfloat16 matmuls, float32 weights and loss).
    """
    out = Path(out_dir)
    params = dict(steps=steps, batch_size=batch_size, lr=lr, noise_density=noise_density,
                  mean_span_length=mean_span_length, max_length=max_length)  # fmt: skip
    if mixed_precision != "no":  # (absent at "no": the cache keys of earlier bases stay valid)
        params["mixed_precision"] = mixed_precision
    config = base_t5_config(tokenizer, t5_overrides)
    key = cache_key(sentences, tokenizer, config.to_diff_dict(), params, seed)
    info_file = out / "pretrain.json"
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("key") == key and (out / "config.json").is_file():
            return out, info["history"]
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    ids = [
        x[:-1] for x in encode(tokenizer, sentences, max_length).ids
    ]  # EOS re-added by corruption
    t0 = time.time()
    history = span_corruption_loop(model, tokenizer, ids, random.Random(seed), steps, batch_size,
                                    lr, noise_density, mean_span_length, progress,
                                    mixed_precision)  # fmt: skip
    model.eval()
    info = {"key": key, "params": params, "t5_overrides": t5_overrides, "seed": seed,
            "n_sentences": len(sentences), "history": history, "wall_time_s": time.time() - t0,
            "n_parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "pretrain.json").write_text(json.dumps(info, indent=2))
    return out, history


def span_corruption_loop(model, tokenizer, ids, rng, steps, batch_size, lr, noise_density,
                          mean_span_length, progress, mixed_precision="no") -> list[dict]:  # fmt: skip
    """AdamW with linear warm-up (5%) and decay on span-corrupted batches; loss every steps/50."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / max(1, steps // 20)) * max(0.0, 1 - s / max(steps, 1)),
    )
    sentinels, eos, pad = sentinel_ids(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id
    history, running, order = [], [], []
    for step in bar(range(steps), progress, desc="pretrain base T5"):
        if len(order) < batch_size:
            order += rng.sample(range(len(ids)), len(ids))
        idx, order = order[:batch_size], order[batch_size:]
        pairs = [
            span_corrupt(ids[i], sentinels, eos, rng, noise_density, mean_span_length) for i in idx
        ]
        src = collate([p[0] for p in pairs], pad)
        tgt = collate([p[1] for p in pairs], pad)
        with autocast(src["input_ids"].device.type, mixed_precision):
            loss = model(
                input_ids=src["input_ids"],
                attention_mask=src["attention_mask"],
                labels=tgt["labels"],
            ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        running.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 50) == 0 or step + 1 == steps:
            history.append({"step": step + 1, "loss": sum(running) / len(running)})
            running = []
    return history
