"""Speed and memory of the VAE machinery, as ratios against baselines measured in this process.

    python benchmarks/bench_vae.py [--model t5-small-shape|tiny] [--out benchmarks/results.json]

1. training step of the VAE vs the plain T5 seq2seq step (teacher forcing, same batch)
2. training throughput of our data path vs the released code's scheme (pad every sentence to 256
   tokens, per-example Python denoising loop), same model, same sentences
3. IW-NLL evaluation with K samples vs K plain decoder passes plus one encoder pass
4. peak memory of each and evaluation sentences/s for K = 1, 100, 500
5. loading a corpus's token ids from the Arrow cache (a second run) vs tokenising it again
6. how cost grows: a training step against sentence length, evaluation against K, an epoch against
   the corpus size (benchmarks/scaling.png; the cost model of ./reproduce.sh --plan)

Each figure is the median of --repeats timings after --warmup untimed ones, baseline and ours
called in turn (2: --repeats batches of each, alternating; sentences/s over all). Sentences are PTB
when $T5VAE_DATA_DIR (or ../shared/data) has it, else the built-in corpus.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

from t5vae.config import params as P
from t5vae.data.corpora import batch_indices, builtin_split, collate, encode, load_split
from t5vae.data.tokenizer import load_tokenizer
from t5vae.evaluation.metrics import evaluate
from t5vae.model.objectives import Objective, vae_loss
from t5vae.model.vae import T5VAE
from t5vae.report.results import cpu_model
from t5vae.utils.files import atomic_file, atomic_write_json

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("T5VAE_SHARED_DIR", REPO.parent / "shared"))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def timeit(fn, warmup: int, repeats: int) -> float:
    """Median seconds of `repeats` calls after `warmup` untimed ones."""
    return interleaved([fn], warmup, repeats)[0]


def interleaved(fns, warmup: int, repeats: int) -> list[float]:
    """Median seconds of each function, called in turn (a, b, a, b, ...) so that a change of the
    machine's load during the run hits baseline and ours alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(times, fns, strict=True):
            t.append(_timed(fn))
    return [statistics.median(t) for t in times]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus_split(split: str, n: int | None) -> tuple[list[str], str]:
    """PTB's split (first n sentences; all for n=None) where present, else the built-in corpus."""
    data_dir = os.environ.get("T5VAE_DATA_DIR") or SHARED / "data"
    try:
        return load_split(P.load_dataset("ptb"), split, data_dir).sentences[:n], "ptb"
    except ValueError:
        return builtin_split(split, size=n or 20000).sentences, "builtin"


def sentences_and_tokenizer(n: int):
    tok_dir = SHARED / "models" / "t5-small"
    if not (tok_dir / "tokenizer.json").is_file():
        sys.exit(f"needs the t5-small tokenizer files in {tok_dir} (set T5VAE_SHARED_DIR)")
    tokenizer = load_tokenizer(tok_dir)
    return (tokenizer, *corpus_split("valid", n))


def released_denoise(input_ids, mask, p, pad_id):
    """The released code's per-example loop (with its id/mask swap fixed, so it is a fair cost)."""
    ids_out, mask_out = input_ids.clone(), mask.clone()
    for i, (inp, msk) in enumerate(zip(input_ids, mask, strict=True)):
        n = int(msk.sum() - 1)
        max_drop = int(n * p)
        k = int(torch.randint(max_drop, (1,))) if max_drop > 1 else 0
        drop = torch.randperm(n)[:k]
        keep_ids = torch.tensor([t for j, t in enumerate(inp) if j not in drop])
        keep_msk = torch.tensor([t for j, t in enumerate(msk) if j not in drop])
        ids_out[i] = torch.cat((keep_ids, torch.full((k,), pad_id)))
        mask_out[i] = torch.cat((keep_msk, torch.zeros(k, dtype=keep_msk.dtype)))
    return ids_out, mask_out


def scaling(vae, tokenizer, sents, args, device) -> dict:
    """Seconds of a training step by sentence length, of evaluation by K, of an epoch by corpus size."""
    ids = [x for x in encode(tokenizer, sents * 8, 256).ids]
    flat = [t for x in ids for t in x[:-1]]
    out = {"length": {}, "K": {}, "corpus": {}}
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-5)

    def step(batch):
        vae_loss(vae, batch, 1.0, Objective(kl_threshold=0.5))["loss"].backward()
        opt.step()
        opt.zero_grad()

    for length in (16, 32, 64, 128):  # the same tokens cut into sentences of this length
        seqs = [
            flat[i * length : (i + 1) * length - 1] + [tokenizer.eos_token_id]
            for i in range(args.batch_size)
        ]
        batch = {k: v.to(device) for k, v in collate(seqs).items()}
        out["length"][length] = timeit(lambda b=batch: step(b), 1, max(1, args.repeats // 2))
    n = min(len(sents), 8)
    for k in (1, 10, 50, 100):
        out["K"][k] = timeit(lambda k=k: evaluate(vae, tokenizer, sents[:n], iw_samples=k, batch_size=n,
                                                   progress=False), 0, 1)  # fmt: skip
    for size in (args.batch_size * 2, args.batch_size * 4, args.batch_size * 8):
        batches = batch_indices([len(x) for x in ids[:size]], args.batch_size)
        epoch = [
            {k: v.to(device) for k, v in collate([ids[i] for i in b]).items()} for b in batches
        ]
        out["corpus"][size] = timeit(lambda e=epoch: [step(b) for b in e], 0, 1)
    return out


def plot_scaling(s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (key, xlabel) in zip(axes, [("length", "tokens per sentence (batch fixed)"), ("K", "importance samples K"),
                                        ("corpus", "sentences per epoch")], strict=True):  # fmt: skip
        x = [int(v) for v in s[key]]
        y = list(s[key].values())
        ax.plot(x, y, "o-", label="measured")
        ax.plot(
            [x[0], x[-1]],
            [y[0], y[0] * x[-1] / x[0]],
            "--",
            color="grey",
            label="linear from the first",
        )
        ax.set(xlabel=xlabel, ylabel="seconds")
        ax.legend(fontsize=7)
    fig.suptitle("how cost grows with the work (benchmarks/bench_vae.py, benchmark 6)")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["t5-small-shape", "tiny"], default="t5-small-shape")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--eval-sentences", type=int, default=32)
    ap.add_argument("--tokenize-sentences", type=int, default=None,
                    help="training sentences tokenised in benchmark 5 (default: the whole split)")  # fmt: skip
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    ap.add_argument("--scaling-only", action="store_true",
                    help="run benchmark 6 alone (use with --out benchmarks/scaling.json)")  # fmt: skip
    args = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, sentences, source = sentences_and_tokenizer(
        max(args.batch_size * 4, args.eval_sentences)
    )
    config = T5Config.from_pretrained(SHARED / "models" / "t5-small")
    if args.model == "tiny":
        config = T5Config.from_pretrained(SHARED / "models" / "t5-small", d_model=128, d_ff=512, num_layers=2,
                                          num_decoder_layers=2, num_heads=4, d_kv=32)  # fmt: skip
    t5 = T5ForConditionalGeneration(config).to(device).train()
    vae = T5VAE.from_base(T5ForConditionalGeneration(config), latent_dim=32).to(device).train()
    batch_sents = sentences[: args.batch_size]
    batch = {k: v.to(device) for k, v in collate(encode(tokenizer, batch_sents, 256).ids).items()}
    opt_t5 = torch.optim.AdamW(t5.parameters(), lr=1e-4)
    opt_vae = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    rows = {}
    if args.scaling_only:  # benchmark 6 alone: how cost grows (the cost model of --plan)
        rows["6_scaling"] = scaling(vae, tokenizer, sentences[: args.eval_sentences], args, device)
        plot_scaling(rows["6_scaling"], Path(args.out).with_name("scaling.png"))
        return finish(rows, args, source)

    def t5_step(b=batch):
        out = t5(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
        out.loss.backward()
        opt_t5.step()
        opt_t5.zero_grad()

    def vae_step(b=batch, denoise=0.0):
        vae_loss(vae, b, 1.0, Objective(kl_threshold=0.5, denoise_prob=denoise), gen)[
            "loss"
        ].backward()
        opt_vae.step()
        opt_vae.zero_grad()

    base, ours = interleaved([t5_step, vae_step], args.warmup, args.repeats)
    rows["1_vae_step_vs_t5_step"] = {
        "baseline_s": base,
        "ours_s": ours,
        "ratio": ours / base,
        "target": "<= 1.05",
    }

    # 2. data path: our batches (length-bucketed, dynamic padding, vectorised deletion) vs the
    #    released scheme (every sentence padded to 256, per-example Python deletion loop); the
    #    two alternate batch by batch over --repeats batches of each
    pool = sentences_and_tokenizer(args.batch_size * 32)[1]
    enc = encode(tokenizer, pool, 256).ids
    lengths = [len(x) for x in enc]
    ours_batches = batch_indices(lengths, args.batch_size, shuffle=True, seed=0)
    released_batches = batch_indices(lengths, args.batch_size, shuffle=True, seed=0, bucket=False)

    def step_ours(idx):
        vae_step({k: v.to(device) for k, v in collate([enc[i] for i in idx]).items()}, denoise=0.15)

    def step_released(idx):
        b = collate([enc[i] for i in idx])
        width = b["input_ids"].shape[1]
        b = {k: torch.nn.functional.pad(v, (0, 256 - width), value=-100 if k == "labels" else 0)
             for k, v in b.items()}  # fmt: skip
        ids, mask = released_denoise(b["input_ids"], b["attention_mask"], 0.15, 0)
        b = {"input_ids": ids.to(device), "attention_mask": mask.to(device),
             "labels": b["labels"].to(device)}  # fmt: skip
        vae_loss(vae, b, 1.0, Objective(kl_threshold=0.5), gen)["loss"].backward()
        opt_vae.step()
        opt_vae.zero_grad()

    step_ours(ours_batches[-1])  # warm-up
    step_released(released_batches[-1])
    t_ours = t_released = 0.0
    n_ours = n_released = 0
    for r in range(args.repeats):
        t_released += _timed(lambda r=r: step_released(released_batches[r]))
        t_ours += _timed(lambda r=r: step_ours(ours_batches[r]))
        n_released += len(released_batches[r])
        n_ours += len(ours_batches[r])
    widths = [max(lengths[i] for i in b) for b in ours_batches[: args.repeats]]
    rows["2_throughput_vs_released_scheme"] = {
        "baseline_sentences_per_s": n_released / t_released, "ours_sentences_per_s": n_ours / t_ours,
        "ratio": (n_ours / t_ours) / (n_released / t_released), "target": ">= 8",
        "batches": args.repeats, "mean_padded_width_ours": sum(widths) / len(widths),
        "padded_width_released": 256,
    }  # fmt: skip

    # 3. IW-NLL with K samples vs K plain decoder passes + one encoder pass
    vae.eval()
    eval_sents = sentences[: args.eval_sentences]
    k = 20
    eval_batch = {
        k_: v.to(device) for k_, v in collate(encode(tokenizer, eval_sents, 256).ids).items()
    }

    @torch.inference_mode()
    def plain_passes():
        mu, _ = vae.encode(eval_batch["input_ids"], eval_batch["attention_mask"])
        for _ in range(k):
            vae.log_likelihood(mu, eval_batch["labels"])

    base_eval, ours_eval = interleaved(
        [plain_passes, lambda: evaluate(vae, tokenizer, eval_sents, iw_samples=k,
                                        batch_size=len(eval_sents), progress=False)],
        args.warmup, args.repeats,
    )  # fmt: skip
    rows["3_iw_eval_vs_plain_passes"] = {"K": k, "baseline_s": base_eval, "ours_s": ours_eval,
                                         "ratio": ours_eval / base_eval, "target": "<= 1.15"}  # fmt: skip

    # 4. evaluation speed by K and peak memory
    for kk in (1, 100, 500):
        n = max(4, min(len(eval_sents), 2000 // kk))
        t = timeit(lambda kk=kk, n=n: evaluate(vae, tokenizer, eval_sents[:n], iw_samples=kk,
                                                batch_size=n, progress=False), 0, 1)  # fmt: skip
        rows[f"4_eval_K{kk}"] = {"sentences": n, "sentences_per_s": n / t}
    rows["4_peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available():
        rows["4_peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20

    # 6. how cost grows with the work (the cost model of --plan): a training step against sentence
    #    length (batch and model fixed), evaluation against K (sentences fixed), an epoch against
    #    the corpus size (its steps)
    rows["6_scaling"] = scaling(vae, tokenizer, eval_sents, args, device)
    plot_scaling(rows["6_scaling"], Path(args.out).with_name("scaling.png"))

    # 5. a second run's tokenisation: the Arrow cache (data.encode(cache_dir=...)) vs tokenising
    train_sents = corpus_split("train", args.tokenize_sentences)[0]
    with tempfile.TemporaryDirectory() as cache:
        encode(tokenizer, train_sents[:100], 256, cache_dir=cache)  # warm-up (imports datasets)
        t_tok = timeit(lambda: encode(tokenizer, train_sents, 256), 0, max(1, args.repeats // 2))
        encode(tokenizer, train_sents, 256, cache_dir=cache)  # first run: tokenise and store
        t_cached = timeit(lambda: encode(tokenizer, train_sents, 256, cache_dir=cache), 1,
                          args.repeats)  # fmt: skip
    rows["5_cached_tokens_vs_tokenising"] = {
        "sentences": len(train_sents), "baseline_s": t_tok, "ours_s": t_cached,
        "ratio": t_cached / t_tok, "target": "< 1 (lower is better)",
    }  # fmt: skip

    finish(rows, args, source)


def finish(rows: dict, args, source: str) -> None:
    """Write results.json (first: a failure while printing loses nothing), then print the table."""
    info = {"machine": platform.platform(), "processor": cpu_model(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "model": args.model, "batch_size": args.batch_size, "sentences": source,
            "torch": torch.__version__}  # fmt: skip
    atomic_write_json(args.out, {"info": info, "results": rows})  # never half-written
    print(
        f"# {info['device']} ({info['cpu_count']} CPUs), {args.model}, batch {args.batch_size}, {source}"
    )
    print(f"{'benchmark':38s} {'ratio':>8s}  target   details")
    for name, r in rows.items():
        if isinstance(r, dict) and "ratio" in r:
            det = {k_: _rounded(v) for k_, v in r.items() if k_ not in ("ratio", "target")}
            print(f"{name:38s} {r['ratio']:8.2f}  {r['target']:7s}  {det}")
        else:
            print(f"{name:38s} {'':8s}  {'':7s}  {_rounded(r)}")
    print(f"written: {args.out}")


def _rounded(value):
    """Floats to 3 significant decimals, through nested dicts (benchmark 6's tables)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 3) if isinstance(value, float) else value


if __name__ == "__main__":
    main()
