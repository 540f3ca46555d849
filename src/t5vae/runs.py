"""A run of the grid and every path it uses: the only place where paths are built.

A run is identified by (profile, dataset, seed, stage, name):
    runs/base/<dataset>-<hash>/                           tokenizer + base T5 (shared by all seeds
                                                          and profiles that build the same base)
    runs/tokenized/                                       tokenised splits (Arrow cache, shared)
    runs/<profile>/<dataset>/seed<k>/<stage>/<name>/      checkpoints, history, executed notebooks
    results/<profile>/<dataset>/seed<k>/<stage>-<name>.json   metrics + provenance (written last)
    reference/<profile>/...                               committed reference results (same layout)
runs/ and results/ live under the output root ($T5VAE_OUTPUT_ROOT or the repository).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from t5vae import params as P
from t5vae.identity import decisive_profile, digest
from t5vae.phases import PHASES

STAGES = PHASES  # the stages of the grid that train (plus "base": tokenizer and base model)
REPO = Path(__file__).resolve().parents[2]
REFERENCE_ROOT = REPO / "reference"
OUTPUT_ENV = "T5VAE_OUTPUT_ROOT"


def output_root(value: str | os.PathLike | None = None) -> Path:
    """Where runs/ and results/ go: `value`, else $T5VAE_OUTPUT_ROOT, else the repository."""
    return Path(value or os.environ.get(OUTPUT_ENV) or REPO).resolve()


def results_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """results/<profile>/: every results file of the profile, its tables and comparison."""
    return output_root(root) / "results" / profile


def runs_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """runs/<profile>/: checkpoints, logs and executed notebooks (git-ignored)."""
    return output_root(root) / "runs" / profile


def reference_dir(profile: str) -> Path:
    """reference/<profile>/: the committed reference results, never written by a run."""
    return REFERENCE_ROOT / profile


@dataclass
class RunSpec:
    """One cell of the experiment grid (one seed of one run), with every parameter resolved."""

    profile: P.Profile
    dataset: P.DatasetParams
    stage: str  # "phase1" or "phase2" ("base" for the tokenizer + base model)
    name: str  # phase-1 variant or phase-2 technique
    root: Path  # the output root
    data_dir: str | None = None
    seed: int = 0  # finetuning seed (one of the profile's seeds)

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
        return runs_dir(self.profile.name, self.root) / self.dataset.name

    @property
    def base_dir(self) -> Path:
        """Tokenizer + base model: runs/base/<dataset>-<hash of what decides them>/, shared by
        every seed and every profile (or --set override) that builds the same base."""
        prof, ds = self.profile, self.dataset
        model = {k: getattr(prof.model, k) for k in ("base", "pretrained", "t5_overrides")}
        decides = {"model": model, "tokenizer": asdict(prof.tokenizer),
                   "pretrain": {k: v for k, v in asdict(prof.pretrain).items()
                                if k != "train_size"},  # (named by the sentences, next line)
                   "train_size": prof.data.train_size if prof.pretrain.train_size == "data"
                   else prof.pretrain.train_size,  # the sentences the base learns from
                   "cpu_threads": prof.cpu_threads, "dataset": [ds.name, ds.source, ds.max_length,
                                                                ds.tokenizer]}  # fmt: skip
        key = digest(decides, 12)
        return output_root(self.root) / "runs" / "base" / f"{ds.name}-{key}"

    @property
    def tokenized_dir(self) -> Path:
        """Tokenised splits (Arrow): one cache for every run (entries keyed by tokenizer,
        max_length and sentences, data.encode)."""
        return output_root(self.root) / "runs" / "tokenized"

    @property
    def run_dir(self) -> Path:
        return self.dataset_dir / f"seed{self.seed}" / self.stage / self.name

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
        return results_dir(self.profile.name, self.root)

    @property
    def results_file(self) -> Path:
        return self.results_dir / self.dataset.name / f"seed{self.seed}" / f"{self.run_id}.json"

    # ------------------------------------------------------------------ parameters
    @property
    def variant(self) -> P.Phase1Variant:
        return P.load_phase1(self.name)

    @property
    def technique(self) -> P.Phase2Technique:
        return P.load_phase2(self.name)

    def phase1_spec(self) -> RunSpec | None:
        """The phase-1 run a phase-2 technique starts from (None for the vanilla VAE): the variant
        the technique names, with the profile's phase2_from_decoder when set."""
        if self.stage != "phase2" or self.technique.phase1 is None:
            return None
        name = P.phase1_with_decoder(self.technique.phase1, self.profile.phase2_from_decoder)
        return replace(self, stage="phase1", name=name)

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
        if (p1 := self.phase1_spec()) is not None:
            out["phase1"] = asdict(p1.variant)
        return out


def make_spec(profile: str, dataset: str, stage: str, name: str, output_root_dir=None,
              data_dir: str | None = None, seed: int | None = None,
              overrides: list[str] | None = None) -> RunSpec:  # fmt: skip
    """Load and validate every parameter file a run needs (errors name file and key).

    `seed` None means the profile's first seed; `overrides` are `key.path=value` settings of the
    profile (params.load_profile).
    """
    if stage not in (*STAGES, "base"):
        raise P.ParamsError(f"stage must be one of {STAGES} or 'base', got {stage!r}")
    prof = P.load_profile(profile, overrides=overrides)
    seed = prof.seeds[0] if seed is None else seed
    P.check_seeds([seed], "seed")
    spec = RunSpec(prof, P.load_dataset(dataset), stage, name, output_root(output_root_dir),
                   data_dir, seed)  # fmt: skip
    spec.params()  # loads the variant / technique (and its phase-1 variant)
    return spec


def base_spec(profile: str, dataset: str, output_root_dir=None, data_dir: str | None = None,
              overrides: list[str] | None = None) -> RunSpec:  # fmt: skip
    """The spec of a (profile, dataset) pair's base stage (tokenizer + base model)."""
    return make_spec(
        profile, dataset, "base", "base", output_root_dir, data_dir, overrides=overrides
    )


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
