"""Sharing (model card, Hub round trip through a local folder, the network call isolated) and the
`t5vae` command on a smoke checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from t5vae import cli, hub
from t5vae.data.builtin import parse
from t5vae.model.vae import T5VAE
from t5vae.notebook import steps


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    spec = steps.make_spec("smoke", "builtin", "phase1", "max_pnone_frozen", root)
    steps.ensure_trained(spec, progress=False)
    steps.evaluate_run(spec, progress=False)
    return spec


def same_weights(a: T5VAE, b: T5VAE) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_training_checkpoints_carry_their_tokenizer(trained):
    model, tokenizer = hub.load(str(trained.best_dir))
    assert same_weights(model, steps.trained_model(trained))
    assert (
        tokenizer("the chef cooked a soup .").input_ids
        == steps.prepare_base(trained).tokenizer("the chef cooked a soup .").input_ids
    )


def test_export_writes_a_model_card_from_the_results_file(trained, tmp_path):
    folder = hub.export_run(trained, tmp_path / "export")
    names = {p.name for p in folder.iterdir()}
    assert {"t5vae_config.json", "model.safetensors", "README.md"} <= names
    card = (folder / "README.md").read_text()
    record = json.loads(trained.results_file.read_text())
    assert card.startswith("---\n") and "library_name: t5vae" in card and "license: mit" in card
    assert f"| `rec` | {record['metrics']['rec']:.4g} |" in card
    assert record["provenance"]["git_commit"] in card and "hub.load(" in card


def test_push_and_load_through_the_hub_mechanism(trained, tmp_path, monkeypatch):
    """push_run uploads the exported folder (HfApi replaced by a local folder: the network call is
    the only thing not run); from_pretrained / hub.load of the repo id download it back."""
    uploaded = tmp_path / "hub" / "me" / "t5vae-smoke"

    class FakeApi:
        def __init__(self, token=None):
            self.token = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return type("Repo", (), {"repo_id": repo_id})()

        def upload_folder(self, repo_id, folder_path, commit_message):
            shutil.copytree(folder_path, tmp_path / "hub" / repo_id)
            return f"https://huggingface.co/{repo_id}/commit/1"

    def fake_snapshot_download(repo_id, **kw):
        return str(tmp_path / "hub" / repo_id)

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    assert hub.push_run(trained, "me/t5vae-smoke").endswith("/commit/1")
    assert 'hub.load("me/t5vae-smoke")' in (uploaded / "README.md").read_text()
    model = T5VAE.from_pretrained("me/t5vae-smoke")
    assert same_weights(model, steps.trained_model(trained)) and not model.training
    model, tokenizer = hub.load("me/t5vae-smoke")
    assert tokenizer.eos_token_id == 1


def test_cli_evaluate_and_generate_on_a_checkpoint(trained, tmp_path, capsys):
    sentences = tmp_path / "s.txt"
    sentences.write_text(
        "the chef cooked a soup yesterday and it was lovely .\nthe team won the cup .\n"
    )
    ckpt = str(trained.best_dir)
    assert cli.main(["evaluate", ckpt, "--sentences", str(sentences), "--iw-samples", "3"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_sentences"] == 2 and metrics["nll"] > 0
    assert cli.main(["generate", ckpt, "--prior", "2", "--max-new-tokens", "8"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert (
        cli.main(
            [
                "generate",
                ckpt,
                "--interpolate",
                "the team won .",
                "the chef cooked .",
                "--steps",
                "3",
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert (
        cli.main(
            [
                "generate",
                ckpt,
                "--sentence",
                "the team won .",
                "--strategy",
                "sample",
                "--top-p",
                "0.9",
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_cli_shifts_an_attribute_and_scores_it_against_the_grammar(trained, capsys):
    ckpt, source = str(trained.best_dir), "the chef cooked a soup yesterday and it was lovely ."
    args = ["generate", ckpt, "--sentence", source, "--max-new-tokens", "16",
            "--attribute-sentences", "64"]  # fmt: skip
    assert cli.main([*args, "--shift", "sentiment=negative", "--alpha", "2"]) == 0
    out = capsys.readouterr()
    (line,) = out.out.strip().splitlines()
    scores = json.loads(out.err.strip().splitlines()[-1])
    assert scores["alpha"] == 2 and scores["n"] == 1
    assert scores["transfer_accuracy"] == (
        parse(line) is not None and parse(line)["sentiment"] == "negative"
    )
    with pytest.raises(SystemExit) as exit_:  # before the checkpoint is read
        cli.main(
            ["generate", "no/such/checkpoint", "--sentence", source, "--shift", "sentiment=happy"]
        )
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown attribute sentiment=happy" in err and "sentiment=positive|negative" in err
    with pytest.raises(SystemExit):
        cli.main(["generate", ckpt, "--prior", "2", "--shift", "tense=past"])


@pytest.mark.parametrize("command", ["reproduce", "train", "study", "evaluate", "generate", "push"])
def test_cli_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out
