"""Two-phase finetuning of a T5VAE (Park & Lee, 2021), one plain loop run through `accelerate`.

phase1  encoder + latent heads learn to autoencode, KL weight 0, decoder frozen (by default):
        rec only. The decoder stays the pretrained language model.
phase2  everything trains on  rec + beta(step) * sum_d max(lambda, KL_d)  with token-deletion
        denoising of the encoder input, from a phase-1 checkpoint (or from the base model:
        the "vanilla VAE" baseline).

Each epoch ends with a validation pass (`evaluate`) whose metrics go into the history, an
atomically written `last/` checkpoint (model + optimizer + every process's RNG streams + data
position + history: resumable, also mid-epoch with `checkpoint_every`) and a `best/` model when
the selection metric improved; early stopping watches the same metric. With N processes
(`accelerate launch`) each takes its 1/N of every global batch and DDP averages the gradients.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from t5vae.data import batch_indices, collate, encode
from t5vae.metrics import evaluate
from t5vae.model import T5VAE
from t5vae.objectives import KLSchedule, delete_tokens, kl_per_dim, thresholded_kl
from t5vae.progress import bar as progress_bar

PHASES = ("phase1", "phase2")
EMBEDDING_POLICIES = ("frozen", "untied", "trainable")
TRAIN_STATE = "train_state.pt"
NOT_RESULTS = {
    "progress",
    "checkpoint_every",
    "num_workers",
    "cache_dir",
}  # config fields that cannot change a run's numbers


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the term."""


@dataclass
class TrainConfig:
    """Everything a training run needs besides the model and the data."""

    phase: str = "phase2"
    epochs: int = 10
    max_steps: int | None = None  # stop early after this many optimiser steps (smoke runs)
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 64
    grad_clip: float = 1.0
    grad_accum: int = 1
    mixed_precision: str = "no"  # "no", "fp16", "bf16" (accelerate)
    max_length: int = 128
    bucket: bool = True
    seed: int = 0
    # collapse remedies (phase 2; denoising also in phase 1 variants)
    kl_schedule: dict = field(default_factory=lambda: {"kind": "linear", "warmup_ratio": 0.5})
    kl_threshold: float | None = None
    denoise_prob: float = 0.0
    sample_z: bool = True  # False: z = mu (a plain autoencoder)
    # phase 1
    freeze_decoder: bool = True
    phase1_embeddings: str = "frozen"  # what happens to T5's tied embeddings when freezing
    # validation, selection, early stopping
    valid_iw_samples: int = 1
    select_by: str = "neg_elbo"  # validation metric to minimise for `best/`, or "last"
    patience: int | None = None  # epochs without improvement before stopping; None = never
    checkpoint_every: int | None = None  # also save `last/` every N steps (mid-epoch resume)
    progress: bool = True
    num_workers: int = 0  # DataLoader workers collating batches (results do not depend on it)
    cache_dir: str | None = None  # tokenised corpora as Arrow files (see data.encode)

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if self.phase1_embeddings not in EMBEDDING_POLICIES:
            raise ValueError(
                f"phase1_embeddings must be one of {EMBEDDING_POLICIES}, got {self.phase1_embeddings!r}"
            )
        if self.kl_threshold is not None and self.kl_threshold < 0:
            raise ValueError(f"kl_threshold must be >= 0, got {self.kl_threshold}")
        if not 0 <= self.denoise_prob < 1:
            raise ValueError(f"denoise_prob must be in [0, 1), got {self.denoise_prob}")
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("epochs, batch_size and grad_accum must be >= 1")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")

    def kl_weight_schedule(self, total_steps: int, steps_per_epoch: int) -> KLSchedule:
        if self.phase == "phase1":
            return KLSchedule("constant", total_steps, steps_per_epoch, max_weight=0.0)
        return KLSchedule(
            total_steps=total_steps, steps_per_epoch=steps_per_epoch, **self.kl_schedule
        )


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


def set_trainable(model: T5VAE, cfg: TrainConfig) -> None:
    """Choose what trains: everything, except in phase 1 with freeze_decoder.

    Phase 1 with freeze_decoder freezes the decoder, `lm_head` and the latent-to-memory projection.
    T5 ties the encoder's input embeddings to the decoder's (and to lm_head), so the policy is
    explicit (`phase1_embeddings`):
      frozen     the shared embeddings stay frozen: the encoder's input embeddings do not train
                 (what the released code did, silently);
      untied     the encoder gets its own trainable copy; the decoder stays exactly pretrained;
      trainable  the shared matrix trains: the encoder learns, and so do the decoder's input
                 embeddings and lm_head (the decoder is then not strictly frozen).
    """
    for name, p in model.named_parameters():
        # with memory injection the decoder's cross-attention sub-layers never run: keep them out
        # of the optimiser (and of DDP's gradient reduction)
        cross_attention = name.startswith("t5.decoder.block.") and ".layer.1." in name
        p.requires_grad_(not (cross_attention and model.config.injection == "memory"))
    if cfg.phase != "phase1" or not cfg.freeze_decoder:
        return
    if cfg.phase1_embeddings == "untied" and not model.config.untied_encoder_embeddings:
        model.untie_encoder_embeddings()
    for module in (model.t5.decoder, model.t5.lm_head, model.latent_to_memory):
        for p in module.parameters():
            p.requires_grad_(False)
    if cfg.phase1_embeddings == "trainable":
        model.t5.shared.weight.requires_grad_(True)
    elif cfg.phase1_embeddings == "frozen":
        model.t5.shared.weight.requires_grad_(False)


def vae_loss(
    model: T5VAE,
    batch: dict[str, torch.Tensor],
    kl_weight: float,
    kl_threshold: float | None = None,
    denoise_prob: float = 0.0,
    sample_z: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """One training pass: mean over sentences of rec + kl_weight * thresholded KL.

    Denoising deletes encoder-input tokens only; the reconstruction target is the clean sentence.
    Returns the loss and its detached terms (rec, plain kl) for logging.
    """
    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    if denoise_prob > 0:
        input_ids, mask = delete_tokens(
            input_ids, mask, denoise_prob, generator=generator, pad_id=model.pad_id
        )
    out = model(input_ids, mask, batch["labels"], sample=sample_z, generator=generator)
    kl_dims = kl_per_dim(out["mu"], out["logvar"])
    rec = out["rec"].mean()
    kl_term = thresholded_kl(kl_dims, kl_threshold).mean()
    loss = rec + kl_weight * kl_term if kl_weight else rec
    return {
        "loss": loss,
        "rec": rec.detach(),
        "kl": kl_dims.sum(-1).mean().detach(),
        "kl_term": kl_term.detach(),
    }


class LossModule(torch.nn.Module):
    """forward(batch, ...) = vae_loss(model, batch, ...): the unit `accelerate` wraps."""

    def __init__(self, model: T5VAE):
        super().__init__()
        self.model = model

    def forward(
        self, batch, kl_weight, kl_threshold=None, denoise_prob=0.0, sample_z=True, generator=None
    ):
        return vae_loss(
            self.model, batch, kl_weight, kl_threshold, denoise_prob, sample_z, generator
        )


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


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
class TrainResult:
    history: list[dict]
    best_dir: Path
    last_dir: Path
    stopped_early: bool
    wall_time_s: float


def train(
    model: T5VAE,
    tokenizer,
    train_sentences: list[str],
    valid_sentences: list[str],
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    resume: bool = True,
) -> TrainResult:
    """Train `model` in place with `cfg`; checkpoints go to out_dir/{last,best}/.

    With resume=True and a `last/` checkpoint present, training continues from it (same batch
    order, optimizer and RNG state), so an interrupted run ends as an uninterrupted one would.
    """
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    out = Path(out_dir)
    last_dir, best_dir = out / "last", out / "best"
    out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != world:  # each process would train alone on every batch, writing the same files
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but accelerate runs {world}: on a "
            "machine without GPUs set ACCELERATE_USE_CPU=1 (`ACCELERATE_USE_CPU=1 accelerate "
            "launch --multi_gpu --num_processes N ...`)"
        )

    state = None
    if resume and (last_dir / TRAIN_STATE).is_file():
        state = torch.load(last_dir / TRAIN_STATE, map_location="cpu", weights_only=False)
        differ = sorted(k for k in set(state["config"]) | set(asdict(cfg)) if k not in NOT_RESULTS
                        and state["config"].get(k) != asdict(cfg).get(k))  # fmt: skip
        if differ:
            raise ValueError(
                f"{last_dir} was written with a different training config ({', '.join(differ)}); "
                "delete it or use another output directory"
            )
    set_trainable(model, cfg)  # (may untie embeddings: before loading a checkpoint's weights)
    if state is not None:
        model.load_state_dict(T5VAE.from_pretrained(last_dir).state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    # the loss is computed inside a module's forward so that DDP all-reduces its gradients
    wrapper, optimizer = accelerator.prepare(LossModule(model), optimizer)
    raw_model: T5VAE = accelerator.unwrap_model(wrapper).model
    device = accelerator.device

    train_enc = encode(tokenizer, train_sentences, cfg.max_length, cache_dir=cfg.cache_dir)
    lengths = [len(x) for x in train_enc.ids]
    steps_per_epoch = math.ceil(len(lengths) / cfg.batch_size / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    schedule = cfg.kl_weight_schedule(total_steps, steps_per_epoch)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed + 1000 * rank)

    history: list[dict] = []
    epoch, batch_in_epoch, step, best, bad_epochs = 0, 0, 0, math.inf, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        epoch, batch_in_epoch, step = state["epoch"], state["batch_in_epoch"], state["step"]
        best, bad_epochs, history = state["best"], state["bad_epochs"], state["history"]
        rngs = state["rng_per_process"]
        if len(rngs) != world and not state.get("finished"):
            raise ValueError(
                f"{last_dir} was saved by {len(rngs)} processes, this run has {world}: resume "
                f"with `accelerate launch --num_processes {len(rngs)}` (each process's random "
                "streams are in the checkpoint), or delete it to start again"
            )
        rng = rngs[rank % len(rngs)]  # (a finished run draws nothing more)
        torch.set_rng_state(rng["torch"])
        generator.set_state(rng["generator"])
        random.setstate(rng["python"])
        if torch.cuda.is_available() and rng.get("cuda") is not None:
            torch.cuda.set_rng_state_all(rng["cuda"])

    def save_last(
        epoch_: int, batch_: int, finished: bool = False, stopped_early: bool = False
    ) -> None:
        rng = {  # every process's own streams (sampling z, denoising, dropout)
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "generator": generator.get_state(),
            "python": random.getstate(),
        }
        rngs = gather_object([rng]) if world > 1 else [rng]
        if not accelerator.is_main_process:
            return
        raw_model.save_pretrained(last_dir, extra={TRAIN_STATE: {
                "config": asdict(cfg),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch_, "batch_in_epoch": batch_, "step": step,
                "best": best, "bad_epochs": bad_epochs, "history": history,
                "rng_per_process": rngs,
                "epoch_sums": sums if batch_ else None,
                "finished": finished,
                "stopped_early": stopped_early,
            }})  # fmt: skip

    t0 = time.time()
    stopped_early = bool(state and state.get("stopped_early"))
    done = bool(state and state.get("finished")) or epoch >= cfg.epochs
    done = done or (cfg.max_steps is not None and step >= cfg.max_steps)
    while not done:
        epoch_t0 = time.time()
        wrapper.train()
        batches = batch_indices(
            lengths, cfg.batch_size, shuffle=True, seed=cfg.seed + epoch, bucket=cfg.bucket
        )
        if world > 1:  # every process needs at least one sentence of each global batch
            batches = [b for b in batches if len(b) >= world]
        loader = torch.utils.data.DataLoader(
            CollatedBatches(train_enc.ids, [b[rank::world] for b in batches[batch_in_epoch:]],
                            raw_model.pad_id),
            batch_size=None, num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed + epoch),  # not the global RNG
        )  # fmt: skip
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0, "n": 0}
        if state is not None and state.get("epoch_sums") and batch_in_epoch:
            sums = dict(state["epoch_sums"])  # resuming mid-epoch: keep the epoch's running sums
        bar = progress_bar(
            None, cfg.progress and accelerator.is_local_main_process, total=len(batches), initial=batch_in_epoch,
            desc=f"{cfg.phase} epoch {epoch + 1}/{cfg.epochs}", leave=False,
        )  # fmt: skip
        for b, cpu_batch in enumerate(loader, start=batch_in_epoch):
            batch = {k: v.to(device, non_blocking=True) for k, v in cpu_batch.items()}
            beta = schedule(step)
            with accelerator.accumulate(wrapper), accelerator.autocast():
                terms = wrapper(
                    batch, beta, cfg.kl_threshold, cfg.denoise_prob, cfg.sample_z, generator
                )
                loss = terms["loss"]
                # one device-to-host transfer per step: the logged values and the NaN check
                loss_v, rec_v, kl_v = (
                    torch.stack([loss.detach(), terms["rec"], terms["kl"]]).float().tolist()
                )
                if not math.isfinite(loss_v):
                    bad = "rec" if not math.isfinite(rec_v) else "kl"
                    raise TrainingDiverged(
                        f"{cfg.phase}: loss is {loss_v} at step {step} (epoch {epoch + 1}, "
                        f"batch {b}); non-finite term: {bad}. Last good checkpoint: {last_dir}"
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.grad_clip:
                    accelerator.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if accelerator.sync_gradients:
                step += 1
            sums["loss"], sums["rec"], sums["kl"] = (
                sums["loss"] + loss_v,
                sums["rec"] + rec_v,
                sums["kl"] + kl_v,
            )
            sums["n"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.2f}", rec=f"{sums['rec'] / sums['n']:.2f}",
                            kl=f"{sums['kl'] / sums['n']:.2f}", beta=f"{beta:.3f}")  # fmt: skip
            if (
                cfg.checkpoint_every
                and step % cfg.checkpoint_every == 0
                and accelerator.sync_gradients
            ):
                save_last(epoch, b + 1)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        bar.close()
        batch_in_epoch = 0
        epoch += 1
        # validation on the main process, then selection / early stopping
        row = {"epoch": epoch, "step": step, "kl_weight": schedule(max(step - 1, 0))}
        row.update({f"train_{k}": sums[k] / max(sums["n"], 1) for k in ("loss", "rec", "kl")})
        if valid_sentences:
            metrics = evaluate(
                raw_model, tokenizer, valid_sentences, iw_samples=cfg.valid_iw_samples,
                batch_size=cfg.batch_size, seed=cfg.seed, max_length=cfg.max_length, progress=False,
                cache_dir=cfg.cache_dir,
            )  # fmt: skip
            row.update({f"valid_{k}": v for k, v in metrics.items()})
        row["wall_time_s"] = time.time() - epoch_t0
        history.append(row)
        metric = (
            row.get(f"valid_{cfg.select_by}", row["train_loss"])
            if cfg.select_by != "last"
            else -step
        )
        improved = metric < best
        if improved:
            best, bad_epochs = metric, 0
            if accelerator.is_main_process:
                raw_model.save_pretrained(best_dir)
        else:
            bad_epochs += 1
        stopped_early = cfg.patience is not None and bad_epochs >= cfg.patience
        done = (
            stopped_early
            or epoch >= cfg.epochs
            or (cfg.max_steps is not None and step >= cfg.max_steps)
        )
        if accelerator.is_main_process:
            _atomic_json(out / "history.json", history)
        save_last(
            epoch, 0, finished=done, stopped_early=stopped_early
        )  # written last: the commit point
    accelerator.wait_for_everyone()
    return TrainResult(history, best_dir, last_dir, stopped_early, time.time() - t0)
