"""A dry run of a profile: its exact code path, cheaply, before anyone spends GPU hours on it.

    ./reproduce.sh --profile paper --dry-run [--datasets ptb] [--base-config DIR]

Every notebook and stage runs as in the real grid, with the profile's batch size, max_length,
K importance samples, early stopping and tables, on a model of its base's architecture with random
weights (`model.pretrained: false`), capped to 2 optimiser steps per phase (full batches) and 8
evaluation sentences per run. Corpora found in the data folder are used as they are (PTB in CI);
the others are replaced by small generated files of the same layout (Yelp: labelled). A run that
would crash fails here; timing.md reports each stage's peak memory.
"""

from __future__ import annotations

import os
from pathlib import Path

from t5vae.config import params as P
from t5vae.data.corpora import builtin_split, resolve_data_dir

STEPS, EVAL_SENTENCES = 2, 8


def base_config_dir(profile: P.Profile, given: str | None = None) -> str:
    """Where the base's config (and tokenizer) comes from: --base-config, else
    $T5VAE_SHARED_DIR/models/<base> when that exists (offline machines), else the base itself
    (a Hub name: only its config and tokenizer are downloaded; an error naming --base-config
    when it is neither cached nor reachable)."""
    if given:
        if not (Path(given) / "config.json").is_file():
            raise P.ParamsError(f"--base-config {given}: no config.json there")
        return str(Path(given).resolve())
    shared = os.environ.get("T5VAE_SHARED_DIR")
    if shared and (Path(shared) / "models" / profile.model.base / "config.json").is_file():
        return str(Path(shared) / "models" / profile.model.base)
    require_hub(profile.model.base, "pass --base-config DIR (a folder with its config.json and "
                "tokenizer files) or set T5VAE_SHARED_DIR to a folder with models/<base>/")  # fmt: skip
    return profile.model.base


def hub_reachable(timeout: float = 3.0) -> bool:
    """The Hugging Face Hub answers (and HF_HUB_OFFLINE is not set)."""
    import socket

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = constants.ENDPOINT.split("://", 1)[-1].split("/", 1)[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def require_hub(base: str, what_to_pass: str) -> None:
    """`base` is a local folder, in the Hugging Face cache, or reachable on the Hub; else one
    clear error that says what to pass (instead of five retries and a traceback)."""
    from huggingface_hub import try_to_load_from_cache

    if Path(base).is_dir() or isinstance(try_to_load_from_cache(base, "config.json"), str):
        return
    if not hub_reachable():
        raise P.ParamsError(f"the base model {base!r} is not on this machine and the Hugging Face "
                            f"Hub cannot be reached: {what_to_pass}")  # fmt: skip


def overrides(profile: P.Profile, base_config: str | None = None) -> list[str]:
    """The --set values that turn a profile into its dry run."""
    batch = max(profile.phase1.batch_size, profile.phase2.batch_size)
    sets = [f"phase1.max_steps={STEPS}", f"phase2.max_steps={STEPS}",
            f"data.train_size={STEPS * batch}", f"data.valid_size={EVAL_SENTENCES}",
            f"data.test_size={EVAL_SENTENCES}", "eval.n_prior_samples=4", "eval.n_reconstructions=2"]  # fmt: skip
    if profile.model.base == "builtin":
        sets.append(f"pretrain.steps={STEPS}")
    else:
        sets += ["model.pretrained=false", f"model.base={base_config_dir(profile, base_config)}"]
    return sets


def data_dir(datasets: list[str], given: str | None, out: Path) -> str:
    """A data folder for the dry run: each file-based dataset from `given` (or $T5VAE_DATA_DIR)
    when it has one, else generated files in the Optimus layout (built-in grammar sentences)."""
    real = resolve_data_dir(given)
    root = out / "runs" / "dry-run-data"
    for name in datasets:
        ds = P.load_dataset(name)
        if ds.source != "files":
            continue
        dest = root / name
        if real is not None and (real / name / "train.txt").is_file():
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to((real / name).resolve(), target_is_directory=True)
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 1024), ("valid", 64), ("test", 64)):
            corpus = builtin_split(split, size=n)
            lines = [
                f"{label}\t{s}" if ds.labelled else s
                for s, label in zip(corpus.sentences, corpus.labels, strict=True)
            ]
            (dest / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return str(root)
