"""What each notebook does, as functions: base model, phase 1, phase 2, evaluation, tables.

A run is a `RunSpec` (config/run.py), resolved once: a notebook run by the grid receives the
path of the run's run.json (`run_config`) and loads it (`spec`), reading nothing under params/;
run by hand, it resolves the run from its names. The base (tokenizer + pretrained T5) of a
(profile, dataset) is resolved once per run (`prepare_base`) and handed to what needs it.
Display helpers for the notebooks are in display.py, latent-space analysis in analysis.py.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

import torch

from t5vae.config import paths
from t5vae.config.paths import output_root, reference_dir, results_dir
from t5vae.config.run import STAGES, RunSpec, base_spec, cpu_threads, load_run_file, make_spec
from t5vae.data.corpora import Corpus, DataError, encode, load_split
from t5vae.data.tokenizer import load_tokenizer, train_sentencepiece
from t5vae.evaluation.diagnosis import diagnose
from t5vae.evaluation.generation import (
    distinct_n,
    interpolate,
    reconstruct,
    reconstruction_bleu,
    sample_prior,
)
from t5vae.evaluation.latent import grammar_scorer, label_scorer, latent_space_metrics
from t5vae.evaluation.metrics import batched_mutual_information, evaluate
from t5vae.evaluation.probe import factor_probe
from t5vae.model.released import MI_BATCH, RELEASED_PAD_LENGTH
from t5vae.model.vae import T5VAE, WEIGHTS_NAME, default_device, reparameterize
from t5vae.report.build import write_report
from t5vae.report.results import environment, git_state, write_results
from t5vae.training.config import TrainConfig
from t5vae.training.loop import TrainResult, is_finished, train
from t5vae.training.pretrain import pretrain_t5
from t5vae.utils.files import atomic_dir, atomic_write_json

__all__ = ["STAGES", "RunSpec", "base_spec", "make_spec", "output_root", "reference_dir", "spec"]


def spec(run_config: str | None, profile: str, dataset: str, stage: str, name: str,
         output_root_dir=None, data_dir: str | None = None, seed: int | None = None,
         overrides: list[str] | None = None) -> RunSpec:  # fmt: skip
    """A notebook's run: the grid's resolved run.json when `run_config` names one (params/ is
    not read), else resolved here from the names (make_spec)."""
    if run_config:
        return load_run_file(run_config)
    return make_spec(profile, dataset, stage, name, output_root_dir, data_dir, seed, overrides)


# ---------------------------------------------------------------------- data and base model
def load_corpus(spec: RunSpec, split: str, size: int | str | None = "data") -> Corpus:
    """A split of the run's dataset, cut to `size` sentences ("data": the profile's size for
    that split; None: all)."""
    corpus = load_split(spec.dataset, split, spec.data_dir)
    if size == "data":
        size = getattr(spec.profile.data, f"{split}_size")
    if size is not None and len(corpus) > size:
        corpus.sentences = corpus.sentences[:size]
        corpus.labels = corpus.labels[:size] if corpus.labels else None
        corpus.factors = corpus.factors[:size] if corpus.factors else None
    if not corpus.sentences:
        raise DataError(f"{corpus.source}: no sentences")
    return corpus


@dataclass
class Base:
    """A (profile, dataset)'s tokenizer and base T5: what every run of it starts from."""

    tokenizer_ref: str  # a Hub name or a directory
    model_ref: str  # what T5VAE.from_base takes: a Hub name or a directory
    history: list[dict] = field(default_factory=list)  # pretraining loss (builtin base only)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.tokenizer_ref)


def prepare_base(spec: RunSpec, progress: bool = True) -> Base:
    """Tokenizer and base T5 for (profile, dataset): loaded, or trained and cached in base_dir."""
    prof = spec.profile
    train_corpus = load_corpus(spec, "train", prof.pretrain.train_size)
    tok = replace(prof.tokenizer, **spec.dataset.tokenizer)  # the corpus's vocabulary settings
    if tok.source == "sentencepiece":
        tokenizer_ref = str(corpus_tokenizer(spec, train_corpus, tok))
    else:
        tokenizer_ref = prof.model.base if tok.source == "base" else tok.source
    base = Base(tokenizer_ref, prof.model.base)
    if prof.model.base == "builtin":
        with cpu_threads(prof.cpu_threads):
            model_dir, base.history = pretrain_t5(
                train_corpus.sentences, base.tokenizer, spec.base_dir / "t5", prof.model.t5_overrides,
                max_length=spec.dataset.max_length, progress=progress,
                **{k: v for k, v in asdict(prof.pretrain).items() if k != "train_size"},
            )  # fmt: skip
        base.model_ref = str(model_dir)
    return base


def corpus_tokenizer(spec: RunSpec, corpus: Corpus, tok):
    """A SentencePiece tokenizer trained on the training split (cached under its settings)."""
    tok_dir = spec.base_dir / "tokenizer"
    stamp = tok_dir / "t5vae_tokenizer.json"
    want = {"vocab_size": tok.vocab_size, "model_type": tok.model_type,
            "n_sentences": len(corpus), "source": corpus.source}  # fmt: skip
    if not stamp.is_file() or json.loads(stamp.read_text()) != want:
        with atomic_dir(tok_dir) as tmp:
            train_sentencepiece(corpus.sentences, tok.vocab_size, tmp, model_type=tok.model_type)
            (tmp / stamp.name).write_text(json.dumps(want))
    return tok_dir


def new_model(spec: RunSpec, pooling: str, base: Base | None = None) -> T5VAE:
    """A T5VAE on the run's base model, its new layers initialised from the run's seed."""
    prof = spec.profile
    base = base or prepare_base(spec, progress=False)
    torch.manual_seed(spec.seed)
    rel = prof.released
    return T5VAE.from_base(base.model_ref, latent_dim=prof.model.latent_dim, pooling=pooling,
                           injection=prof.model.injection, pretrained=prof.model.pretrained,
                           shared_kv=prof.model.shared_kv, released_memory_view=rel.memory_view,
                           released_pooling=rel.pooling_over_padding,
                           pad_to=RELEASED_PAD_LENGTH if rel.pad_to_256 else None)  # fmt: skip


# ---------------------------------------------------------------------- training
def train_config(spec: RunSpec) -> TrainConfig:
    """The TrainConfig of a run: the profile's phase settings, as they are, extended by the
    run's (its phase, the variant's / technique's objective, where it writes)."""
    prof = spec.profile
    phase = prof.phase1 if spec.stage == "phase1" else prof.phase2
    rel = prof.released  # the released code's defects reproduced (released.py), all off by default
    run = dict(phase=spec.stage, max_length=spec.dataset.max_length, seed=spec.seed,
               cache_dir=str(spec.tokenized_dir), log_with=prof.tracking.log_with,
               tracking_dir=str(spec.run_dir / "tracking"), run_name=spec.key.replace("/", "_"))  # fmt: skip
    defects = {"deletion_swap": rel.deletion_swap, "rec_per_token": rel.rec_per_token}
    if spec.stage == "phase1":
        v = spec.variant
        embeddings = (
            "frozen" if rel.tied_embeddings_frozen and v.freeze_decoder else v.phase1_embeddings
        )
        return TrainConfig.of(phase, **run, objective=replace(v.objective, **defects),
                              freeze_decoder=v.freeze_decoder, phase1_embeddings=embeddings)  # fmt: skip
    objective = replace(spec.technique.objective, **defects)
    if objective.kl_schedule is None:
        schedule = replace(phase.kl_schedule, kind="released") if rel.kl_ramp else phase.kl_schedule
        objective = replace(objective, kl_schedule=schedule)
    return TrainConfig.of(phase, **run, objective=objective)


def run_training(spec: RunSpec, base: Base | None = None, progress: bool = True) -> TrainResult:
    """Phase 1 from the base model, or phase 2 from its phase-1 checkpoint (vanilla: from base)."""
    base = base or prepare_base(spec, progress=False)
    if spec.stage == "phase1":
        model = new_model(spec, spec.variant.pooling, base)
    elif (p1 := spec.phase1_spec()) is not None:
        if not (p1.best_dir / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(
                f"phase-1 checkpoint {p1.best_dir} is missing: run {p1.run_id} first"
            )
        model = T5VAE.from_pretrained(p1.best_dir)
    else:
        model = new_model(spec, spec.technique.pooling, base)
    cfg = train_config(spec)
    cfg.progress = progress
    train_sents = load_corpus(spec, "train").sentences
    valid_sents = load_corpus(spec, "valid").sentences
    with cpu_threads(spec.profile.cpu_threads):
        finished = is_finished(spec.run_dir)
        if not finished:
            _record_training(spec)
        result = train(model, base.tokenizer, train_sents, valid_sents, cfg, spec.run_dir,
                       resume=True, run_params=spec.params())  # fmt: skip
    if not finished:  # the end of training: how its last epoch left the code
        found = training_diagnosis(history(spec), model.config.latent_dim)
        print(f"{spec.run_id}: {found}", flush=True)
    return result


def training_diagnosis(hist: list[dict], latent_dim: int) -> str:
    """The collapse diagnosis (evaluation.diagnosis) of the last epoch of a training history, from
    its validation metrics."""
    last = hist[-1] if hist else {}
    found = {k: last.get(f"valid_{k}") for k in ("au", "mi", "kl")}
    if any(v is None for v in found.values()):
        return "no validation metrics to diagnose"
    return f"diagnosis on the validation split after epoch {last.get('epoch')}: {diagnose(found, latent_dim)}"


def ensure_trained(spec: RunSpec, progress: bool = True, base: Base | None = None) -> TrainResult:
    """Train the run (and the phase-1 run it depends on) unless its final checkpoint exists."""
    base = base or prepare_base(spec, progress=progress)
    if (p1 := spec.phase1_spec()) is not None:
        ensure_trained(p1, progress, base)
    return run_training(spec, base, progress=progress)


def _record_training(spec: RunSpec) -> None:
    """Append the code version and environment that (re)start training to trained_with.json.

    A run interrupted under one commit and resumed under another lists both; the results file
    copies the list, next to the commit that evaluated the run.
    """
    entries = trained_with(spec)
    entries.append({**git_state(), **environment(), "from_epoch": len(history(spec)),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})  # fmt: skip
    atomic_write_json(spec.trained_with_file, entries)


def trained_with(spec: RunSpec) -> list[dict]:
    path = spec.trained_with_file
    return json.loads(path.read_text()) if path.is_file() else []


def trained_model(spec: RunSpec) -> T5VAE:
    """The run's selected checkpoint (best/)."""
    if not (spec.best_dir / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"{spec.best_dir} is missing: train {spec.run_id} first (notebook 01 or 02)"
        )
    return T5VAE.from_pretrained(spec.best_dir)


def interpolation_example(spec: RunSpec, a: str, b: str, steps: int = 5) -> dict:
    """The run's checkpoint (best/, with the tokenizer saved beside it) decoded greedily at `steps`
    evenly spaced t along the lerp (1 - t) mu_a + t mu_b (evaluation.generation.interpolate)."""
    with cpu_threads(spec.profile.cpu_threads):
        model, tokenizer = trained_model(spec), load_tokenizer(spec.best_dir)
        path = interpolate(model, tokenizer, a, b, steps, "lerp",
                           max_new_tokens=spec.dataset.max_length)  # fmt: skip
    return {"run_id": spec.run_id, "seed": spec.seed, "identity": spec.identity, "a": a, "b": b,
            "kind": "lerp", "strategy": "greedy", "t": torch.linspace(0, 1, steps).tolist(),
            "path": path}  # fmt: skip


def history(spec: RunSpec) -> list[dict]:
    return json.loads(spec.history_file.read_text()) if spec.history_file.is_file() else []


# ---------------------------------------------------------------------- evaluation
def evaluate_run(spec: RunSpec, progress: bool = True) -> dict:
    """Test-split metrics of the run's checkpoint, written with provenance to results_file."""
    with cpu_threads(spec.profile.cpu_threads):
        t0 = time.time()
        device = default_device()
        model = trained_model(spec).to(device)
        tokenizer = prepare_base(spec, progress=False).tokenizer
        test = load_corpus(spec, "test")
        metrics, examples = _test_metrics(spec, model, tokenizer, test, progress)
        hist = history(spec)
        found = diagnose(metrics, model.config.latent_dim, examples["prior_samples"])
        return write_results(
            spec, metrics, examples=examples, history=hist, diagnosis=found, device=str(device),
            eval_time_s=time.time() - t0, train_time_s=sum(h.get("wall_time_s", 0) for h in hist),
            trained_with=trained_with(spec), **peak_memory(),
        )  # fmt: skip


def peak_memory() -> dict:
    """The peak memory of this process so far (a run's kernel trains and evaluates it): resident
    set in MB, and on a GPU the peak allocated by torch."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    out = {"peak_rss_mb": rss / (2**20 if sys.platform == "darwin" else 2**10)}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _test_metrics(spec: RunSpec, model: T5VAE, tokenizer, test: Corpus, progress: bool):
    """evaluate() + factor probes + reconstruction BLEU and prior-sample diversity; examples."""
    ev, max_length = spec.profile.eval, spec.dataset.max_length
    metrics = evaluate(model, tokenizer, test.sentences, iw_samples=ev.iw_samples, batch_size=ev.batch_size,
                       seed=spec.seed, max_length=max_length, progress=progress,
                       return_posteriors=True, cache_dir=spec.tokenized_dir)  # fmt: skip
    mu, logvar, z_first = metrics.pop("mu"), metrics.pop("logvar"), metrics.pop("z")
    metrics["mu_norm"] = float(mu.double().norm(dim=-1).mean())
    metrics["mi_batch256"] = batched_mutual_information(mu, logvar, z_first, MI_BATCH)
    if test.factors:  # known generating factors (built-in corpus): linear probes on z ~ q(z|x)
        z = reparameterize(mu, logvar, torch.Generator().manual_seed(spec.seed))
        metrics.update(factor_probe(z, test.factors, seed=spec.seed))
    recon = reconstruct(model, tokenizer, test.sentences, batch_size=ev.batch_size,
                        max_length=max_length, max_new_tokens=max_length)  # fmt: skip
    samples = sample_prior(model, tokenizer, ev.n_prior_samples, seed=spec.seed,
                           max_new_tokens=max_length)  # fmt: skip
    metrics["bleu"] = reconstruction_bleu(test.sentences, recon)
    metrics["distinct_1"], metrics["distinct_2"] = distinct_n(samples, 1), distinct_n(samples, 2)
    metrics["n_truncated"] = encode(tokenizer, test.sentences, max_length,
                                    cache_dir=spec.tokenized_dir).n_truncated  # fmt: skip
    examples = {"reconstructions": [{"input": a, "reconstruction": b} for a, b in
                                    zip(test.sentences[: ev.n_reconstructions], recon, strict=False)],
                "prior_samples": samples[: ev.n_reconstructions]}  # fmt: skip
    # computed after every metric above, with generators of its own: those stay as they were
    latent, examples["latent"] = latent_space_metrics(
        model, tokenizer, *_factor_sets(spec, test), mu, logvar, samples,
        batch_size=ev.batch_size, max_new_tokens=max_length, seed=spec.seed,
    )  # fmt: skip
    metrics.update(latent)
    return metrics, examples


def _factor_sets(spec: RunSpec, test: Corpus):
    """(scorer, fit, test) for evaluation.latent: the built-in corpus's known factors, read back
    by the grammar's parser; a labelled corpus's label, read back by a classifier trained on the
    training split; the fit set is the validation split. (None, None, None) for other corpora."""
    if test.factors:
        valid = load_corpus(spec, "valid")
        return grammar_scorer(), (valid.sentences, valid.factors), (test.sentences, test.factors)
    if test.labels:
        train, valid = load_corpus(spec, "train"), load_corpus(spec, "valid")
        scorer = label_scorer(train.sentences, train.labels, seed=spec.seed)
        labelled = lambda c: (c.sentences, [{"label": str(y)} for y in c.labels])  # noqa: E731
        return scorer, labelled(valid), labelled(test)
    return None, None, None


def build_tables(profile: str, output_root_dir=None) -> dict:
    """Tables, figures and claims of results/<profile>/, and its comparison with the committed
    reference/<profile>/ (when there is one) for the runs it holds."""
    return write_report(results_dir(profile, output_root_dir), paths.reference_dir(profile))
