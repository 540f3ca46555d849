"""A run of the grid, resolved once: every value it needs, validated, with its folders.

`make_spec(profile, dataset, stage, name, ...)` reads params/ (profile with its --set overrides,
dataset, phase-1 variant or phase-2 technique, and for phase 2 the phase-1 run it starts from)
and returns a frozen `RunSpec` that carries all of it. The grid writes it into the run folder
(`write_run_file`: runs/.../run.json) and hands the notebooks that file's path; `load_run_file`
rebuilds the same RunSpec from it without reading params/ again.

A run's names, from the most readable:
    key        dataset/seed<k>/<stage>-<name>   its name in logs, tables and comparisons
    run_id     <stage>-<name>                   its results file's name in a seed folder
    setting    hash of what decides its numbers, without the seed (seeds of one setting repeat it)
    identity   hash of what decides its numbers, with the seed (a results file is reused only
               when it records this identity)
    params_hash  hash of every stored parameter, texts included (provenance only)
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from t5vae.config import params as P
from t5vae.config import paths
from t5vae.config.schema import build
from t5vae.training.phases import PHASES
from t5vae.utils.files import atomic_write_text
from t5vae.utils.identity import ADDED_LATER, decisive_profile, digest

STAGES = PHASES  # the stages of the grid that train (plus "base": tokenizer and base model)
_NONE = object()  # a field without an ADDED_LATER default


@dataclass(frozen=True)
class RunSpec:
    """One cell of the experiment grid (one seed of one run), with every parameter resolved."""

    profile: P.Profile
    dataset: P.DatasetParams
    stage: str  # "phase1" or "phase2" ("base" for the tokenizer + base model)
    name: str  # phase-1 variant or phase-2 technique
    root: Path  # the output root
    data_dir: str | None = None
    seed: int = 0  # finetuning seed (one of the profile's seeds)
    variant: P.Phase1Variant | None = None  # phase 1: the variant's parameters
    technique: P.Phase2Technique | None = None  # phase 2: the technique's parameters
    phase1: RunSpec | None = None  # phase 2: the phase-1 run it starts from (None: vanilla)

    @property
    def run_id(self) -> str:
        return f"{self.stage}-{self.name}"

    @property
    def key(self) -> str:
        """dataset/seed<k>/<stage>-<name>: the run's name in logs, tables and comparisons."""
        return f"{self.dataset.name}/seed{self.seed}/{self.run_id}"

    # ------------------------------------------------------------------ runs/
    @property
    def dataset_dir(self) -> Path:
        return paths.runs_dir(self.profile.name, self.root) / self.dataset.name

    @property
    def base_dir(self) -> Path:
        """Tokenizer + base model: runs/base/<dataset>-<hash of what decides them>/, shared by
        every seed and every profile (or --set override) that builds the same base."""
        prof, ds = self.profile, self.dataset
        model = {k: getattr(prof.model, k) for k in ("base", "pretrained", "t5_overrides")}
        decides = {"model": model, "tokenizer": asdict(prof.tokenizer),
                   "pretrain": {k: v for k, v in asdict(prof.pretrain).items()  # train_size: next line
                                if k != "train_size" and ADDED_LATER.get(f"pretrain.{k}", _NONE) != v},
                   "train_size": prof.data.train_size if prof.pretrain.train_size == "data"
                   else prof.pretrain.train_size,  # the sentences the base learns from
                   "cpu_threads": prof.cpu_threads, "dataset": [ds.name, ds.source, ds.max_length,
                                                                ds.tokenizer]}  # fmt: skip
        key = digest(decides, 12)
        return paths.output_root(self.root) / "runs" / "base" / f"{ds.name}-{key}"

    @property
    def tokenized_dir(self) -> Path:
        """Tokenised splits (Arrow): one cache for every run (entries keyed by tokenizer,
        max_length and sentences, data.corpora.encode)."""
        return paths.output_root(self.root) / "runs" / "tokenized"

    @property
    def run_dir(self) -> Path:
        """The run's folder (a base: its base folder)."""
        if self.stage == "base":
            return self.base_dir
        return self.dataset_dir / f"seed{self.seed}" / self.stage / self.name

    @property
    def run_file(self) -> Path:
        """run.json: this resolved spec, what the notebooks of a grid run load (a base's:
        runs/<profile>/<dataset>/base.json, as its folder is shared by profiles)."""
        if self.stage == "base":
            return self.dataset_dir / "base.json"
        return self.run_dir / paths.RUN_FILE

    @property
    def best_dir(self) -> Path:
        """The selected checkpoint (what evaluation and phase 2 load)."""
        return self.run_dir / "best"

    @property
    def history_file(self) -> Path:
        return self.run_dir / "history.json"

    @property
    def trained_with_file(self) -> Path:
        return self.run_dir / "trained_with.json"

    # ------------------------------------------------------------------ results/
    @property
    def results_dir(self) -> Path:
        return paths.results_dir(self.profile.name, self.root)

    @property
    def results_file(self) -> Path:
        return self.results_dir / self.dataset.name / f"seed{self.seed}" / f"{self.run_id}.json"

    # ------------------------------------------------------------------ parameters
    def phase1_spec(self) -> RunSpec | None:
        """The phase-1 run a phase-2 technique starts from (None for the vanilla VAE)."""
        return self.phase1

    @property
    def identity(self) -> str:
        """A hash of everything that decides this run's numbers, its seed included (not texts
        such as the description or the label): a results file with another identity was computed
        with other parameters and is recomputed, never reused."""
        return digest({**self._decisive_params(), "seed": self.seed})

    @property
    def setting(self) -> str:
        """`identity` without the seed: the runs that the seeds of one setting repeat (what the
        comparison with the reference checks before comparing numbers)."""
        return digest(self._decisive_params())

    def _decisive_params(self) -> dict:
        params = self.params()
        params.pop("seed", None)
        params["profile"] = decisive_profile(params["profile"])
        if self.stage in params:
            params[self.stage] = {k: v for k, v in params[self.stage].items() if k != "label"}
        return params

    def params(self) -> dict:
        """Everything that determines this run's numbers (stored as provenance)."""
        profile = asdict(self.profile)
        del profile["seeds"]  # the grid's seed list; this run's own seed is below
        out = {"profile": profile, "dataset": asdict(self.dataset)}
        if self.stage == "base":
            return out
        out["seed"] = self.seed
        out[self.stage] = asdict(self.variant if self.stage == "phase1" else self.technique)
        if self.phase1 is not None:
            out["phase1"] = asdict(self.phase1.variant)
        return out

    # ------------------------------------------------------------------ run.json
    def to_dict(self) -> dict:
        """Every resolved value (what run.json holds; `from_dict` rebuilds the spec)."""
        return {"stage": self.stage, "name": self.name, "seed": self.seed, "root": str(self.root),
                "data_dir": self.data_dir, "profile": asdict(self.profile),
                "dataset": asdict(self.dataset),
                "variant": asdict(self.variant) if self.variant else None,
                "technique": asdict(self.technique) if self.technique else None,
                "phase1": self.phase1.to_dict() if self.phase1 else None}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict, source: str = "run file") -> RunSpec:
        """The RunSpec `to_dict` describes (values checked again as the dataclasses build)."""
        return cls(
            profile=build(P.Profile, data["profile"], source, "profile."),
            dataset=build(P.DatasetParams, data["dataset"], source, "dataset."),
            stage=data["stage"], name=data["name"], root=Path(data["root"]),
            data_dir=data["data_dir"], seed=data["seed"],
            variant=build(P.Phase1Variant, data["variant"], source, "variant.")
            if data["variant"] else None,
            technique=build(P.Phase2Technique, data["technique"], source, "technique.")
            if data["technique"] else None,
            phase1=cls.from_dict(data["phase1"], source) if data["phase1"] else None,
        )  # fmt: skip


def write_run_file(spec: RunSpec) -> Path:
    """runs/.../run.json: the resolved spec, written atomically; its path is what a notebook of
    the grid receives."""
    atomic_write_text(spec.run_file, json.dumps(spec.to_dict(), indent=1, default=str))
    return spec.run_file


def load_run_file(path: str | Path) -> RunSpec:
    """The RunSpec written by `write_run_file` (reads nothing under params/)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise P.ParamsError(f"{path}: not a readable run file ({e})") from None
    return RunSpec.from_dict(data, str(path))


def make_spec(profile: str, dataset: str, stage: str, name: str, output_root_dir=None,
              data_dir: str | None = None, seed: int | None = None,
              overrides: list[str] | None = None) -> RunSpec:  # fmt: skip
    """Read and validate every parameter file a run needs (errors name file and key) and
    resolve the run.

    `seed` None means the profile's first seed; `overrides` are `key.path=value` settings of the
    profile (params.load_profile).
    """
    if stage not in (*STAGES, "base"):
        raise P.ParamsError(f"stage must be one of {STAGES} or 'base', got {stage!r}")
    prof = P.load_profile(profile, overrides=overrides)
    seed = prof.seeds[0] if seed is None else seed
    P.check_seeds([seed], "seed")
    spec = RunSpec(prof, P.load_dataset(dataset), stage, name, paths.output_root(output_root_dir),
                   data_dir, seed)  # fmt: skip
    if stage == "phase1":
        return replace(spec, variant=P.load_phase1(name))
    if stage == "phase2":
        technique = P.load_phase2(name)
        phase1 = None
        if technique.phase1 is not None:
            start = P.phase1_with_decoder(technique.phase1, prof.phase2_from_decoder)
            phase1 = replace(spec, stage="phase1", name=start, variant=P.load_phase1(start))
        return replace(spec, technique=technique, phase1=phase1)
    return spec


def base_spec(profile: str, dataset: str, output_root_dir=None, data_dir: str | None = None,
              overrides: list[str] | None = None) -> RunSpec:  # fmt: skip
    """The spec of a (profile, dataset) pair's base stage (tokenizer + base model)."""
    return make_spec(
        profile, dataset, "base", "base", output_root_dir, data_dir, overrides=overrides
    )


def with_seed(spec: RunSpec, seed: int) -> RunSpec:
    """The same run with another finetuning seed (its phase-1 run too)."""
    P.check_seeds([seed], "seed")
    phase1 = replace(spec.phase1, seed=seed) if spec.phase1 else None
    return replace(spec, seed=seed, phase1=phase1)


def as_base(spec: RunSpec) -> RunSpec:
    """The base stage of a run's (profile, dataset)."""
    return replace(spec, stage="base", name="base", variant=None, technique=None, phase1=None)


@contextmanager
def cpu_threads(n: int | None):
    """torch's intra-op thread count set to `n` inside the block (None: unchanged).

    A fixed count makes CPU results bit-identical between runs; another count changes the order
    of float sums and, through training, the numbers (measured: README, "Same machine...").
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
