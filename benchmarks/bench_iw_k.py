"""How far the test NLL at the K a profile uses is from K = 500 (the literature's K), on a subset.

    python benchmarks/bench_iw_k.py CHECKPOINT --sentences ../shared/data/ptb/test.txt \
        --n 200 --k 20 500 --seeds 0 1 --out benchmarks/iw_k_field.json

The importance-weighted bound (Burda et al. 2016) log p(x) >= E[log 1/K sum_k p(x, z_k) / q(z_k|x)]
tightens as K grows, so the NLL at a small K is an upper bound on the NLL at K = 500 in
expectation. This evaluates the checkpoint (a folder of `save_pretrained`, or a run's `best/` with
the tokenizer beside it: --tokenizer) on the first N sentences at every K and seed, with
evaluation.metrics.evaluate (the same code as a run's test evaluation), and writes the NLL,
per-word PPL and seconds of each, and per K the mean over seeds. Seeds give the estimator's own
spread at a K. The field profile states its K = 20 against K = 500 from this file.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from t5vae import hub
from t5vae.data.corpora import read_lines
from t5vae.evaluation.metrics import evaluate
from t5vae.utils.files import atomic_write_json


def measure(model, tokenizer, sentences: list[str], ks: list[int], seeds: list[int],
            batch_size: int = 50) -> dict:  # fmt: skip
    """{"runs": [{k, seed, nll, ppl_word, seconds}], "by_k": {k: mean nll, mean ppl_word}}."""
    runs = []
    for k in ks:
        for seed in seeds:
            t0 = time.perf_counter()
            m = evaluate(model, tokenizer, sentences, iw_samples=k, batch_size=batch_size,
                         seed=seed, progress=True)  # fmt: skip
            runs.append({"k": k, "seed": seed, "nll": m["nll"], "ppl_word": m["ppl_word"],
                         "seconds": time.perf_counter() - t0})  # fmt: skip
            print(f"K = {k}, seed {seed}: NLL {m['nll']:.3f}, PPL {m['ppl_word']:.2f}", flush=True)
    by_k = {}
    for k in ks:
        mine = [r for r in runs if r["k"] == k]
        by_k[str(k)] = {key: sum(r[key] for r in mine) / len(mine) for key in ("nll", "ppl_word")}
    return {"runs": runs, "by_k": by_k}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a checkpoint folder (model and tokenizer) or Hub id")
    ap.add_argument("--tokenizer", help="default: the one saved with the checkpoint")
    ap.add_argument("--sentences", required=True, help="a text file, one sentence per line")
    ap.add_argument("--n", type=int, default=200, help="the first N sentences (default 200)")
    ap.add_argument("--k", type=int, nargs="+", default=[20, 500], help="K values (default 20 500)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--out", required=True, help="JSON file to write")
    args = ap.parse_args(argv)
    if args.n < 1 or min(args.k) < 1:
        ap.error("--n and every --k must be >= 1")
    sentences, _, _ = read_lines(args.sentences)
    model, tokenizer = hub.load(args.checkpoint, args.tokenizer)
    record = {"checkpoint": str(args.checkpoint), "sentences": str(args.sentences),
              "n": min(args.n, len(sentences)), "device": platform.processor() or "cpu",
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              **measure(model, tokenizer, sentences[: args.n], args.k, args.seeds, args.batch_size)}  # fmt: skip
    low, high = str(min(args.k)), str(max(args.k))
    record["nll_gap"] = record["by_k"][low]["nll"] - record["by_k"][high]["nll"]
    record["ppl_ratio"] = record["by_k"][low]["ppl_word"] / record["by_k"][high]["ppl_word"]
    atomic_write_json(Path(args.out), record)
    print(f"K = {low} against K = {high} on {record['n']} sentences: NLL {record['nll_gap']:+.3f} "
          f"nats, PPL x{record['ppl_ratio']:.4f} -> {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
