"""The settings of a training run, declared once.

`PhaseParams` are one phase's settings as a profile states them (params/profiles/*.yaml,
`phase1:` / `phase2:`; `Phase1Params` adds what a frozen decoder does with the memory projection);
`TrainConfig` is a phase's settings plus what the run adds (the phase, the objective, the
variant's decoder policy, where the run writes): the YAML layer builds the first, a run's
resolution (notebook.steps.train_config) extends it into the second field for field. Each value is
validated here, once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

from t5vae.model.objectives import PHASE1_SCHEDULE, KLSchedule, KLScheduleConfig, Objective
from t5vae.model.vae import EMBEDDING_POLICIES
from t5vae.utils.checks import check, check_choice
from t5vae.utils.identity import TRAINING_NOT_DECIDING

PHASES = ("phase1", "phase2")
MEMORY_PROJECTION = ("frozen", "trainable")  # phase 1 with a frozen decoder
TRACKERS = ("none", "tensorboard", "trackio", "wandb", "mlflow")  # accelerate's trackers
MIXED_PRECISION = ("no", "fp16", "bf16")  # accelerate's (bf16 on a CPU: torch.autocast)


def autocast(device_type: str, mixed_precision: str):
    """`torch.autocast` for one of MIXED_PRECISION ("no": disabled), where accelerate does not
    drive the loop (the base's pretraining, the cost plan)."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision)
    return torch.autocast(device_type, dtype=dtype, enabled=dtype is not None)


@dataclass
class PhaseParams:
    """One phase's training settings (a profile's `phase1:` / `phase2:` section)."""

    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps (smoke runs)
    batch_size: int = 64
    lr: float = 1e-4
    # early stopping: epochs without an improvement of min_improvement, counted once the KL
    # warm-up has ended (objectives.KLSchedule.settled_from)
    patience: int | None = None
    min_improvement: float = 0.0  # relative: an epoch improves if metric < best * (1 - this)
    # best/ among the epochs after the KL warm-up only (a model trained under a rising KL weight is
    # not a candidate); false: among all epochs, the behaviour before this option existed
    select_after_warmup: bool = True
    select_by: str = "neg_elbo"  # validation metric to minimise for `best/`, or "last"
    grad_accum: int = 1
    mixed_precision: str = "no"
    # the KL-weight schedule of a technique that names none (phase 2; phase 1 has no KL term)
    kl_schedule: KLScheduleConfig = field(default_factory=KLScheduleConfig)
    valid_iw_samples: int = 1
    num_workers: int = 0  # DataLoader worker processes building batches (0: in the main process)

    def __post_init__(self):
        if isinstance(self.kl_schedule, dict):  # (a checkpoint's or a run file's stored config)
            self.kl_schedule = KLScheduleConfig(**self.kl_schedule)
        check(self.epochs >= 1, "epochs", "must be >= 1")
        check(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1 or null")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.lr >= 0, "lr", "must be >= 0")
        check(self.patience is None or self.patience >= 1, "patience", "must be >= 1 or null")
        check(0 <= self.min_improvement < 1, "min_improvement", "must be in [0, 1)")
        check(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        check_choice(self.mixed_precision, MIXED_PRECISION, "mixed_precision")
        check(self.valid_iw_samples >= 1, "valid_iw_samples", "must be >= 1")
        check(self.num_workers >= 0, "num_workers", "must be >= 0")


@dataclass
class Phase1Params(PhaseParams):
    """Phase 1's settings: PhaseParams plus what the frozen-decoder variants do with the
    latent-to-memory projection ("frozen": with the decoder, as in the released code;
    "trainable": it learns with the encoder; see the README's phase-1 study)."""

    memory_projection: str = "frozen"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.memory_projection, MEMORY_PROJECTION, "memory_projection")


@dataclass
class TrainConfig(Phase1Params):
    """Everything a training run needs besides the model and the data: a phase's settings plus
    the run's phase, objective, decoder policy and output settings."""

    phase: str = "phase2"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    max_length: int = 128
    bucket: bool = True
    seed: int = 0
    objective: Objective = field(default_factory=Objective)  # the collapse remedies
    # phase 1
    freeze_decoder: bool = True
    phase1_embeddings: str = "frozen"  # what happens to T5's tied embeddings when freezing
    checkpoint_every: int | None = None  # also save `last/` every N steps (mid-epoch resume)
    progress: bool = True
    cache_dir: str | None = None  # tokenised corpora as Arrow files (see data.corpora.encode)
    log_with: str = "none"  # an accelerate tracker: every step's terms, every epoch's metrics
    tracking_dir: str | None = None  # where the tracker writes (tensorboard: event files)
    run_name: str = "t5vae"  # the tracker's project / run name

    def __post_init__(self):
        if isinstance(self.objective, dict):  # (a checkpoint's stored config)
            self.objective = Objective(**self.objective)
        super().__post_init__()
        check_choice(self.phase, PHASES, "phase")
        check_choice(self.phase1_embeddings, EMBEDDING_POLICIES, "phase1_embeddings")
        check_choice(self.log_with, TRACKERS, "log_with")

    @classmethod
    def of(cls, settings: PhaseParams, **run) -> TrainConfig:
        """A phase's settings (its fields, as they are) extended by the run's."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(settings)}, **run)

    def kl_weight_schedule(self, total_steps: int, steps_per_epoch: int) -> KLSchedule:
        """beta(step): 0 in phase 1; in phase 2 the objective's schedule, else the phase's."""
        if self.phase == "phase1":
            shape = PHASE1_SCHEDULE
        else:
            shape = self.objective.kl_schedule or self.kl_schedule
        return KLSchedule.of(shape, total_steps, steps_per_epoch)


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
    return sorted(
        k for k in now if k.split(".")[0] not in TRAINING_NOT_DECIDING and before.get(k) != now[k]
    )
