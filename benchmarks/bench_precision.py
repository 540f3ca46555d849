"""Speed settings for CPU training at a given model shape, as ratios measured in one process.

    python benchmarks/bench_precision.py [--shape field|replica|t5-small] [--threads 1]
                                         [--out benchmarks/precision_field.json]

Each ratio is the median time of the baseline (float32, eager, this thread count) over the
median time of the setting, both called in turn on the same PTB batches (length-bucketed as the
training loop makes them; built-in corpus where PTB is absent):

1. bf16 autocast (torch.autocast("cpu", bfloat16)) for a phase-2 step (everything trains), a
   phase-1 step (decoder frozen), a span-corruption pretraining step, and the IW-NLL evaluation
2. torch.compile of the phase-2 step's model (inductor; its compile time reported apart)
3. two threads against one (the profiles fix cpu_threads: 1 so that numbers do not depend on it)

and what bf16 changes in the numbers on the same weights and batches: the relative change of the
training loss and the change of the evaluation's NLL in nats per sentence (to be set against the
spread over seeds, e.g. reference/replica: NLL sd 0.2-1.7 nats). A setting is adopted by a profile
when it is at least 1.3x faster and moves the metrics by less than that spread (issue 23).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vae import corpus_split, interleaved  # noqa: E402

from t5vae.data.corpora import batch_indices, collate, encode  # noqa: E402
from t5vae.data.tokenizer import train_sentencepiece  # noqa: E402
from t5vae.evaluation.metrics import evaluate  # noqa: E402
from t5vae.model.objectives import Objective, vae_loss  # noqa: E402
from t5vae.model.vae import T5VAE  # noqa: E402
from t5vae.report.results import cpu_model  # noqa: E402
from t5vae.training.config import TrainConfig, autocast  # noqa: E402
from t5vae.training.phases import set_trainable  # noqa: E402
from t5vae.training.pretrain import span_corruption_loop  # noqa: E402
from t5vae.utils.files import atomic_write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHAPES = {  # t5_overrides of params/profiles/{replica,field}.yaml; t5-small's own config
    "replica": dict(d_model=128, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=32),
    "field": dict(d_model=256, d_ff=1024, num_layers=4, num_decoder_layers=4, num_heads=4, d_kv=64),
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8, d_kv=64),
}  # fmt: skip


def setup(args):
    sentences, source = corpus_split("train", args.sentences)
    tokenizer = train_sentencepiece(
        sentences, args.vocab_size, tempfile.mkdtemp(), model_type="unigram"
    )
    config = T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
                      dropout_rate=0.0, **SHAPES[args.shape])  # fmt: skip
    ids = encode(tokenizer, sentences, 256).ids
    batches = batch_indices([len(x) for x in ids], args.batch_size, shuffle=True, seed=0)
    batches = [
        collate([ids[i] for i in b], tokenizer.pad_token_id) for b in batches[: args.repeats + 1]
    ]
    return tokenizer, config, ids, batches, sentences, source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=list(SHAPES), default="field")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--sentences", type=int, default=4000, help="training sentences the batches come from"
    )
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--eval-sentences", type=int, default=32)
    ap.add_argument("--iw-samples", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer, config, ids, batches, sentences, source = setup(args)
    torch.manual_seed(0)
    vae = T5VAE.from_base(T5ForConditionalGeneration(config), latent_dim=32).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-5)  # tiny steps: the weights barely move
    objective = Objective(kl_threshold=0.5)
    it = iter(range(10**9))

    def step(precision: str, phase: str = "phase2", model=vae):
        set_trainable(vae, TrainConfig(phase=phase))
        batch = batches[next(it) % args.repeats]
        with autocast("cpu", precision):
            loss = vae_loss(model, batch, 1.0, objective)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    rows = {}
    for phase in ("phase2", "phase1"):
        fp32, bf16 = interleaved(
            [lambda p=phase: step("no", p), lambda p=phase: step("bf16", p)], 1, args.repeats
        )
        rows[f"1_bf16_{phase}_step"] = {"fp32_s": fp32, "bf16_s": bf16, "ratio": fp32 / bf16}

    t5 = T5ForConditionalGeneration(config).train()
    span_ids = [x[:-1] for x in ids[:2000]]

    def pretrain_step(precision):
        span_corruption_loop(t5, tokenizer, span_ids, random.Random(0), 1, args.batch_size, 1e-5,
                             0.15, 3.0, False, precision)  # fmt: skip

    fp32, bf16 = interleaved(
        [lambda: pretrain_step("no"), lambda: pretrain_step("bf16")], 1, args.repeats
    )
    rows["1_bf16_pretrain_step"] = {"fp32_s": fp32, "bf16_s": bf16, "ratio": fp32 / bf16}

    vae.eval()
    held_out = sentences[-args.eval_sentences :]

    def ev(precision):
        with autocast("cpu", precision):
            return evaluate(vae, tokenizer, held_out, iw_samples=args.iw_samples, batch_size=args.eval_sentences,
                            progress=False)  # fmt: skip

    results = {}
    fp32, bf16 = interleaved([lambda: results.update(no=ev("no")), lambda: results.update(bf16=ev("bf16"))],
                             0, max(1, args.repeats // 2))  # fmt: skip
    rows["1_bf16_evaluation"] = {"fp32_s": fp32, "bf16_s": bf16, "ratio": fp32 / bf16, "K": args.iw_samples,
                                 "sentences": len(held_out)}  # fmt: skip

    # what bf16 changes on the same weights and batch: the loss, and the evaluation's numbers
    batch = batches[0]
    with torch.no_grad():
        losses = {}
        for precision in ("no", "bf16"):
            torch.manual_seed(1)
            with autocast("cpu", precision):
                losses[precision] = float(vae_loss(vae, batch, 1.0, objective)["loss"])
    rows["numbers_bf16_vs_fp32"] = {
        "train_loss_relative_change": (losses["bf16"] - losses["no"]) / abs(losses["no"]),
        "eval_nll_change_nats": results["bf16"]["nll"] - results["no"]["nll"],
        "eval_rec_change_nats": results["bf16"]["rec"] - results["no"]["rec"],
        "eval_kl_change_nats": results["bf16"]["kl"] - results["no"]["kl"],
        "eval_mi_change": results["bf16"]["mi"] - results["no"]["mi"],
        "eval_au_change": results["bf16"]["au"] - results["no"]["au"],
        "note": "random-init weights of the shape; the same draws of z (same seed) in both",
    }
    vae.train()

    if not args.no_compile:
        try:
            compiled = torch.compile(vae)
            t0 = time.perf_counter()
            step("no", model=compiled)
            compile_s = time.perf_counter() - t0
            eager, comp = interleaved(
                [lambda: step("no"), lambda: step("no", model=compiled)], 1, args.repeats
            )
            rows["2_compile_phase2_step"] = {"eager_s": eager, "compiled_s": comp, "ratio": eager / comp,
                                             "first_call_s": compile_s}  # fmt: skip
        except Exception as e:  # noqa: BLE001  (a platform without a working inductor: recorded)
            rows["2_compile_phase2_step"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}

    if args.threads == 1 and (os.cpu_count() or 1) >= 2:
        one = statistics.median(_times(lambda: step("no"), args.repeats))
        torch.set_num_threads(2)
        two = statistics.median(_times(lambda: step("no"), args.repeats))
        torch.set_num_threads(1)
        rows["3_two_threads_vs_one"] = {"one_thread_s": one, "two_threads_s": two, "ratio": one / two,
                                        "note": "measured while the machine's other work ran; see load_average"}  # fmt: skip
    n_params = sum(p.numel() for p in vae.parameters())
    out = {"shape": args.shape, "t5_overrides": SHAPES[args.shape], "n_parameters": n_params,
           "vocab_size": len(tokenizer), "batch_size": args.batch_size, "threads": args.threads,
           "repeats": args.repeats, "corpus": source, "cpu": cpu_model(), "machine": platform.machine(),
           "torch": torch.__version__, "load_average": os.getloadavg(), "results": rows}  # fmt: skip
    path = Path(args.out or REPO / "benchmarks" / f"precision_{args.shape}.json")
    atomic_write_json(path, out)
    for name, row in rows.items():
        print(name, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    print(f"wrote {path}")


def _times(fn, repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


if __name__ == "__main__":
    main()
