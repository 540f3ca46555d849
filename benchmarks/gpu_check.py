"""The day a GPU is available: one command that measures a paper-shaped slice of work on it.

    python benchmarks/gpu_check.py                      # t5-small (Hub, or --base DIR), PTB, batch 128
    python benchmarks/gpu_check.py --device cpu --steps 2 --sentences 4 --base ../shared/models/t5-small

Reports, as JSON (printed and written to benchmarks/gpu_check.json): phase-2 training throughput
(sentences/s) in fp32 and with bf16 autocast, the peak GPU memory of each, and the test metrics of
K-sample evaluation in fp32 and bf16 on the same sentences with their difference (is bf16
evaluation good enough to make the paper profile's K = 500 cheaper?).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from t5vae.config import params as P
from t5vae.data.corpora import batch_indices, builtin_split, collate, encode, load_split
from t5vae.data.tokenizer import load_tokenizer
from t5vae.evaluation.metrics import evaluate
from t5vae.model.objectives import Objective, vae_loss
from t5vae.model.vae import T5VAE

HERE = Path(__file__).resolve().parent


def sentences(data_dir: str | None, n: int) -> list[str]:
    try:
        return load_split(P.load_dataset("ptb"), "train", data_dir).sentences[:n]
    except Exception:  # no PTB here: the built-in corpus keeps the check runnable
        return builtin_split("train", size=n).sentences


def train_slice(model, tokenizer, sents, batch_size, steps, device, dtype) -> dict:
    ids = encode(tokenizer, sents, 256).ids
    batches = batch_indices([len(x) for x in ids], batch_size, shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    objective = Objective(kl_threshold=0.5, denoise_prob=0.15)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    done, t0 = 0, None
    for i, idx in enumerate((batches * (steps // max(1, len(batches)) + 2))[: steps + 1]):
        if i == 1:  # the first step warms up
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, done = time.perf_counter(), 0
        batch = {k: v.to(device) for k, v in collate([ids[j] for j in idx], model.pad_id).items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = vae_loss(model, batch, 1.0, objective, torch.Generator().manual_seed(i))["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done += len(idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    out = {"sentences_per_s": done / (time.perf_counter() - t0)}
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--base", default="t5-small", help="Hub name or folder (random init if no weights)"
    )
    ap.add_argument("--data-dir", default=None, help="Optimus-layout data root (PTB)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50, help="timed training steps per precision")
    ap.add_argument("--sentences", type=int, default=64, help="evaluated sentences")
    ap.add_argument("--iw-samples", type=int, default=500)
    ap.add_argument("--out", default=str(HERE / "gpu_check.json"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    tokenizer = load_tokenizer(args.base)
    try:
        base, pretrained = T5VAE.from_base(args.base), True
    except OSError:  # a folder with only a config (offline): the shape is what is measured
        base, pretrained = T5VAE.from_base(args.base, pretrained=False), False
    state = {k: v.clone() for k, v in base.state_dict().items()}
    train = sentences(args.data_dir, max(args.batch_size * 4, 512))
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "base": args.base, "pretrained_weights": pretrained, "batch_size": args.batch_size}  # fmt: skip
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        base.load_state_dict(state)
        report[f"train_{name}"] = train_slice(
            base.to(device), tokenizer, train, args.batch_size, args.steps, device, dtype
        )
    base.load_state_dict(state)
    base.to(device).eval()
    test = train[: args.sentences]
    metrics = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            m = evaluate(
                base,
                tokenizer,
                test,
                iw_samples=args.iw_samples,
                batch_size=16,
                max_length=256,
                progress=False,
            )
        metrics[name] = {k: m[k] for k in ("nll", "rec", "kl", "neg_elbo", "mi", "au")} | {
            "sentences_per_s": len(test) / (time.perf_counter() - t0)}  # fmt: skip
    report["eval"] = metrics
    report["eval_bf16_minus_fp32"] = {
        k: metrics["bf16"][k] - metrics["fp32"][k] for k in ("nll", "rec", "kl", "mi")
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
