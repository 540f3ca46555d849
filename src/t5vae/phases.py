"""The two phases: what each one trains (`set_trainable`) and the settings of a run (`TrainConfig`).

phase1  encoder + latent heads learn to autoencode (KL weight 0); with freeze_decoder the decoder,
        lm_head and the latent-to-memory projection stay as they are.
phase2  everything trains on the run's objective (objectives.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from t5vae.model import EMBEDDING_POLICIES, T5VAE
from t5vae.objectives import PHASE1_SCHEDULE, KLSchedule, KLScheduleConfig, Objective

PHASES = ("phase1", "phase2")
MEMORY_PROJECTION = ("frozen", "trainable")  # phase 1 with a frozen decoder
# config fields that cannot change a run's numbers (resuming with other values is fine)
NOT_RESULTS = {"progress", "checkpoint_every", "num_workers", "cache_dir", "log_with",
               "tracking_dir", "run_name"}  # fmt: skip
TRACKERS = ("none", "tensorboard", "trackio", "wandb", "mlflow")  # accelerate's trackers


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
    objective: Objective = field(default_factory=Objective)  # the collapse remedies
    # phase 1
    freeze_decoder: bool = True
    phase1_embeddings: str = "frozen"  # what happens to T5's tied embeddings when freezing
    memory_projection: str = "frozen"  # ... and to the latent-to-memory projection
    # validation, selection, early stopping
    valid_iw_samples: int = 1
    select_by: str = "neg_elbo"  # validation metric to minimise for `best/`, or "last"
    patience: int | None = None  # epochs without improvement before stopping; None = never
    min_improvement: float = 0.0  # relative improvement that resets the patience count
    # best/ is chosen among epochs that end after the KL warm-up (KLSchedule.settled_from); during
    # it best/ is the latest epoch. False: among all epochs (before this option existed)
    select_after_warmup: bool = True
    checkpoint_every: int | None = None  # also save `last/` every N steps (mid-epoch resume)
    progress: bool = True
    num_workers: int = 0  # DataLoader workers collating batches (results do not depend on it)
    cache_dir: str | None = None  # tokenised corpora as Arrow files (see data.encode)
    log_with: str = "none"  # an accelerate tracker: every step's terms, every epoch's metrics
    tracking_dir: str | None = None  # where the tracker writes (tensorboard: event files)
    run_name: str = "t5vae"  # the tracker's project / run name

    def __post_init__(self):
        if isinstance(self.objective, dict):  # (a checkpoint's stored config)
            self.objective = Objective(**self.objective)
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if self.phase1_embeddings not in EMBEDDING_POLICIES:
            raise ValueError(
                f"phase1_embeddings must be one of {EMBEDDING_POLICIES}, got {self.phase1_embeddings!r}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("epochs, batch_size and grad_accum must be >= 1")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.log_with not in TRACKERS:
            raise ValueError(f"log_with must be one of {TRACKERS}, got {self.log_with!r}")

    def kl_weight_schedule(self, total_steps: int, steps_per_epoch: int) -> KLSchedule:
        """beta(step): 0 in phase 1; the objective's schedule (default: linear) in phase 2."""
        shape = PHASE1_SCHEDULE if self.phase == "phase1" else self.objective.kl_schedule
        return KLSchedule.of(shape or KLScheduleConfig(), total_steps, steps_per_epoch)


def config_differences(stored: dict, cfg: TrainConfig) -> list[str]:
    """Fields whose stored value differs from cfg's (dotted names). A field the stored config lacks
    (added to the code after it was written) counts as its default: old checkpoints still resume."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    now, before = flat(asdict(cfg)), flat(asdict(TrainConfig(phase=cfg.phase)))
    before.update(flat(stored))
    return sorted(k for k in now if k.split(".")[0] not in NOT_RESULTS and before.get(k) != now[k])


def set_trainable(model: T5VAE, cfg: TrainConfig) -> None:
    """Choose what trains: everything, except in phase 1 with freeze_decoder.

    Phase 1 with freeze_decoder freezes the decoder, `lm_head` and, with memory_projection
    "frozen" (the released code), the latent-to-memory projection.
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
    frozen = [model.t5.decoder, model.t5.lm_head]
    if cfg.memory_projection == "frozen":
        frozen.append(model.latent_to_memory)
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    if cfg.phase1_embeddings == "trainable":
        model.t5.shared.weight.requires_grad_(True)
    elif cfg.phase1_embeddings == "frozen":
        model.t5.shared.weight.requires_grad_(False)
