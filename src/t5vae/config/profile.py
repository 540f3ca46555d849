"""A profile and the runs of the grid as dataclasses: what params/ files are built into.

params/profiles/<profile>.yaml   Profile: model, tokenizer, base pretraining, data sizes, the two
                                 phases' training settings, evaluation, tracking, launcher
params/phase1/<variant>.yaml     Phase1Variant: pooling, decoder and embedding policy, objective
params/phase2/<technique>.yaml   Phase2Technique: the objective and the phase-1 variant it starts from
params/claims.yaml               Claim: a comparison the grid tests

Settings that belong to a lower layer are declared there and used here as they are: a phase's
training settings (training.config.PhaseParams), a tokenizer's (data.tokenizer.TokenizerParams),
a dataset (data.dataset.DatasetParams), an objective (model.objectives.Objective), the released
code's switches (model.released.ReleasedSwitches). Each dataclass checks its values once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from t5vae.data.tokenizer import TokenizerParams
from t5vae.model.objectives import Objective
from t5vae.model.released import ReleasedSwitches
from t5vae.model.vae import EMBEDDING_POLICIES, POOLINGS, T5VAEConfig
from t5vae.training.config import MIXED_PRECISION, TRACKERS, Phase1Params, PhaseParams
from t5vae.utils.checks import check, check_choice


@dataclass
class ModelParams:
    base: str = "t5-small"  # Hub name, local directory, or "builtin" (pretrained here, offline)
    pretrained: bool = True  # False: random init from the base's config
    latent_dim: int = T5VAEConfig.latent_dim
    injection: str = T5VAEConfig.injection
    shared_kv: bool = T5VAEConfig.shared_kv  # memory: key = value (the released code; Optimus)
    t5_overrides: dict = field(default_factory=dict)  # T5Config fields for the builtin base

    def __post_init__(self):  # the model's own rules (T5VAEConfig), checked now
        T5VAEConfig(latent_dim=self.latent_dim, injection=self.injection)


@dataclass
class PretrainParams:
    """T5 span-corruption pretraining of the builtin base (Raffel et al. 2020)."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    noise_density: float = 0.15
    mean_span_length: float = 3.0
    seed: int = 0  # one base model per profile and dataset, shared by every finetuning seed
    # the training sentences the tokenizer and the base learn from: "data" (the finetuning set,
    # data.train_size), null (the whole train split) or the first N
    train_size: int | str | None = "data"
    # "bf16": the steps under torch.autocast (on a CPU with AVX512-BF16 about 1.6x faster at
    # d_model 256; benchmarks/bench_precision.py); the loss and the optimiser stay in float32
    mixed_precision: str = "no"

    def __post_init__(self):
        check(self.steps >= 0, "steps", "must be >= 0")
        check_choice(self.mixed_precision, MIXED_PRECISION, "mixed_precision")
        ok = self.train_size in ("data", None) or (
            isinstance(self.train_size, int) and self.train_size >= 1
        )
        check(ok, "train_size", f"must be 'data', null or >= 1, got {self.train_size!r}")
        check(0 < self.noise_density < 1, "noise_density", "must be in (0, 1)")
        check(self.lr > 0, "lr", "must be > 0")


@dataclass
class DataParams:
    train_size: int | None = None  # first N sentences of each split (None: all)
    valid_size: int | None = None
    test_size: int | None = None

    def __post_init__(self):
        for k in ("train_size", "valid_size", "test_size"):
            v = getattr(self, k)
            check(v is None or v >= 1, k, f"must be >= 1 or null, got {v}")


@dataclass
class EvalParams:
    iw_samples: int = 500
    batch_size: int = 64
    n_reconstructions: int = 5  # shown in the notebook
    n_prior_samples: int = 100  # for distinct-n of prior samples

    def __post_init__(self):
        check(self.iw_samples >= 1, "iw_samples", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")


@dataclass
class TrackingParams:
    """Experiment tracking through accelerate's trackers (per step and per epoch, plus the run's
    parameters); tensorboard writes event files under the run's folder (tracking/)."""

    log_with: str = "none"  # none, tensorboard, trackio, wandb, mlflow

    def __post_init__(self):
        check_choice(self.log_with, TRACKERS, "log_with")


LAUNCHERS = ("local", "slurm", "submitit-local")


@dataclass
class LauncherParams:
    """Where the grid's runs execute (launchers.py): local threads, Slurm jobs through submitit
    (resources below, per run), or submitit's local executor (jobs as local processes)."""

    name: str = "local"
    partition: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: int = 32
    timeout_min: int = 24 * 60
    account: str | None = None

    def __post_init__(self):
        check_choice(self.name, LAUNCHERS, "name")
        check(self.gpus_per_node >= 0 and self.cpus_per_task >= 1 and self.mem_gb >= 1
               and self.timeout_min >= 1, "launcher", "resources must be positive")  # fmt: skip


@dataclass
class Profile:
    name: str = ""
    description: str = ""
    # Finetuning seeds of the grid (`--seeds` overrides): each seed trains and evaluates every run
    # again (new latent heads, batch order, z samples, dropout, denoising, evaluation samples); the
    # base model is the same for all, as pretrained t5-small is the same for every paper run.
    seeds: list = field(default_factory=lambda: [0])
    # torch's intra-op threads on CPU for every stage (null: torch's default). Fixed so that the
    # numbers do not depend on --jobs or on the machine's core count: another thread count sums
    # floats in another order, and training amplifies that (README, "Same machine, same numbers").
    cpu_threads: int | None = None
    model: ModelParams = field(default_factory=ModelParams)
    tokenizer: TokenizerParams = field(default_factory=TokenizerParams)
    pretrain: PretrainParams = field(default_factory=PretrainParams)
    data: DataParams = field(default_factory=DataParams)
    phase1: Phase1Params = field(default_factory=Phase1Params)
    phase2: PhaseParams = field(default_factory=PhaseParams)
    eval: EvalParams = field(default_factory=EvalParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)
    released: ReleasedSwitches = field(default_factory=ReleasedSwitches)  # defects, all off
    launcher: LauncherParams = field(default_factory=LauncherParams)
    datasets: list = field(default_factory=lambda: ["ptb"])  # default datasets of the grid
    techniques: list | None = None  # the grid's phase-2 techniques (null: all of params/phase2)
    phase1_variants: list | None = (
        None  # its phase-1 variants (null: all; those the techniques need are added)
    )
    # The decoder setting of the phase-1 runs that phase-2 techniques start from. null: the
    # variant each technique names (params/phase2: decoder frozen, the paper's method);
    # "unfrozen": the same variant with the decoder trained in phase 1, for a replica whose frozen
    # phase 1 cannot reconstruct (README, phase-1 study). The tables' "from" column shows it.
    phase2_from_decoder: str | None = None
    overrides: list = field(default_factory=list)  # the --set values this profile was loaded with

    def __post_init__(self):
        check_seeds(self.seeds, "seeds")
        check_choice(self.phase2_from_decoder, (None, "frozen", "unfrozen"), "phase2_from_decoder")
        check(self.cpu_threads is None or self.cpu_threads >= 1, "cpu_threads",
               f"must be >= 1 or null, got {self.cpu_threads}")  # fmt: skip


def check_seeds(seeds, key: str = "seeds") -> list[int]:
    """A non-empty list of distinct integers >= 0 (the finetuning seeds of a grid)."""
    ok = (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    )
    check(bool(ok), key, f"must be a non-empty list of integers >= 0, got {seeds!r}")
    check(len(set(seeds)) == len(seeds), key, f"must not repeat a seed, got {seeds!r}")
    return seeds


@dataclass
class Phase1Variant:
    name: str = ""
    pooling: str = T5VAEConfig.pooling
    freeze_decoder: bool = True
    phase1_embeddings: str = "frozen"
    objective: Objective = field(default_factory=Objective)  # phase 1: denoise_prob only

    def __post_init__(self):
        check_choice(self.pooling, POOLINGS, "pooling")
        check_choice(self.phase1_embeddings, EMBEDDING_POLICIES, "phase1_embeddings")
        o = self.objective
        check(o.kl_threshold is None and o.kl_schedule is None, "objective",
               "phase 1 has no KL term: set only denoise_prob (and sample_z) here")  # fmt: skip


@dataclass
class Phase2Technique:
    name: str = ""
    label: str = ""  # row name in the tables
    phase1: str | None = "max_pnone_frozen"  # phase-1 variant to start from; None = vanilla VAE
    pooling: str = T5VAEConfig.pooling  # vanilla VAE only (otherwise the phase-1 variant's)
    objective: Objective = field(default_factory=Objective)  # kl_schedule null: the profile's

    def __post_init__(self):
        check_choice(self.pooling, POOLINGS, "pooling")


@dataclass
class Claim:
    """One of the paper's claims tested on a grid (params/claims.yaml; computed by claims.py)."""

    claim: str = ""
    run: str = ""  # <stage>/<name>
    metric: str = ""
    versus: str | None = None  # <stage>/<name> to compare with (Welch's t-test), or
    below: float | None = None  # a bound on the run's mean (one-sided one-sample t-test)
    expect: str | None = None  # "higher" | "lower" | None (effect size reported, no direction)

    def __post_init__(self):
        check(bool(self.claim), "claim", "must state the claim")
        check(bool(self.metric), "metric", "must name a metric")
        check((self.versus is None) != (self.below is None), "versus",
               "give exactly one of versus (another run) and below (a bound)")  # fmt: skip
        check_choice(self.expect, (None, "higher", "lower"), "expect")

    def runs(self) -> list[tuple[str, str]]:
        """(stage, name) of the run and of the one it is compared with."""
        return [tuple(r.split("/", 1)) for r in (self.run, self.versus) if r is not None]
