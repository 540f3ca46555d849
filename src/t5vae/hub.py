"""Sharing a trained run: a checkpoint folder (model + tokenizer) with a model card written from
the run's results file, pushed to the Hugging Face Hub, and loaded back from a folder or a repo.

    from t5vae import hub
    hub.push_run(spec, "me/t5vae-ptb-l0.5")          # needs network and a token
    model, tokenizer = hub.load("me/t5vae-ptb-l0.5")  # or a local folder
"""

from __future__ import annotations

import json
from pathlib import Path

from t5vae.evaluation.metrics import metric
from t5vae.model.vae import T5VAE, looks_like_repo_id

CARD_METRICS = ("nll", "ppl", "ppl_word", "neg_elbo", "rec", "kl", "mi", "au", "bleu", "distinct_2")


def checkpoint_folder(checkpoint: str, **download_kw) -> Path:
    """A local checkpoint folder, or the local copy of a Hub repository (downloaded: the only
    network call of this module)."""
    path = Path(checkpoint)
    if path.is_dir() or not looks_like_repo_id(str(checkpoint)):
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(checkpoint, **download_kw))


def load(checkpoint: str, tokenizer: str | None = None, **download_kw):
    """(model, tokenizer) from a checkpoint folder or Hub repository; the tokenizer is the one
    saved with the checkpoint unless `tokenizer` names another (a folder or Hub name)."""
    from t5vae.data.tokenizer import load_tokenizer

    folder = checkpoint_folder(checkpoint, **download_kw)
    model = T5VAE.from_pretrained(folder)
    if tokenizer is None and not any(
        (folder / f).is_file() for f in ("tokenizer_config.json", "spiece.model")
    ):
        raise FileNotFoundError(
            f"{folder} has no tokenizer files: pass tokenizer= (a folder or Hub name)"
        )
    return model, load_tokenizer(tokenizer or folder)


def model_card(record: dict, repo_id: str | None = None) -> dict:
    """The model card's fields (`model_card_kwargs` of save_pretrained / push_to_hub) from a
    results file: what the run is, its test metrics with their definitions, its provenance, how
    to load it."""
    prov, params = record["provenance"], record["provenance"]["params"]
    stage_params = params.get(record["stage"], {})
    rows = [f"| `{k}` | {record['metrics'][k]:.4g} | {metric(k).description} |"
            for k in CARD_METRICS if isinstance(record["metrics"].get(k), int | float)]  # fmt: skip
    name = repo_id or "path/to/checkpoint"
    body = "\n".join([
        f"# T5VAE: {record['label']} ({record['dataset']}, {record['stage']}, seed {record['seed']})", "",
        "A pretrained T5 finetuned into a sentence variational autoencoder with the two-phase scheme of "
        "Park & Lee, *Finetuning Pretrained Transformers into Variational Autoencoders* (Insights @ EMNLP "
        "2021), trained with the `t5vae` package.", "",
        "## Test metrics (per sentence, nats)", "", "| metric | value | definition |", "|---|---|---|",
        *rows, "",
        "## Training", "",
        f"- profile `{record['profile']}`, dataset `{record['dataset']}`, base model "
        f"`{params['profile']['model']['base']}`, latent_dim {params['profile']['model']['latent_dim']}",
        f"- {record['stage']} `{record['name']}`: `{json.dumps(stage_params.get('objective', {}))}`",
        f"- code: commit `{prov.get('git_commit')}`, torch {prov['versions'].get('torch')}, "
        f"transformers {prov['versions'].get('transformers')}; device {prov.get('device')}", "",
        "## Use", "", "```python", "from t5vae import hub", "from t5vae.evaluation.generation import reconstruct, sample_prior", "",
        f'model, tokenizer = hub.load("{name}")',
        'print(reconstruct(model, tokenizer, ["the chef cooked a soup ."]))',
        "print(sample_prior(model, tokenizer, 3))", "```", "",
    ])  # fmt: skip
    return {"body": body}


def export_run(spec, folder: str | Path) -> Path:
    """The run's selected checkpoint, its tokenizer and a model card from its results file, in
    `folder` (what push_run uploads)."""
    from t5vae.notebook.steps import prepare_base, trained_model
    from t5vae.report.results import read_results

    record = read_results(spec.results_file)
    model = trained_model(spec)
    tokenizer = prepare_base(spec, progress=False).tokenizer
    model.save_pretrained(folder, tokenizer=tokenizer, model_card_kwargs=model_card(record))
    return Path(folder)


def push_run(spec, repo_id: str, private: bool | None = None, token: str | None = None) -> str:
    """Upload export_run's folder to the Hub repository `repo_id` (created if needed)."""
    import tempfile

    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory() as tmp:
        folder = export_run(spec, Path(tmp) / "model")
        card = (folder / "README.md").read_text().replace("path/to/checkpoint", repo_id)
        (folder / "README.md").write_text(card)
        api = HfApi(token=token)
        repo = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        return str(
            api.upload_folder(
                repo_id=repo, folder_path=folder, commit_message=f"t5vae run {spec.key}"
            )
        )
