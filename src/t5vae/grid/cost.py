"""What a grid will cost on this machine, before running it: `./reproduce.sh --profile P --plan`.

For each dataset, a few real batches are timed on the current device with the profile's model
shape, batch size, max_length and data: a training step of each phase, validation and test
evaluation with the profile's K, greedy decoding, the checkpoints of an epoch, base pretraining, a
run's notebook overhead. A linear cost model (time is
linear in the number of sentences and in K; benchmarks/bench_vae.py measures where it bends)
multiplies them by what the grid does: epochs (the limit: early stopping can only make it
cheaper), steps per epoch, evaluation sets, runs and seeds, divided by the runs in parallel.
With several runs at a time on a CPU, the batches are timed in as many processes at once: runs
sharing a machine slow each other down (`measure_side_by_side`). The plan is kept as plan.md and
plan.json in the results folder; once runs finish, grid/jobs.py's `write_plan_check`
(plan_check.md, after every grid call, resumed or --collect) sets each stage's planned training and
evaluation time beside what the runs' results files measured.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

from t5vae.config import params as P
from t5vae.config import run as runs
from t5vae.data.corpora import batch_indices, collate, encode
from t5vae.data.tokenizer import load_tokenizer
from t5vae.evaluation.generation import reconstruct
from t5vae.evaluation.metrics import evaluate
from t5vae.grid.dryrun import base_config_dir
from t5vae.grid.jobs import PLAN_JSON
from t5vae.model.objectives import Objective, vae_loss
from t5vae.model.vae import T5VAE
from t5vae.notebook.steps import corpus_tokenizer, load_corpus, peak_memory
from t5vae.training.config import TrainConfig, autocast
from t5vae.training.loop import TRAIN_STATE
from t5vae.training.phases import set_trainable
from t5vae.training.pretrain import base_t5_config, span_corruption_loop
from t5vae.utils.files import atomic_write_text

BATCHES, STEP_SECONDS, SENTENCES = 3, 5.0, 16


@dataclass
class Costs:
    """Seconds per unit of work, measured on this device for one (profile, dataset)."""

    phase1_step: float
    phase2_step: float
    valid_sentence: float  # evaluation with K = valid_iw_samples
    test_sentence: float  # evaluation with K = iw_samples
    decode_sentence: float  # greedy reconstruction or a prior sample
    pretrain_step: float
    run_overhead: float  # a run's kernel start and imports (what a notebook pays before it works)
    epoch_checkpoint: float  # the checkpoints written each epoch: last/ (with optimizer) and best/
    peak_rss_mb: float
    peak_cuda_mb: float | None
    # padded tokens of the timed batches over an epoch's mean batch (1: as long as the epoch's);
    # the step costs above are already scaled by its inverse (representative_step)
    timed_tokens_ratio: float = 1.0


def _timed(fn, repeats: int, min_seconds: float = 0.0) -> float:
    """Mean seconds per call after a warm-up call: `repeats` calls, more until `min_seconds` have
    passed (batches of a corpus differ in length; a few cheap ones alone are a noisy mean)."""
    fn()  # warm-up (allocations, caches)
    t0, n = time.perf_counter(), 0
    while n < repeats or time.perf_counter() - t0 < min_seconds:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def padded_tokens(batch: list[int], lengths: list[int]) -> int:
    """Tokens of a batch as collate() pads it: its size times its longest sentence."""
    return len(batch) * max(lengths[i] for i in batch)


def representative_step(
    seconds: float, timed_tokens: list[int], epoch_tokens: float
) -> tuple[float, float]:
    """(seconds of a mean step of the epoch, the timed batches' tokens / the epoch's mean batch):
    the timed mean scaled linearly by padded tokens. A few batches of a bucketed corpus can be far
    from its mean length (on PTB's field plan, 2.4x the phase-1 training time measured). Step time
    grows sub-linearly with length (benchmarks/scaling.json), so the linear scaling overshoots
    (timed batches longer than the mean: it underestimates; the field's re-plan: measured phase-1
    training 1.37x the plan, against 0.41x unscaled)."""
    ratio = sum(timed_tokens) / len(timed_tokens) / epoch_tokens
    return seconds / ratio, ratio


def measure(spec: runs.RunSpec, barrier=None, base_config: str | None = None) -> Costs:
    """Time the pieces of a run of `spec`'s profile and dataset (random weights of its shape);
    with a `barrier`, the timing starts when every process waiting on it is ready. A pretrained
    base's config and tokenizer come from `base_config` or where the dry run finds them
    (dryrun.base_config_dir: ../shared offline, else the Hub); its weights are never needed."""
    prof = spec.profile
    builtin = prof.model.base == "builtin"
    base = None if builtin else base_config_dir(prof, base_config)
    tokenizer = _tokenizer(spec, base)
    config = (
        base_t5_config(tokenizer, prof.model.t5_overrides)
        if builtin
        else T5Config.from_pretrained(base)
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with runs.cpu_threads(prof.cpu_threads):
        model = T5VAE.from_base(
            config, latent_dim=prof.model.latent_dim, injection=prof.model.injection
        ).to(device)
        train = load_corpus(spec, "train").sentences
        ids = encode(tokenizer, train, spec.dataset.max_length).ids
        lengths = [len(x) for x in ids]
        batches = batch_indices(lengths, prof.phase2.batch_size, shuffle=True, seed=0)
        epoch_tokens = sum(padded_tokens(b, lengths) for b in batches) / len(batches)
        batch_iter = itertools.cycle(batches)
        optimizer = torch.optim.AdamW([p for p in model.parameters()], lr=1e-5)
        timed = {"phase1": [], "phase2": []}  # padded tokens of each batch a phase's step took

        def step(phase: str):
            chosen = next(batch_iter)
            timed[phase].append(padded_tokens(chosen, lengths))
            batch = collate([ids[i] for i in chosen], model.pad_id)
            _train_step(model, optimizer, batch, phase, getattr(prof, phase).mixed_precision)

        model.train()
        if barrier is not None:
            barrier.wait()
        phase1, ratio1 = representative_step(
            _timed(lambda: step("phase1"), BATCHES, STEP_SECONDS), timed["phase1"][1:], epoch_tokens
        )  # (the first batch is _timed's warm-up)
        phase2, ratio2 = representative_step(
            _timed(lambda: step("phase2"), BATCHES, STEP_SECONDS), timed["phase2"][1:], epoch_tokens
        )
        sents = load_corpus(spec, "test").sentences[:SENTENCES]
        kw = dict(
            batch_size=prof.eval.batch_size, max_length=spec.dataset.max_length, progress=False
        )
        valid = _timed(
            lambda: evaluate(
                model, tokenizer, sents, iw_samples=prof.phase2.valid_iw_samples, **kw
            ),
            1,
        )
        test = _timed(
            lambda: evaluate(model, tokenizer, sents, iw_samples=prof.eval.iw_samples, **kw), 1
        )
        decode = _timed(lambda: reconstruct(model, tokenizer, sents, batch_size=prof.eval.batch_size,
                                            max_new_tokens=spec.dataset.max_length), 1)  # fmt: skip
        pretrain = _pretrain_step(spec, tokenizer) if builtin else 0.0
        checkpoint = _timed(lambda: _save_checkpoints(model, tokenizer, optimizer), 1)
    memory = peak_memory()
    n = len(sents)
    return Costs(phase1, phase2, valid / n, test / n, decode / n, pretrain, _start_cost(), checkpoint,
                 memory["peak_rss_mb"], memory.get("peak_cuda_mb"), (ratio1 + ratio2) / 2)  # fmt: skip


def _train_step(model: T5VAE, optimizer, batch: dict, phase: str, mixed_precision: str) -> None:
    """One optimiser step of `phase` (its trainable parameters) on a technique with every term
    (threshold, deletion): what a training step costs."""
    set_trainable(model, TrainConfig(phase=phase))
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    with autocast(device.type, mixed_precision):
        loss = vae_loss(model, batch, 1.0, Objective(kl_threshold=0.5, denoise_prob=0.15))["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _save_checkpoints(model: T5VAE, tokenizer, optimizer) -> None:
    """What training writes at the end of an epoch (training._end_of_epoch): best/ when it
    improved (counted every epoch: an upper bound, like the epoch limits) and last/ with the
    optimizer's state."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(Path(tmp) / "best", tokenizer=tokenizer)
        model.save_pretrained(Path(tmp) / "last", tokenizer=tokenizer,
                              extra={TRAIN_STATE: {"optimizer": optimizer.state_dict()}})  # fmt: skip


def measure_side_by_side(spec: runs.RunSpec, n: int, base_config: str | None = None) -> Costs:
    """The unit costs as a run sees them with n - 1 other runs beside it on this CPU (--jobs n):
    `measure` in n processes at once, timed from a common start; the mean of each cost, the
    largest peak memory. On a GPU (one run at a time) or with n = 1, `measure` alone.

    Runs that share a CPU can slow each other down (memory bandwidth, caches, clock) even with a
    core each, so the grid's condition is what is timed. On this project's 2-core machine (quick,
    2 runs) the difference to timing alone stayed within the spread of repeated measurements
    (benchmarks/plan_check.py). Processes, not threads: each run of the grid is its own kernel.
    """
    if n <= 1 or torch.cuda.is_available():
        return measure(spec, base_config=base_config)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as the kernels are
    with ctx.Manager() as manager, ProcessPoolExecutor(n, mp_context=ctx) as pool:
        barrier = manager.Barrier(n)
        return combine(list(pool.map(measure, [spec] * n, [barrier] * n, [base_config] * n)))


def combine(each: list[Costs]) -> Costs:
    """Costs of processes measured side by side: the mean of each time, the largest peak memory
    (None where no process had a GPU)."""
    peaks = {"peak_rss_mb", "peak_cuda_mb"}
    return Costs(**{
        f.name: max(getattr(c, f.name) or 0 for c in each) or None if f.name in peaks
        else sum(getattr(c, f.name) for c in each) / len(each)
        for f in fields(Costs)
    })  # fmt: skip


def _start_cost() -> float:
    """What a run's notebooks pay besides training and evaluation, timed in a fresh process: the
    imports of its notebooks and the training-curve figure (the grid's timing.csv calls this the
    notebook overhead), plus a second of notebook bookkeeping. Not included: loading the model and
    the tokenized data before training (why the overhead is underestimated: benchmarks/plan_check.py)."""
    import subprocess

    figure = ("import io\nfrom t5vae.notebook import display, steps\nfrom t5vae.evaluation import metrics\nfrom t5vae.report import figures, plots, tables\n"
              "row = {'epoch': 0, 'kl_weight': 1.0, 'train_loss': 1.0, 'train_rec': 1.0, 'train_kl': 1.0}\n"
              "row.update({c: 1.0 for c in figures.curve_columns(row) if c not in row})\n"
              "history = [dict(row, epoch=e) for e in range(10)]\n"
              "plots.training_curves(history, 'x').savefig(io.BytesIO(), format='png')\n")  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", figure], check=True, env={**os.environ, "MPLBACKEND": "Agg"}
    )
    return time.perf_counter() - t0 + 1.0


def _tokenizer(spec: runs.RunSpec, base: str | None):
    tok = replace(spec.profile.tokenizer, **spec.dataset.tokenizer)
    if tok.source == "sentencepiece":  # seconds; the real base stage reuses it
        return load_tokenizer(corpus_tokenizer(spec, load_corpus(spec, "train"), tok))
    return load_tokenizer(base if tok.source == "base" else tok.source)


def _pretrain_step(spec: runs.RunSpec, tokenizer) -> float:
    prof = spec.profile
    config = base_t5_config(tokenizer, prof.model.t5_overrides)
    ids = [
        x[:-1]
        for x in encode(
            tokenizer, load_corpus(spec, "train").sentences[:2000], spec.dataset.max_length
        ).ids
    ]
    pt = prof.pretrain
    model = T5ForConditionalGeneration(config)
    return _timed(lambda: span_corruption_loop(model, tokenizer, ids, random.Random(0), 1, pt.batch_size, pt.lr,
                                                 pt.noise_density, pt.mean_span_length, False, pt.mixed_precision),
                  BATCHES)  # fmt: skip


def run_seconds(costs: Costs, steps: int, epochs: int, step_cost: float, sizes: dict[str, int],
                ev: P.EvalParams) -> dict[str, float]:  # fmt: skip
    """The cost model of one run: training (its steps, and each epoch's validation and
    checkpoints), the test set's evaluation with the prior samples, the notebooks' overhead."""
    train = steps * step_cost + epochs * (
        sizes["valid"] * costs.valid_sentence + costs.epoch_checkpoint
    )
    test = sizes["test"] * (costs.test_sentence + costs.decode_sentence)
    test += ev.n_prior_samples * costs.decode_sentence
    return {"train_s": train, "eval_s": test, "overhead_s": costs.run_overhead}


def estimate(profile: P.Profile, costs: Costs, n_phase1: int, n_phase2: int, seeds: int,
             jobs: int, sizes: dict[str, int]) -> dict[str, float]:  # fmt: skip
    """Seconds per stage for one dataset (summed over runs and seeds), the part of it spent on the
    test set's evaluation (`<stage>_test`), and the wall time. `sizes`: sentences per split as the
    runs see them (the profile's caps applied to the corpus)."""

    def run(phase: P.PhaseParams, step: float) -> tuple[float, float]:
        steps_per_epoch = math.ceil(sizes["train"] / phase.batch_size / phase.grad_accum)
        steps = phase.epochs * steps_per_epoch
        if phase.max_steps:
            steps = min(steps, phase.max_steps)
        epochs = math.ceil(steps / steps_per_epoch)
        parts = run_seconds(costs, steps, epochs, step, sizes, profile.eval)
        return sum(parts.values()), parts["eval_s"]

    out = {"base": profile.pretrain.steps * costs.pretrain_step}
    for stage, n, phase, step in (("phase1", n_phase1, profile.phase1, costs.phase1_step),
                                  ("phase2", n_phase2, profile.phase2, costs.phase2_step)):  # fmt: skip
        total, test = run(phase, step)
        out[stage], out[f"{stage}_test"] = seeds * n * total, seeds * n * test
        out[f"{stage}_train"] = seeds * n * (total - test - costs.run_overhead)
    out["wall"] = out["base"] + (out["phase1"] + out["phase2"]) / max(1, jobs)
    return out


def report(profile: P.Profile, per_dataset: dict[str, tuple[Costs, dict]], jobs: int) -> str:
    lines = [f"# Plan: {profile.name} on {'cuda' if torch.cuda.is_available() else 'cpu'}, {jobs} runs at a time",
             "", "| dataset | stage | minutes (summed over runs) | of it test evaluation | seconds per unit measured here | peak memory |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    total = 0.0
    for ds, (costs, est) in per_dataset.items():
        mem = f"RSS {costs.peak_rss_mb:.0f} MB" + (
            f", GPU {costs.peak_cuda_mb:.0f} MB" if costs.peak_cuda_mb else ""
        )
        units = {"base": f"pretraining step {costs.pretrain_step:.3f}",
                 "phase1": f"step {costs.phase1_step:.3f} (timed batches {costs.timed_tokens_ratio:.2f}x an "
                           f"epoch's mean padded tokens), checkpoints of an epoch {costs.epoch_checkpoint:.2f}, "
                           f"test sentence {costs.test_sentence:.3f}",
                 "phase2": f"step {costs.phase2_step:.3f}, valid sentence {costs.valid_sentence:.4f}, "
                           f"decoded sentence {costs.decode_sentence:.3f}"}  # fmt: skip
        for stage in ("base", "phase1", "phase2"):
            share = f"{est[f'{stage}_test'] / est[stage]:.0%}" if est.get(f"{stage}_test") else "-"
            lines.append(
                f"| {ds} | {stage} | {est[stage] / 60:.1f} | {share} | {units[stage]} | {mem} |"
            )
        total += est["wall"]
    lines += ["", f"Estimated wall time of the grid: {total / 3600:.2f} h ({total / 60:.0f} min); epochs at their "
              "limit (early stopping only shortens it).", ""]  # fmt: skip
    return "\n".join(lines)


def print_plan(profile: P.Profile, jobs: list, n_jobs: int, results_dir: Path,
               base_config: str | None = None) -> int:  # fmt: skip
    """--plan: measure a few batches per dataset, estimate the grid, write plan.md, run nothing."""
    per_dataset = {}
    for ds in sorted({j.spec.dataset.name for j in jobs}):
        mine = [j for j in jobs if j.spec.dataset.name == ds]
        seeds = len({j.spec.seed for j in mine})
        n1, n2 = (sum(j.spec.stage == s for j in mine) // seeds for s in ("phase1", "phase2"))
        print(f"[plan] {profile.name}/{ds}: timing a few batches ...", flush=True)
        sizes = {
            split: len(load_corpus(mine[0].spec, split)) for split in ("train", "valid", "test")
        }
        costs = measure_side_by_side(mine[0].spec, n_jobs, base_config)
        per_dataset[ds] = (costs, estimate(profile, costs, n1, n2, seeds, n_jobs, sizes))
    text = report(profile, per_dataset, n_jobs)
    atomic_write_text(results_dir / "plan.md", text)
    atomic_write_text(results_dir / PLAN_JSON, json.dumps(
        {"profile": profile.name, "jobs": n_jobs, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
         "datasets": {ds: est for ds, (_, est) in per_dataset.items()}}, indent=2))  # fmt: skip
    print(text)
    return 0
