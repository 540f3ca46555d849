"""Two-phase finetuning of a T5VAE (Park & Lee, 2021), one plain loop run through `accelerate`.

phase1  encoder + latent heads learn to autoencode, KL weight 0, decoder frozen (by default):
        rec only. The decoder stays the pretrained language model.
phase2  everything trains on the run's `Objective` (objectives.py): rec + beta(step) * thresholded
        KL, with token-deletion denoising of the encoder input, from a phase-1 checkpoint (or from
        the base model: the "vanilla VAE" baseline).

Each epoch ends with a validation pass (`evaluate`) whose metrics go into the history, an
atomically written `last/` checkpoint (model + optimizer + every process's RNG streams + data
position + history: resumable, also mid-epoch with `checkpoint_every`) and a `best/` model when
the selection metric improved; early stopping watches the same metric. With N processes
(`accelerate launch`) each takes its 1/N of every global batch and DDP averages the gradients.

The checkpoint is written here rather than with `Accelerator.save_state`: save_state writes its
folder in place (a crash mid-save leaves a half checkpoint), stores the wrapped module (so `last/`
would not be a T5VAE checkpoint) and knows neither our sampling generator nor the data position.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from t5vae.data.corpora import batch_indices, collate, encode
from t5vae.evaluation.metrics import evaluate
from t5vae.model.objectives import KLSchedule, Objective, vae_loss
from t5vae.model.vae import T5VAE
from t5vae.training.config import TrainConfig, config_differences
from t5vae.training.phases import set_trainable
from t5vae.utils.files import atomic_write_json
from t5vae.utils.progress import bar as progress_bar

TRAIN_STATE = "train_state.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the term."""


class CollatedBatches(torch.utils.data.Dataset):
    """Item j is batch j: the listed sentences' ids padded by `collate` (for a DataLoader)."""

    def __init__(self, ids: list[list[int]], batches: list[list[int]], pad_id: int):
        self.ids, self.batches, self.pad_id = ids, batches, pad_id

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        return collate([self.ids[i] for i in self.batches[j]], self.pad_id)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices); deterministic algorithms where cheap."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class LossModule(torch.nn.Module):
    """The model, the objective and the modules the objective trains besides the model: the unit
    `accelerate` wraps (the loss is computed in a forward so that DDP all-reduces its gradients).

    forward(batch, kl_weight, generator) = vae_loss(...): {"loss", and every term by name}.
    """

    def __init__(self, model: T5VAE, objective: Objective, tokenizer=None):
        super().__init__()
        self.model = model
        self.objective = objective
        self.extra = objective.extra_modules(model)
        self.unk_id = getattr(tokenizer, "unk_token_id", None)

    def forward(self, batch, kl_weight, generator=None):
        return vae_loss(self.model, batch, kl_weight, self.objective, generator, self.extra,
                        self.unk_id)  # fmt: skip


def is_finished(out_dir: str | os.PathLike) -> bool:
    """Whether out_dir/last/ holds a finished run (`train` would return without training)."""
    path = Path(out_dir) / "last" / TRAIN_STATE
    if not path.is_file():
        return False
    try:  # memory-mapped: the optimizer state is not read
        return bool(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["finished"])
    except Exception:  # unreadable: train() reports it with its path
        return False


@dataclass
class TrainState:
    """Where training stands: saved in `last/` with the weights, enough to continue exactly."""

    epoch: int = 0  # epochs finished
    batch_in_epoch: int = 0  # batches of the current epoch already trained (mid-epoch save)
    step: int = 0  # optimiser steps
    best: float = math.inf  # best selection metric so far
    bad_epochs: int = 0  # epochs since it last improved
    history: list = field(default_factory=list)  # one row per epoch
    epoch_sums: dict | None = None  # running sums of the current epoch's terms (mid-epoch save)
    finished: bool = False
    stopped_early: bool = False


@dataclass
class TrainResult:
    history: list[dict]
    best_dir: Path
    last_dir: Path
    stopped_early: bool
    wall_time_s: float


@dataclass
class _Loop:
    """What every step of one training run uses (built once by `train`)."""

    cfg: TrainConfig
    accelerator: object
    wrapper: torch.nn.Module  # the prepared LossModule
    optimizer: torch.optim.Optimizer
    params: list
    schedule: KLSchedule
    generator: torch.Generator
    train_ids: list[list[int]]
    out: Path
    tokenizer: object = None  # saved with every checkpoint: a checkpoint folder is self-contained

    @property
    def model(self) -> T5VAE:
        return self.accelerator.unwrap_model(self.wrapper).model


def train(
    model: T5VAE,
    tokenizer,
    train_sentences: list[str],
    valid_sentences: list[str],
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    resume: bool = True,
    run_params: dict | None = None,
) -> TrainResult:
    """Train `model` in place with `cfg`; checkpoints go to out_dir/{last,best}/.

    With resume=True and a `last/` checkpoint present, training continues from it (same batch
    order, optimizer and RNG state), so an interrupted run ends as an uninterrupted one would.
    With cfg.log_with a tracker records `run_params` and cfg, every step's loss terms (train/<term>,
    train/kl_weight) and every epoch's validation metrics (valid/<metric>), against the step.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    accelerator = _accelerator(cfg, run_params)
    stored = _read_checkpoint(out / "last", cfg) if resume else None
    set_trainable(model, cfg)  # (may untie embeddings: before loading a checkpoint's weights)
    loss_module = LossModule(model, cfg.objective, tokenizer)
    if stored is not None:
        model.load_state_dict(T5VAE.from_pretrained(out / "last").state_dict())
        loss_module.extra.load_state_dict(stored.get("extra") or {})
    params = [p for p in loss_module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    wrapper, optimizer = accelerator.prepare(loss_module, optimizer)
    train_ids = encode(tokenizer, train_sentences, cfg.max_length, cache_dir=cfg.cache_dir).ids
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    generator = torch.Generator(device="cpu").manual_seed(
        cfg.seed + 1000 * accelerator.process_index
    )
    loop = _Loop(cfg, accelerator, wrapper, optimizer, params,
                 cfg.kl_weight_schedule(total_steps, steps_per_epoch), generator, train_ids, out,
                 tokenizer)  # fmt: skip
    state = _restore(loop, stored) if stored is not None else TrainState()

    t0 = time.time()
    while not _done(state, cfg):
        epoch_t0 = time.time()
        sums = _train_epoch(loop, state)
        _end_of_epoch(loop, state, sums, tokenizer, valid_sentences, time.time() - epoch_t0)
    accelerator.wait_for_everyone()
    if cfg.log_with != "none":
        accelerator.end_training()
    return TrainResult(state.history, out / "best", out / "last", state.stopped_early,
                       time.time() - t0)  # fmt: skip


def flat_params(params: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1, "c": [1, 2]}} -> {"a/b": 1, "a/c": "[1, 2]"} (what trackers store)."""
    out = {}
    for k, v in params.items():
        if isinstance(v, dict):
            out.update(flat_params(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, bool | int | float | str) else str(v)
    return out


def _accelerator(cfg: TrainConfig, run_params: dict | None):
    """accelerate's Accelerator for cfg (precision, accumulation, tracker with the run's parameters)."""
    from accelerate import Accelerator

    tracking = cfg.log_with != "none"
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
        log_with=cfg.log_with if tracking else None, project_dir=cfg.tracking_dir,
    )  # fmt: skip
    _refuse_unseen_launch(accelerator)
    if tracking:  # the run's parameters, flat (trackers take scalars and strings)
        accelerator.init_trackers(
            cfg.run_name, config=flat_params({**(run_params or {}), "train": asdict(cfg)})
        )
    return accelerator


def _refuse_unseen_launch(accelerator) -> None:
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:  # each process would train alone, same files
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but accelerate runs "
            f"{accelerator.num_processes}: on a machine without GPUs set ACCELERATE_USE_CPU=1 "
            "(`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N ...`)"
        )


def _read_checkpoint(last_dir: Path, cfg: TrainConfig) -> dict | None:
    """The stored training state of `last_dir` (None if there is none), checked against cfg."""
    if not (last_dir / TRAIN_STATE).is_file():
        return None
    stored = torch.load(last_dir / TRAIN_STATE, map_location="cpu", weights_only=False)
    differ = config_differences(stored["config"], cfg)
    if differ:
        raise ValueError(
            f"{last_dir} was written with a different training config ({', '.join(differ)}); "
            "delete it or use another output directory"
        )
    return stored


def _restore(loop: _Loop, stored: dict) -> TrainState:
    """Optimizer, position, history and this process's random streams from a checkpoint."""
    loop.optimizer.load_state_dict(stored["optimizer"])
    known = {f.name for f in fields(TrainState)}
    state = TrainState(**{k: v for k, v in stored.items() if k in known})
    rngs, world = stored["rng_per_process"], loop.accelerator.num_processes
    if len(rngs) != world and not state.finished:
        raise ValueError(
            f"{loop.out / 'last'} was saved by {len(rngs)} processes, this run has {world}: "
            f"resume with `accelerate launch --num_processes {len(rngs)}` (each process's random "
            "streams are in the checkpoint), or delete it to start again"
        )
    rng = rngs[loop.accelerator.process_index % len(rngs)]  # (a finished run draws nothing more)
    torch.set_rng_state(rng["torch"])
    loop.generator.set_state(rng["generator"])
    random.setstate(rng["python"])
    if torch.cuda.is_available() and rng.get("cuda") is not None:
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state


def _done(state: TrainState, cfg: TrainConfig) -> bool:
    return (state.finished or state.stopped_early or state.epoch >= cfg.epochs
            or (cfg.max_steps is not None and state.step >= cfg.max_steps))  # fmt: skip


def _train_epoch(loop: _Loop, state: TrainState) -> dict[str, float]:
    """Train from the state's position to the end of the epoch; returns the terms' running sums."""
    cfg, acc = loop.cfg, loop.accelerator
    rank, world = acc.process_index, acc.num_processes
    loop.wrapper.train()
    lengths = [len(x) for x in loop.train_ids]
    batches = batch_indices(lengths, cfg.batch_size, shuffle=True, seed=cfg.seed + state.epoch,
                            bucket=cfg.bucket)  # fmt: skip
    if world > 1:  # every process needs at least one sentence of each global batch
        batches = [b for b in batches if len(b) >= world]
    loader = torch.utils.data.DataLoader(
        CollatedBatches(loop.train_ids, [b[rank::world] for b in batches[state.batch_in_epoch:]],
                        loop.model.pad_id),
        batch_size=None, num_workers=cfg.num_workers, pin_memory=acc.device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed + state.epoch),  # not the global RNG
    )  # fmt: skip
    resuming = state.epoch_sums and state.batch_in_epoch
    sums = dict(state.epoch_sums) if resuming else {"n": 0}  # mid-epoch: keep the running sums
    bar = progress_bar(None, cfg.progress and acc.is_local_main_process, total=len(batches),
                       initial=state.batch_in_epoch, leave=False,
                       desc=f"{cfg.phase} epoch {state.epoch + 1}/{cfg.epochs}")  # fmt: skip
    for b, cpu_batch in enumerate(loader, start=state.batch_in_epoch):
        beta = loop.schedule(state.step)
        values = _train_step(loop, state, cpu_batch, beta, b)
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        sums["n"] += 1
        bar.update(1)
        bar.set_postfix({k: f"{sums[k] / sums['n']:.2f}" for k in values} | {"beta": f"{beta:.3f}"})
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and acc.sync_gradients:
            state.batch_in_epoch, state.epoch_sums = b + 1, sums
            _save_last(loop, state)
        if cfg.max_steps is not None and state.step >= cfg.max_steps:
            break
    bar.close()
    return sums


def _train_step(loop: _Loop, state: TrainState, cpu_batch, beta: float, b: int) -> dict[str, float]:
    """One forward/backward (and optimiser step when gradients sync); the terms as floats."""
    acc = loop.accelerator
    batch = {k: v.to(acc.device, non_blocking=True) for k, v in cpu_batch.items()}
    with acc.accumulate(loop.wrapper), acc.autocast():
        terms = loop.wrapper(batch, beta, loop.generator)
        names = list(terms)
        # one device-to-host transfer per step: the logged values and the NaN check
        values = dict(zip(names, torch.stack([terms[k].detach().float() for k in names]).tolist(),
                          strict=True))  # fmt: skip
        if not math.isfinite(values["loss"]):
            bad = next((k for k in names if k != "loss" and not math.isfinite(values[k])), "loss")
            raise TrainingDiverged(
                f"{loop.cfg.phase}: loss is {values['loss']} at step {state.step} (epoch "
                f"{state.epoch + 1}, batch {b}); non-finite term: {bad}. Last good checkpoint: "
                f"{loop.out / 'last'}"
            )
        acc.backward(terms["loss"])
        if acc.sync_gradients and loop.cfg.grad_clip:
            acc.clip_grad_norm_(loop.params, loop.cfg.grad_clip)
        loop.optimizer.step()
        loop.optimizer.zero_grad(set_to_none=True)
    if acc.sync_gradients:
        state.step += 1
        acc.log(
            {f"train/{k}": v for k, v in values.items()} | {"train/kl_weight": beta},
            step=state.step,
        )
    return values


def _end_of_epoch(loop: _Loop, state: TrainState, sums: dict, tokenizer, valid_sentences,
                  wall_time_s: float) -> None:  # fmt: skip
    """Validation, history, best/ selection, early stopping, then `last/` (the commit point)."""
    cfg, acc = loop.cfg, loop.accelerator
    state.batch_in_epoch, state.epoch_sums = 0, None
    state.epoch += 1
    row = {
        "epoch": state.epoch,
        "step": state.step,
        "kl_weight": loop.schedule(max(state.step - 1, 0)),
    }
    row.update({f"train_{k}": v / max(sums["n"], 1) for k, v in sums.items() if k != "n"})
    if valid_sentences:
        metrics = evaluate(
            loop.model, tokenizer, valid_sentences, iw_samples=cfg.valid_iw_samples,
            batch_size=cfg.batch_size, seed=cfg.seed, max_length=cfg.max_length, progress=False,
            cache_dir=cfg.cache_dir,
        )  # fmt: skip
        row.update({f"valid_{k}": v for k, v in metrics.items()})
    row["wall_time_s"] = wall_time_s
    state.history.append(row)
    acc.log({k.replace("_", "/", 1): v for k, v in row.items() if k.startswith("valid_")
             and isinstance(v, int | float)} | {"epoch": state.epoch}, step=state.step)  # fmt: skip
    if cfg.select_by == "last":
        metric = -state.step
    else:
        metric = row.get(f"valid_{cfg.select_by}", row["train_loss"])
    if metric < state.best:  # best/ follows every improvement; patience only a large enough one
        enough = not math.isfinite(state.best) or metric < state.best - cfg.min_improvement * abs(
            state.best
        )
        state.best, state.bad_epochs = metric, 0 if enough else state.bad_epochs + 1
        if acc.is_main_process:
            loop.model.save_pretrained(loop.out / "best", tokenizer=loop.tokenizer)
    else:
        state.bad_epochs += 1
    if state.step - 1 < loop.schedule.settled_from():  # beta still rising: patience waits, and
        state.bad_epochs = 0  # with select_after_warmup the next epoch is best/ whatever it gives
        state.best = math.inf if cfg.select_after_warmup else state.best
    state.stopped_early = cfg.patience is not None and state.bad_epochs >= cfg.patience
    state.finished = _done(state, cfg)
    if acc.is_main_process:
        atomic_write_json(loop.out / "history.json", state.history, default=str)
    _save_last(loop, state)


def _save_last(loop: _Loop, state: TrainState) -> None:
    """`last/`: weights + optimizer + state + every process's random streams, in one atomic step."""
    from accelerate.utils import gather_object

    acc = loop.accelerator
    rng = {  # this process's own streams (sampling z, denoising, dropout)
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generator": loop.generator.get_state(),
        "python": random.getstate(),
    }
    rngs = gather_object([rng]) if acc.num_processes > 1 else [rng]
    if not acc.is_main_process:
        return
    extra = acc.unwrap_model(loop.wrapper).extra
    loop.model.save_pretrained(loop.out / "last", tokenizer=loop.tokenizer, extra={TRAIN_STATE: {
        **asdict(state), "config": asdict(loop.cfg), "optimizer": loop.optimizer.state_dict(),
        "extra": extra.state_dict(), "rng_per_process": rngs,
    }})  # fmt: skip
