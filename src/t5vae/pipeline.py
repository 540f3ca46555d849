"""What each notebook does, as functions: base model, phase 1, phase 2, evaluation.

A run is identified by (profile, dataset, stage, name) and lives in
    runs/<profile>/<dataset>/<stage>/<name>/     checkpoints, history, executed notebooks
    results/<profile>/<dataset>/<stage>-<name>.json   metrics + provenance (written last)
The base (tokenizer + pretrained T5) of a (profile, dataset) is in runs/<profile>/<dataset>/base/.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from t5vae import params as P
from t5vae.data import Corpus, DataError, encode, load_hub_split, load_split
from t5vae.model import T5VAE
from t5vae.training import TrainConfig, TrainResult, is_finished, train

STAGES = ("phase1", "phase2")
REPO = Path(__file__).resolve().parents[2]
REFERENCE_ROOT = REPO / "reference"
OUTPUT_ENV = "T5VAE_OUTPUT_ROOT"


@dataclass
class RunSpec:
    """One cell of the experiment grid (one seed of one run), with every parameter resolved."""

    profile: P.Profile
    dataset: P.DatasetParams
    stage: str  # "phase1" or "phase2" ("base" for the tokenizer + base model)
    name: str  # phase-1 variant or phase-2 technique
    runs_root: Path
    results_root: Path
    data_dir: str | None = None
    seed: int = 0  # finetuning seed (one of the profile's seeds)

    @property
    def run_id(self) -> str:
        return f"{self.stage}-{self.name}"

    @property
    def key(self) -> str:
        """dataset/seed<k>/<stage>-<name>: the run's name in logs, tables and comparisons."""
        return f"{self.dataset.name}/seed{self.seed}/{self.run_id}"

    @property
    def dataset_dir(self) -> Path:
        return self.runs_root / self.profile.name / self.dataset.name

    @property
    def run_dir(self) -> Path:
        return self.dataset_dir / f"seed{self.seed}" / self.stage / self.name

    @property
    def base_dir(self) -> Path:
        """Tokenizer + base model, shared by every seed of the profile and dataset."""
        return self.dataset_dir / "base"

    @property
    def tokenized_dir(self) -> Path:
        """Tokenised splits (Arrow), shared by the runs of this profile and dataset."""
        return self.dataset_dir / "tokenized"

    @property
    def results_dir(self) -> Path:
        """results/<profile>/: every results file of the profile, its tables and comparison."""
        return self.results_root / self.profile.name

    @property
    def results_file(self) -> Path:
        return self.results_dir / self.dataset.name / f"seed{self.seed}" / f"{self.run_id}.json"

    @property
    def variant(self) -> P.Phase1Variant:
        return P.load_phase1(self.name)

    @property
    def technique(self) -> P.Phase2Technique:
        return P.load_phase2(self.name)

    def phase1_spec(self) -> RunSpec | None:
        """The phase-1 run a phase-2 technique starts from (None for the vanilla VAE)."""
        if self.stage != "phase2" or self.technique.phase1 is None:
            return None
        return replace(self, stage="phase1", name=self.technique.phase1)

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


def output_root(value: str | os.PathLike | None = None) -> Path:
    """Where runs/ and results/ go: `value`, else $T5VAE_OUTPUT_ROOT, else the repository."""
    return Path(value or os.environ.get(OUTPUT_ENV) or REPO).resolve()


def reference_dir(profile: str) -> Path:
    """reference/<profile>/: the committed reference results, never written by a run."""
    return REFERENCE_ROOT / profile


def make_spec(profile: str, dataset: str, stage: str, name: str, output_root_dir=None,
              data_dir: str | None = None, seed: int | None = None) -> RunSpec:  # fmt: skip
    """Load and validate every parameter file a run needs (errors name file and key).

    `seed` None means the profile's first seed.
    """
    if stage not in (*STAGES, "base"):
        raise P.ParamsError(f"stage must be one of {STAGES} or 'base', got {stage!r}")
    prof = P.load_profile(profile)
    seed = prof.seeds[0] if seed is None else seed
    P.check_seeds([seed], "seed")
    root = output_root(output_root_dir)
    spec = RunSpec(prof, P.load_dataset(dataset), stage, name, root / "runs", root / "results",
                   data_dir, seed)  # fmt: skip
    spec.params()  # loads the variant / technique (and its phase-1 variant)
    return spec


def base_spec(
    profile: str, dataset: str, output_root_dir=None, data_dir: str | None = None
) -> RunSpec:
    """The spec of a (profile, dataset) pair's base stage (tokenizer + base model)."""
    return make_spec(profile, dataset, "base", "base", output_root_dir, data_dir)


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


def trainable_summary(model: T5VAE, cfg: TrainConfig):
    """Parameter groups of the model and whether each trains under `cfg` (a DataFrame)."""
    import pandas as pd

    from t5vae.training import set_trainable

    set_trainable(model, cfg)
    groups = {
        "encoder input embeddings": [model.t5.encoder.embed_tokens.weight],
        "encoder blocks": list(model.t5.encoder.block.parameters()) + list(model.t5.encoder.final_layer_norm.parameters()),
        "latent heads (mu, logvar)": list(model.to_mu.parameters()) + list(model.to_logvar.parameters()),
        "latent-to-memory projection": list(model.latent_to_memory.parameters()),
        "decoder blocks": list(model.t5.decoder.block.parameters()) + list(model.t5.decoder.final_layer_norm.parameters()),
        "lm_head (output embeddings)": [model.t5.lm_head.weight],
    }  # fmt: skip
    rows = []
    for name, ps in groups.items():
        n = sum(p.numel() for p in ps)
        n_train = sum(p.numel() for p in ps if p.requires_grad)
        rows.append({"parameters": name, "count": n, "trainable": n_train, "frozen": n - n_train})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- data and base model
def load_corpus(spec: RunSpec, split: str) -> Corpus:
    """A split of the run's dataset, cut to the profile's size for that split."""
    ds = spec.dataset
    size = getattr(spec.profile.data, f"{split}_size")
    if ds.source == "builtin":
        corpus = load_split("builtin", split, size=size, seed=None)
    elif ds.source == "hub":  # pragma: no cover - needs network
        corpus = load_hub_split(ds.name, split, limit=size)
    else:
        corpus = load_split(ds.name, split, spec.data_dir)
    if size is not None and len(corpus) > size:
        corpus.sentences = corpus.sentences[:size]
        corpus.labels = corpus.labels[:size] if corpus.labels else None
        corpus.factors = corpus.factors[:size] if corpus.factors else None
    if not corpus.sentences:
        raise DataError(f"{corpus.source}: no sentences")
    return corpus


def prepare_base(spec: RunSpec, progress: bool = True) -> dict:
    """Tokenizer and base T5 for (profile, dataset): loaded, or trained and cached in base_dir.

    Returns {"tokenizer_dir" or "tokenizer_name", "base", "history"}: `base` is what
    T5VAE.from_base takes (a Hub name or a directory).
    """
    from t5vae.pretrain import pretrain_t5
    from t5vae.tokenizer import load_tokenizer, train_sentencepiece

    prof = spec.profile
    out = spec.base_dir
    train_corpus = load_corpus(spec, "train")
    tok_dir = out / "tokenizer"
    tok = replace(prof.tokenizer, **spec.dataset.tokenizer)  # the corpus's vocabulary settings
    if tok.source == "sentencepiece":
        stamp = tok_dir / "t5vae_tokenizer.json"
        want = {"vocab_size": tok.vocab_size, "model_type": tok.model_type,
                "n_sentences": len(train_corpus), "source": train_corpus.source}  # fmt: skip
        if not stamp.is_file() or json.loads(stamp.read_text()) != want:
            train_sentencepiece(
                train_corpus.sentences, tok.vocab_size, tok_dir, model_type=tok.model_type
            )
            stamp.write_text(json.dumps(want))
        tokenizer_ref = str(tok_dir)
    elif prof.tokenizer.source == "base":
        tokenizer_ref = prof.model.base
    else:
        tokenizer_ref = prof.tokenizer.source
    tokenizer = load_tokenizer(tokenizer_ref)
    history: list[dict] = []
    base = prof.model.base
    if base == "builtin":
        with cpu_threads(prof.cpu_threads):
            model_dir, history = pretrain_t5(
                train_corpus.sentences, tokenizer, out / "t5", prof.model.t5_overrides,
                max_length=spec.dataset.max_length, progress=progress, **asdict(prof.pretrain),
            )  # fmt: skip
        base = str(model_dir)
    return {"tokenizer": tokenizer_ref, "base": base, "history": history}


def load_tokenizer_for(spec: RunSpec):
    from t5vae.tokenizer import load_tokenizer

    return load_tokenizer(prepare_base(spec, progress=False)["tokenizer"])


def new_model(spec: RunSpec, pooling: str) -> T5VAE:
    """A T5VAE on the run's base model, seeded."""
    prof = spec.profile
    base = prepare_base(spec, progress=False)["base"]
    torch.manual_seed(spec.seed)
    return T5VAE.from_base(base, latent_dim=prof.model.latent_dim, pooling=pooling,
                           injection=prof.model.injection, pretrained=prof.model.pretrained)  # fmt: skip


def train_config(spec: RunSpec) -> TrainConfig:
    """The TrainConfig of a run: profile's phase settings + the variant's / technique's remedies."""
    prof = spec.profile
    phase = prof.phase1 if spec.stage == "phase1" else prof.phase2
    common = dict(
        phase=spec.stage, epochs=phase.epochs, max_steps=phase.max_steps, lr=phase.lr,
        batch_size=phase.batch_size, grad_accum=phase.grad_accum, mixed_precision=phase.mixed_precision,
        max_length=spec.dataset.max_length, seed=spec.seed, patience=phase.patience,
        select_by=phase.select_by, valid_iw_samples=phase.valid_iw_samples,
        num_workers=phase.num_workers, cache_dir=str(spec.tokenized_dir),
    )  # fmt: skip
    if spec.stage == "phase1":
        v = spec.variant
        return TrainConfig(**common, denoise_prob=v.denoise_prob, freeze_decoder=v.freeze_decoder,
                           phase1_embeddings=v.phase1_embeddings)  # fmt: skip
    t = spec.technique
    return TrainConfig(**common, kl_threshold=t.kl_threshold, denoise_prob=t.denoise_prob, sample_z=t.sample_z,
                       kl_schedule=t.kl_schedule or phase.kl_schedule)  # fmt: skip


def run_training(spec: RunSpec, progress: bool = True) -> TrainResult:
    """Phase 1 from the base model, or phase 2 from its phase-1 checkpoint (vanilla: from base)."""
    tokenizer = load_tokenizer_for(spec)
    if spec.stage == "phase1":
        model = new_model(spec, spec.variant.pooling)
    elif (p1 := spec.phase1_spec()) is not None:
        ckpt = p1.run_dir / "best"
        if not (ckpt / "model.safetensors").is_file():
            raise FileNotFoundError(f"phase-1 checkpoint {ckpt} is missing: run {p1.run_id} first")
        model = T5VAE.from_pretrained(ckpt)
    else:
        model = new_model(spec, spec.technique.pooling or "max")
    cfg = train_config(spec)
    cfg.progress = progress
    train_sents = load_corpus(spec, "train").sentences
    valid_sents = load_corpus(spec, "valid").sentences
    with cpu_threads(spec.profile.cpu_threads):
        if not is_finished(spec.run_dir):
            _record_training(spec)
        return train(model, tokenizer, train_sents, valid_sents, cfg, spec.run_dir, resume=True)


TRAINED_WITH = "trained_with.json"


def _record_training(spec: RunSpec) -> None:
    """Append the code version and environment that (re)start training to run_dir/trained_with.json.

    A run interrupted under one commit and resumed under another lists both; the results file
    copies the list, next to the commit that evaluated the run.
    """
    from t5vae.results import atomic_write_text, environment, git_state

    path = spec.run_dir / TRAINED_WITH
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries.append({**git_state(), **environment(),
                    "from_epoch": len(history(spec)),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})  # fmt: skip
    atomic_write_text(path, json.dumps(entries, indent=2))


def trained_with(spec: RunSpec) -> list[dict]:
    path = spec.run_dir / TRAINED_WITH
    return json.loads(path.read_text()) if path.is_file() else []


def trained_model(spec: RunSpec) -> T5VAE:
    """The run's selected checkpoint (best/)."""
    path = spec.run_dir / "best"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path} is missing: train {spec.run_id} first (notebook 01 or 02)")
    return T5VAE.from_pretrained(path)


def history(spec: RunSpec) -> list[dict]:
    path = spec.run_dir / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def evaluate_run(spec: RunSpec, progress: bool = True) -> dict:
    """Test-split metrics of the run's checkpoint, written with provenance to results_file."""
    with cpu_threads(spec.profile.cpu_threads):
        return _evaluate_run(spec, progress)


def _evaluate_run(spec: RunSpec, progress: bool) -> dict:
    from t5vae.metrics import evaluate
    from t5vae.results import write_results

    t0 = time.time()
    model = trained_model(spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    tokenizer = load_tokenizer_for(spec)
    test = load_corpus(spec, "test")
    ev = spec.profile.eval
    metrics = evaluate(model, tokenizer, test.sentences, iw_samples=ev.iw_samples, batch_size=ev.batch_size,
                       seed=spec.seed, max_length=spec.dataset.max_length, progress=progress,
                       return_posteriors=True, cache_dir=spec.tokenized_dir)  # fmt: skip
    mu, logvar = metrics.pop("mu"), metrics.pop("logvar")
    if test.factors:  # known generating factors (built-in corpus): linear probes on z ~ q(z|x)
        from t5vae.model import reparameterize
        from t5vae.probe import factor_probe

        z = reparameterize(mu, logvar, torch.Generator().manual_seed(spec.seed))
        metrics.update(factor_probe(z, test.factors, seed=spec.seed))
    # generation: reconstruction BLEU (greedy from mu) and diversity of prior samples
    from t5vae.generation import distinct_n, reconstruct, reconstruction_bleu, sample_prior

    recon = reconstruct(model, tokenizer, test.sentences, batch_size=ev.batch_size,
                        max_new_tokens=spec.dataset.max_length)  # fmt: skip
    samples = sample_prior(model, tokenizer, ev.n_prior_samples, seed=spec.seed,
                           max_new_tokens=spec.dataset.max_length)  # fmt: skip
    metrics["bleu"] = reconstruction_bleu(test.sentences, recon)
    metrics["distinct_1"], metrics["distinct_2"] = distinct_n(samples, 1), distinct_n(samples, 2)
    metrics["n_truncated"] = encode(tokenizer, test.sentences, spec.dataset.max_length,
                                    cache_dir=spec.tokenized_dir).n_truncated  # fmt: skip
    examples = {"reconstructions": [{"input": a, "reconstruction": b} for a, b in
                                    zip(test.sentences[: ev.n_reconstructions], recon, strict=False)],
                "prior_samples": samples[: ev.n_reconstructions]}  # fmt: skip
    hist = history(spec)
    train_time = sum(h.get("wall_time_s", 0) for h in hist)
    return write_results(
        spec,
        metrics,
        examples=examples,
        history=hist,
        device=device,
        eval_time_s=time.time() - t0,
        train_time_s=train_time,
        trained_with=trained_with(spec),
    )


# ---------------------------------------------------------------------- notebook helpers
def quiet() -> None:
    """Silence library warnings and download/loading bars (notebook outputs stay checkable)."""
    import logging
    import warnings

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def relative(path) -> str:
    """A path relative to the output root (stable across machines in notebook outputs)."""
    path = Path(path)
    for root in (output_root(), REPO):
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            continue
    return str(path)


def describe(spec: RunSpec) -> str:
    """A short text of the run's resolved parameters."""
    prof = spec.profile
    lines = [f"profile {prof.name}: base {prof.model.base}, latent_dim {prof.model.latent_dim}, seed {spec.seed}",
             f"dataset {spec.dataset.name}: source {spec.dataset.source}, max_length {spec.dataset.max_length}"]  # fmt: skip
    if spec.stage == "phase1":
        v = spec.variant
        lines.append(f"phase 1 variant {v.name}: pooling {v.pooling}, denoise_prob {v.denoise_prob}, "
                     f"freeze_decoder {v.freeze_decoder}, phase1_embeddings {v.phase1_embeddings}")  # fmt: skip
    elif spec.stage == "phase2":
        t = spec.technique
        lines.append(f"phase 2 technique {t.name} ({t.label}): from phase 1 {t.phase1}, kl_threshold "
                     f"{t.kl_threshold}, denoise_prob {t.denoise_prob}, "
                     f"kl_schedule {t.kl_schedule or prof.phase2.kl_schedule}")  # fmt: skip
    if spec.stage in STAGES:
        ph = prof.phase1 if spec.stage == "phase1" else prof.phase2
        lines.append(f"training: {ph.epochs} epochs, batch {ph.batch_size}, lr {ph.lr}")
    return "\n".join(lines)


def ensure_trained(spec: RunSpec, progress: bool = True) -> TrainResult:
    """Train the run (and the phase-1 run it depends on) unless its final checkpoint exists."""
    prepare_base(spec, progress=progress)
    if (p1 := spec.phase1_spec()) is not None:
        ensure_trained(p1, progress)
    return run_training(spec, progress=progress)


def history_table(hist: list[dict], decimals: int = 1):
    """Per-epoch training and validation metrics, rounded so that CPU noise does not show."""
    import pandas as pd

    cols = [
        "epoch",
        "kl_weight",
        "train_rec",
        "train_kl",
        "valid_rec",
        "valid_kl",
        "valid_nll",
        "valid_mi",
        "valid_au",
    ]
    df = pd.DataFrame(hist)
    return df[[c for c in cols if c in df]].round(decimals).set_index("epoch")


def metrics_table(metrics: dict, decimals: int = 1):
    import pandas as pd

    return pd.DataFrame(
        [{k: round(v, decimals) if isinstance(v, float) else v for k, v in metrics.items()}]
    )


def reconstruction_table(record: dict):
    """Test sentences next to their greedy reconstructions from mu (stored in the results file)."""
    import pandas as pd

    return pd.DataFrame(record.get("examples", {}).get("reconstructions", []))


def build_tables(profile: str, output_root_dir=None) -> dict:
    """Tables, figures and claims of results/<profile>/, and its comparison with the committed
    reference/<profile>/ (when there is one) for the runs it holds."""
    from t5vae.claims import write_claims
    from t5vae.compare import write_comparison
    from t5vae.results import result_files
    from t5vae.tables import write_figures, write_tables

    results_dir = output_root(output_root_dir) / "results" / profile
    paths = write_tables(results_dir)
    paths["figures"] = write_figures(results_dir)
    paths["claims"] = write_claims(results_dir)["md"]
    reference = reference_dir(profile)
    paths["verdict"] = f"no reference results in {relative(reference)}"
    if result_files(reference):
        comparison, written = write_comparison(results_dir, reference)
        paths["comparison"], paths["verdict"] = written["md"], comparison.verdict
        paths["figures"].append(written["figure"])
    return paths


def latent_map(spec: RunSpec, n: int = 500, seed: int = 0):
    """mu of up to n test sentences with PCA and t-SNE coordinates, labels and known factors."""
    import numpy as np
    import pandas as pd
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from t5vae.generation import encode_sentences

    model = trained_model(spec)
    tokenizer = load_tokenizer_for(spec)
    test = load_corpus(spec, "test")
    sentences = test.sentences[:n]
    mus, logvars = [], []
    for i in range(0, len(sentences), 100):
        mu, logvar = encode_sentences(
            model, tokenizer, sentences[i : i + 100], spec.dataset.max_length
        )
        mus.append(mu)
        logvars.append(logvar)
    mu, logvar = torch.cat(mus), torch.cat(logvars)
    x = mu.double().numpy()
    df = pd.DataFrame({"sentence": sentences})
    pca = PCA(n_components=2, random_state=seed).fit_transform(x)
    df["pca_1"], df["pca_2"] = pca[:, 0], pca[:, 1]
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(
        x
    )
    df["tsne_1"], df["tsne_2"] = tsne[:, 0], tsne[:, 1]
    if test.labels:
        df["label"] = test.labels[: len(df)]
    for key in sorted(test.factors[0]) if test.factors else []:
        df[key] = [f[key] for f in test.factors[: len(df)]]
    df.attrs["mu"], df.attrs["logvar"] = mu, logvar
    df.attrs["spread"] = float(np.linalg.norm(x.std(0)))
    return df
