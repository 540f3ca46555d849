"""Experiment parameters: YAML files under params/ -> validated dataclasses.

params/profiles/<profile>.yaml   model, tokenizer, base pretraining, data sizes, epochs, evaluation
params/datasets/<dataset>.yaml   where the text comes from and its maximum length
params/phase1/<variant>.yaml     pooling, denoise_prob, freeze_decoder, phase1_embeddings
params/phase2/<technique>.yaml   kl_threshold, denoise_prob, which phase-1 variant it starts from

Every file is checked before anything runs: unknown keys, wrong types and out-of-range values
stop with a ParamsError naming the file and the key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from t5vae.identity import NOT_NUMBERS
from t5vae.model import EMBEDDING_POLICIES, INJECTIONS, POOLINGS, T5VAEConfig
from t5vae.objectives import KLScheduleConfig, Objective
from t5vae.phases import MEMORY_PROJECTION, TRACKERS
from t5vae.released import ReleasedSwitches
from t5vae.yamlconfig import ParamsError, build, check, merge, parse_overrides, read_yaml

PARAMS_ENV = "T5VAE_PARAMS_DIR"


@dataclass
class ModelParams:
    base: str = "t5-small"  # Hub name, local directory, or "builtin" (pretrained here, offline)
    pretrained: bool = True  # False: random init from the base's config
    latent_dim: int = T5VAEConfig.latent_dim
    injection: str = T5VAEConfig.injection
    shared_kv: bool = T5VAEConfig.shared_kv  # memory: key = value (the released code; Optimus)
    t5_overrides: dict = field(default_factory=dict)  # T5Config fields for the builtin base

    def __post_init__(self):
        check(self.latent_dim >= 1, "latent_dim", f"must be >= 1, got {self.latent_dim}")
        check(self.injection in INJECTIONS, "injection", f"must be one of {INJECTIONS}")


@dataclass
class TokenizerParams:
    source: str = (
        "base"  # "base" (the base model's), "sentencepiece" (trained on the corpus) or a dir
    )
    vocab_size: int = 8000
    model_type: str = "unigram"

    def __post_init__(self):
        check(self.vocab_size >= 10, "vocab_size", "must be >= 10")
        check(self.model_type in ("unigram", "bpe", "word", "char"), "model_type",
               "must be unigram, bpe, word or char")  # fmt: skip


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

    def __post_init__(self):
        check(self.steps >= 0, "steps", "must be >= 0")
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
class PhaseParams:
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-4
    # early stopping: epochs without an improvement of min_improvement, counted once the KL
    # warm-up has ended (objectives.KLSchedule.settled_from)
    patience: int | None = None
    min_improvement: float = 0.0  # relative: an epoch improves if metric < best * (1 - this)
    # best/ among the epochs after the KL warm-up only (a model trained under a rising KL weight is
    # not a candidate); false: among all epochs, the behaviour before this option existed
    select_after_warmup: bool = True
    select_by: str = "neg_elbo"
    grad_accum: int = 1
    mixed_precision: str = "no"
    kl_schedule: KLScheduleConfig = field(default_factory=KLScheduleConfig)  # phase 2's default
    valid_iw_samples: int = 1
    num_workers: int = 0  # DataLoader worker processes building batches (0: in the main process)

    def __post_init__(self):
        check(self.epochs >= 1, "epochs", "must be >= 1")
        check(self.num_workers >= 0, "num_workers", "must be >= 0")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.lr >= 0, "lr", "must be >= 0")
        check(
            self.mixed_precision in ("no", "fp16", "bf16"),
            "mixed_precision",
            "must be no, fp16 or bf16",
        )
        check(self.patience is None or self.patience >= 1, "patience", "must be >= 1 or null")
        check(0 <= self.min_improvement < 1, "min_improvement", "must be in [0, 1)")


@dataclass
class Phase1Params(PhaseParams):
    """Phase 1's settings: PhaseParams plus what the frozen-decoder variants do with the
    latent-to-memory projection ("frozen": with the decoder, as in the released code;
    "trainable": it learns with the encoder; see the README's phase-1 study)."""

    memory_projection: str = "frozen"

    def __post_init__(self):
        super().__post_init__()
        check(self.memory_projection in MEMORY_PROJECTION, "memory_projection",
               f"must be one of {MEMORY_PROJECTION}")  # fmt: skip


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
        check(
            self.log_with in TRACKERS,
            "log_with",
            f"must be one of {TRACKERS}, got {self.log_with!r}",
        )


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
        check(self.name in LAUNCHERS, "name", f"must be one of {LAUNCHERS}, got {self.name!r}")
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
        check(self.phase2_from_decoder in (None, "frozen", "unfrozen"), "phase2_from_decoder",
               f"must be null, frozen or unfrozen, got {self.phase2_from_decoder!r}")  # fmt: skip
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
class HubSource:
    """Where a dataset is on the Hugging Face Hub (for `source: hub`; needs network)."""

    name: str = ""  # e.g. stanfordnlp/snli
    config: str | None = None
    text: str = "text"  # column with the sentence
    label: str | None = None  # column with a label, if any
    splits: dict = field(default_factory=lambda: {"train": "train", "valid": "validation",
                                                  "test": "test"})  # fmt: skip

    def __post_init__(self):
        check(bool(self.name), "name", "must name a Hub dataset")
        check(set(self.splits) == {"train", "valid", "test"}, "splits",
               "must map train, valid and test to the Hub's split names")  # fmt: skip


@dataclass
class DatasetParams:
    """params/datasets/<name>.yaml: the file is the dataset's registration (no code needed)."""

    name: str = ""
    source: str = "files"  # "files" (Optimus layout), "hub", "builtin"
    max_length: int = 128
    labelled: bool = False  # files: each line is "label<TAB>text" (Yelp)
    label: str | None = None  # what the label means, for plots
    hub: HubSource | None = None  # the Hub version (required by source: hub)
    # SentencePiece settings for this corpus (override the profile's when it trains one)
    tokenizer: dict = field(default_factory=dict)

    def __post_init__(self):
        bad = sorted(set(self.tokenizer) - {"vocab_size", "model_type"})
        check(not bad, "tokenizer", f"only vocab_size and model_type can be set here, got {bad}")
        if self.tokenizer:
            TokenizerParams(**{**asdict(TokenizerParams()), **self.tokenizer})  # validates values
        check(self.source in ("files", "hub", "builtin"), "source", "must be files, hub or builtin")
        check(
            self.source != "hub" or self.hub is not None, "hub", "source: hub needs a hub: section"
        )
        check(self.max_length >= 2, "max_length", "must be >= 2")


@dataclass
class Phase1Variant:
    name: str = ""
    pooling: str = T5VAEConfig.pooling
    freeze_decoder: bool = True
    phase1_embeddings: str = "frozen"
    objective: Objective = field(default_factory=Objective)  # phase 1: denoise_prob only

    def __post_init__(self):
        check(
            self.pooling in POOLINGS, "pooling", f"must be one of {POOLINGS}, got {self.pooling!r}"
        )
        check(self.phase1_embeddings in EMBEDDING_POLICIES, "phase1_embeddings",
               f"must be one of {EMBEDDING_POLICIES}")  # fmt: skip
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
        check(self.pooling in POOLINGS, "pooling", f"must be one of {POOLINGS}")


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
        check(self.expect in (None, "higher", "lower"), "expect", "must be higher, lower or null")

    def runs(self) -> list[tuple[str, str]]:
        """(stage, name) of the run and of the one it is compared with."""
        return [tuple(r.split("/", 1)) for r in (self.run, self.versus) if r is not None]


def params_dir(path: str | os.PathLike | None = None) -> Path:
    """params/ of this checkout (or $T5VAE_PARAMS_DIR, or `path`)."""
    if path:
        return Path(path)
    if os.environ.get(PARAMS_ENV):
        return Path(os.environ[PARAMS_ENV])
    return Path(__file__).resolve().parents[2] / "params"


def load_file(cls, path: Path):
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise ParamsError(
            f"{path}: name: must equal the file name {path.stem!r}, got {data['name']!r}"
        )
    return build(cls, data, str(path))


def load_profile(name: str, root=None, overrides: list[str] | None = None) -> Profile:
    """params/profiles/<name>.yaml, with `--set key.path=value` overrides merged over the YAML
    mapping before validation (so they are checked exactly like values in the file). A profile
    loaded with overrides is named `<name>+<hash of the overrides>`: its runs and results go to
    their own folders and never reuse results computed without them."""
    path = params_dir(root) / "profiles" / f"{name}.yaml"
    if not overrides:
        return _check_runs(load_file(Profile, path), path, root)
    mapping = parse_overrides(overrides)
    for key in ("name", "overrides"):
        if key in mapping:
            raise ParamsError(f"--set {key}=...: {key} cannot be set")
    data = merge(read_yaml(path), mapping)
    profile = build(Profile, data, f"{path} with --set {' '.join(overrides)}")
    decisive = sorted(o for o in overrides if not o.startswith(NOT_NUMBERS))
    if decisive:  # (tracking and launcher settings change no number: same folder, same runs)
        profile.name = f"{name}+{hashlib.sha256(repr(decisive).encode()).hexdigest()[:8]}"
    profile.overrides = sorted(overrides)
    return _check_runs(profile, path, root)


def _check_runs(profile: Profile, path: Path, root) -> Profile:
    """The profile's run lists name files that exist."""
    for key, kind in (("techniques", "phase2"), ("phase1_variants", "phase1")):
        unknown = sorted(set(getattr(profile, key) or []) - set(list_names(kind, root)))
        if unknown:
            raise ParamsError(f"{path}: {key}: unknown {', '.join(unknown)} (not in params/{kind})")
    return profile


def load_dataset(name: str, root=None) -> DatasetParams:
    return load_file(DatasetParams, params_dir(root) / "datasets" / f"{name}.yaml")


def load_phase1(name: str, root=None) -> Phase1Variant:
    return load_file(Phase1Variant, params_dir(root) / "phase1" / f"{name}.yaml")


def load_phase2(name: str, root=None) -> Phase2Technique:
    tech = load_file(Phase2Technique, params_dir(root) / "phase2" / f"{name}.yaml")
    if tech.phase1 is not None:
        path = params_dir(root) / "phase2" / f"{name}.yaml"
        try:
            load_phase1(tech.phase1, root)
        except ParamsError as e:
            raise ParamsError(f"{path}: phase1: {e}") from None
    return tech


def phase1_with_decoder(name: str, decoder: str | None, root=None) -> str:
    """The phase-1 variant that equals `name` except for its decoder ("frozen" / "unfrozen");
    `name` itself when decoder is None or already so. Error when params/phase1 has none."""
    variant = load_phase1(name, root)
    if decoder is None or variant.freeze_decoder == (decoder == "frozen"):
        return name
    want = {**asdict(variant), "freeze_decoder": decoder == "frozen", "name": None}
    for other in list_names("phase1", root):
        if {**asdict(load_phase1(other, root)), "name": None} == want:
            return other
    raise ParamsError(f"phase2_from_decoder: {decoder}: params/phase1 has no variant like {name} "
                      f"with the decoder {decoder}")  # fmt: skip


def load_claims(root=None) -> list[Claim]:
    """params/claims.yaml: a list of claims whose runs exist in params/phase1 and params/phase2."""
    path = params_dir(root) / "claims.yaml"
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else []
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, list):
        raise ParamsError(
            f"{path}: top level: expected a list of claims, got {type(data).__name__}"
        )
    claims = []
    for i, item in enumerate(data):
        claim = build(Claim, item, f"{path}", f"[{i}].")
        for key, ref in (("run", claim.run), ("versus", claim.versus)):
            if ref is None:
                continue
            stage, _, name = ref.partition("/")
            if stage not in ("phase1", "phase2") or name not in list_names(stage, root):
                raise ParamsError(f"{path}: [{i}].{key}: {ref!r} is not <phase1|phase2>/<a file in "
                                  f"params/{stage or 'phase1'}>")  # fmt: skip
        claims.append(claim)
    return claims


def list_names(kind: str, root=None) -> list[str]:
    return sorted(p.stem for p in (params_dir(root) / kind).glob("*.yaml"))


def validate_all(root=None) -> None:
    """Load every parameter file (raises ParamsError on the first invalid one)."""
    loaders = {
        "profiles": load_profile,
        "datasets": load_dataset,
        "phase1": load_phase1,
        "phase2": load_phase2,
    }
    for kind, loader in loaders.items():
        for name in list_names(kind, root):
            loader(name, root)
    load_claims(root)
