"""What the notebooks show: short texts and small tables about a run (pandas DataFrames)."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd

from t5vae.config import paths
from t5vae.config.paths import REPO, output_root
from t5vae.config.run import STAGES, RunSpec
from t5vae.evaluation.metrics import METRICS, metric
from t5vae.model.vae import T5VAE
from t5vae.training.config import TrainConfig
from t5vae.training.phases import set_trainable


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
        lines.append(f"phase 1 variant {v.name}: pooling {v.pooling}, freeze_decoder {v.freeze_decoder}, "
                     f"phase1_embeddings {v.phase1_embeddings}, objective {_objective(v.objective)}")  # fmt: skip
    elif spec.stage == "phase2":
        t = spec.technique
        schedule = t.objective.kl_schedule or prof.phase2.kl_schedule
        shape = ", ".join(f"{k} {v}" for k, v in asdict(schedule).items())
        start = p1.name if (p1 := spec.phase1_spec()) else None
        lines.append(f"phase 2 technique {t.name} ({t.label}): from phase 1 {start}, objective "
                     f"{_objective(t.objective)}, kl_schedule: {shape}")  # fmt: skip
    if spec.stage in STAGES:
        ph = prof.phase1 if spec.stage == "phase1" else prof.phase2
        lines.append(f"training: {ph.epochs} epochs, batch {ph.batch_size}, lr {ph.lr}")
    return "\n".join(lines)


def _objective(obj) -> str:
    """The fields of a config that differ from their defaults (`{}`: all defaults)."""
    changed = {f.name: getattr(obj, f.name) for f in fields(obj)
               if getattr(obj, f.name) != f.default and f.name != "kl_schedule"}  # fmt: skip
    return "{" + ", ".join(f"{k}: {v}" for k, v in changed.items()) + "}"


def trainable_summary(model: T5VAE, cfg: TrainConfig) -> pd.DataFrame:
    """Parameter groups of the model and whether each trains under `cfg`."""
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


def history_table(hist: list[dict], decimals: int = 1) -> pd.DataFrame:
    """Per epoch: the KL weight, every training term (train_<term>, whatever the objective logs)
    and the validation metrics the registry plots (valid_<metric>), rounded so that CPU noise
    does not show."""
    df = pd.DataFrame(hist)
    valid = [f"valid_{m.name}" for m in METRICS.values() if m.curve]
    cols = ["epoch", "kl_weight", *(c for c in df if c.startswith("train_")), *valid]
    return df[[c for c in cols if c in df]].round(decimals).set_index("epoch")


def metrics_table(metrics: dict, decimals: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        [{k: round(v, decimals) if isinstance(v, float) else v for k, v in metrics.items()}]
    )


def metric_glossary(names=None) -> pd.DataFrame:
    """Each metric's definition and direction, from the registry (metrics.METRICS)."""
    names = names or list(METRICS)
    rows = []
    for name in names:
        m = metric(name)
        better = {True: "lower", False: "higher", None: ""}[m.lower_is_better]
        rows.append({"metric": name, "definition": m.description, "better": better})
    return pd.DataFrame(rows).set_index("metric")


def reconstruction_table(record: dict) -> pd.DataFrame:
    """Test sentences next to their greedy reconstructions from mu (stored in the results file)."""
    return pd.DataFrame(record.get("examples", {}).get("reconstructions", []))


def study_table(name: str) -> pd.DataFrame:
    """The committed table of a study (reference/studies/<name>/<name>.csv): mean ± sd over its
    seeds per row; regenerate with `python -m t5vae.grid.study <name> --save-reference`."""
    path = paths.study_reference_dir(name) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: run python -m t5vae.grid.study {name} --save-reference"
        )
    return pd.read_csv(path).set_index("setting")


def shift_scores(record: dict) -> pd.DataFrame:
    """A results file's attribute-shift scores per factor and alpha (evaluation.latent), and the
    mean over factors that the tables report."""
    rows = (record.get("examples", {}).get("latent") or {}).get("transfer") or []
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).drop(columns=["n"])
    mean = df.groupby("alpha", as_index=False).mean(numeric_only=True).assign(factor="mean")
    return pd.concat([df, mean]).set_index(["factor", "alpha"]).round(3)


def latent_by_technique(profile: str, dataset: str) -> pd.DataFrame:
    """The latent-space table (diagnosis, controlled generation, MIG, DCI, smoothness, diversity)
    of the profile's committed reference, one row per phase-2 technique."""
    from t5vae.report.results import collect
    from t5vae.report.tables import latent_frame

    return latent_frame(collect(paths.reference_dir(profile)), dataset)
