"""The paper-sized code path: t5-small shape (random init), its tokenizer, real PTB sentences."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import load_script
from t5vae.config import params as P
from t5vae.data.corpora import collate, encode, load_split
from t5vae.data.tokenizer import load_tokenizer
from t5vae.model.objectives import Objective, vae_loss
from t5vae.model.vae import T5VAE
from t5vae.training.config import TrainConfig
from t5vae.training.phases import set_trainable


def test_t5_small_forward_backward_on_ptb(t5_small_dir, ptb_data_dir):
    torch.manual_seed(0)
    tokenizer = load_tokenizer(t5_small_dir)
    sentences = load_split(P.load_dataset("ptb"), "valid", ptb_data_dir).sentences[:8]
    model = T5VAE.from_base(str(t5_small_dir), latent_dim=32, pooling="max", pretrained=False)
    set_trainable(model, TrainConfig(phase="phase2"))
    batch = collate(encode(tokenizer, sentences, max_length=128).ids, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] < 128  # dynamic padding, not 256
    terms = vae_loss(model, batch, kl_weight=0.5, objective=Objective(kl_threshold=3.0, denoise_prob=0.15),
                     generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.isfinite(terms["loss"])
    # a random 32k-way softmax costs about log(32101) = 10.4 nats per token
    n_tokens = int((batch["labels"] >= 0).sum())
    assert 9.0 < float(terms["rec"]) * len(sentences) / n_tokens < 12.0
    terms["loss"].backward()
    for name in ("to_mu.weight", "latent_to_memory.weight", "t5.encoder.block.5.layer.1.DenseReluDense.wi.weight",
                 "t5.decoder.block.5.layer.0.SelfAttention.q.weight", "t5.shared.weight"):  # fmt: skip
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


@pytest.mark.slow
def test_paper_dry_run_executes_one_run_per_stage(
    t5_small_dir, ptb_data_dir, tmp_path, monkeypatch
):
    """./reproduce.sh --profile paper --dry-run on PTB: the paper's code path (t5-small shape,
    batch 128, K = 500, every notebook, tables) runs end to end; peak memory per stage is reported."""
    from t5vae.grid import reproduce
    from t5vae.report.results import read_results, result_files

    monkeypatch.setenv("T5VAE_SHARED_DIR", str(t5_small_dir.parents[1]))
    args = ["--profile", "paper", "--dry-run", "--datasets", "ptb", "--phase1-variants", "max_pnone_frozen",
            "--techniques", "l0.5_pnone", "--output-root", str(tmp_path), "--data-dir", str(ptb_data_dir),
            "--set", "data.test_size=2", "--set", "data.valid_size=2"]  # CI: 2 sentences x K = 500  # fmt: skip
    assert reproduce.main(args) == 0
    (folder,) = (tmp_path / "results").iterdir()
    assert folder.name.startswith("paper+")
    records = [read_results(p) for p in result_files(folder)]
    assert {r["run_id"] for r in records} == {"phase1-max_pnone_frozen", "phase2-l0.5_pnone"}
    for r in records:
        prof = r["provenance"]["params"]["profile"]
        assert prof["phase2"]["batch_size"] == 128 and prof["eval"]["iw_samples"] == 500
        assert r["metrics"]["n_sentences"] == 2 and r["history"][-1]["step"] == 2
        assert r["provenance"]["peak_rss_mb"] > 100
    timing = (folder / "timing.md").read_text()
    assert "| phase1 | 1 |" in timing and "| phase2 | 1 |" in timing and "peak RSS" in timing
    assert (folder / "tables.md").is_file() and (folder / "released.md").is_file()
    # the paper's PTB rows beside the published ones, with the definitions that differ said
    tables = (folder / "tables.md").read_text()
    assert "## ptb: next to the published numbers" in tables and "| LSTM-LM | optimus2020" in tables
    assert "| test sentences | 2 | 3,761 | **differs** |" in tables
    assert "| K of the IW-NLL (NLL, PPL) | 500 | 500 | yes |" in tables


@pytest.mark.slow
def test_paper_plan_runs_offline_from_the_shared_config(
    t5_small_dir, ptb_data_dir, tmp_path, monkeypatch
):
    """./reproduce.sh --profile paper --plan without the Hub: t5-small's config and tokenizer from
    $T5VAE_SHARED_DIR (random weights: the plan times shapes), real PTB. Batch and K made small
    here (the full plan takes minutes per batch on this CPU: README)."""
    from t5vae.grid import reproduce

    monkeypatch.setenv("T5VAE_SHARED_DIR", str(t5_small_dir.parents[1]))
    args = ["--profile", "paper", "--plan", "--datasets", "ptb", "--output-root", str(tmp_path),
            "--data-dir", str(ptb_data_dir), "--set", "phase1.batch_size=4", "--set", "phase2.batch_size=4",
            "--set", "eval.iw_samples=4"]  # fmt: skip
    assert reproduce.main(args) == 0
    (plan,) = (tmp_path / "results").rglob("plan.md")
    text = plan.read_text()
    assert (
        text.startswith("# Plan: paper")
        and "| ptb | phase1 |" in text
        and "| ptb | phase2 |" in text
    )


def test_gpu_check_script_runs_here_in_a_tiny_form(t5_small_dir, tmp_path):
    """benchmarks/gpu_check.py runs with one command; here on the CPU with 2 steps of batch 4 and
    4 sentences (on a GPU: the defaults, batch 128, 50 steps, K = 500)."""
    gpu_check = load_script("benchmarks/gpu_check.py")
    report = gpu_check.main(["--device", "cpu", "--base", str(t5_small_dir), "--batch-size", "4", "--steps", "2",
                             "--sentences", "2", "--iw-samples", "3", "--out", str(tmp_path / "g.json")])  # fmt: skip
    assert (
        report["train_fp32"]["sentences_per_s"] > 0 and report["train_bf16"]["sentences_per_s"] > 0
    )
    assert set(report["eval_bf16_minus_fp32"]) == {"nll", "rec", "kl", "mi"}
    assert (tmp_path / "g.json").is_file() and not report["pretrained_weights"]


# the field_gpu profile made tiny for the CPU: the same stages, runs and code path
TINY_FIELD = ["model.t5_overrides.d_model=32", "model.t5_overrides.d_ff=64", "model.t5_overrides.num_layers=1",
              "model.t5_overrides.num_decoder_layers=1", "model.t5_overrides.num_heads=2",
              "model.t5_overrides.d_kv=16", "pretrain.steps=2", "pretrain.train_size=200",
              "pretrain.batch_size=8", "data.train_size=32", "data.valid_size=8", "data.test_size=8",
              "phase1.max_steps=2", "phase2.max_steps=2", "phase1.batch_size=8", "phase2.batch_size=8",
              "eval.iw_samples=2", "eval.n_prior_samples=4", "eval.batch_size=8"]  # fmt: skip


def test_field_gpu_script_runs_here_in_a_tiny_form(ptb_data_dir, tmp_path):
    """benchmarks/field_gpu.py (the field profile at t5-small's shape, for one GPU) trains and
    evaluates every run of its profile in one process (its own, as on the GPU machine: accelerate
    fixes one precision per process), with PTB, and writes the results, the tables beside the
    published PTB rows and its timing; a run past the budget is left out."""
    import json
    import subprocess
    import sys

    from helpers import REPO

    sets = [x for o in TINY_FIELD for x in ("--set", o)]

    def run(out, *extra):
        cmd = [sys.executable, str(REPO / "benchmarks" / "field_gpu.py"), "--data-dir",
               str(ptb_data_dir), "--output-root", str(out), *sets, *extra]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        return json.loads((out / "field_gpu_timing.json").read_text())

    timing = run(tmp_path)
    runs = {r["run"] for r in timing["runs"]}
    assert runs == {"ptb/seed0/phase1-max_pnone_unfrozen", "ptb/seed0/phase1-max_p0.15_unfrozen",
                    *(f"ptb/seed0/phase2-{t}" for t in ("vanilla", "autoencoder", "lnone_pnone", "l0.5_pnone",
                                                        "l3_p0.15", "lnone_p0.15"))}  # fmt: skip
    assert timing["base_s"] > 0 and timing["left_out"] == []
    (results,) = (tmp_path / "results").glob("field_gpu+*")  # --set values: a folder of their own
    tables = (results / "tables.md").read_text()
    assert "ptb: next to the published numbers" in tables and "LSTM" in tables
    late = run(tmp_path / "late", "--budget-s", "0")
    assert late["runs"] == [] and len(late["left_out"]) == 8


def test_scaling_benchmark_writes_its_measurements_and_figure(t5_small_dir, tmp_path):
    """benchmarks/bench_vae.py --scaling-only (benchmark 6): seconds by sentence length, by K and
    by corpus size, written to --out (before anything is printed) with the figure beside it."""
    import json
    import os
    import subprocess
    import sys

    from helpers import REPO

    out = tmp_path / "scaling.json"
    env = {**os.environ, "T5VAE_SHARED_DIR": str(t5_small_dir.parents[1])}
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_vae.py"), "--model", "tiny", "--scaling-only",
                    "--repeats", "1", "--eval-sentences", "8", "--out", str(out)], check=True, env=env,
                   capture_output=True, timeout=600)  # fmt: skip
    result = json.loads(out.read_text())["results"]["6_scaling"]
    assert [int(k) for k in result["length"]] == [16, 32, 64, 128]
    assert [int(k) for k in result["K"]] == [1, 10, 50, 100]
    assert len(result["corpus"]) == 3
    assert all(v > 0 for part in result.values() for v in part.values())
    assert (tmp_path / "scaling.png").is_file()


@pytest.mark.slow
def test_the_field_profile_runs_in_a_smoke_sized_form(ptb_data_dir, tmp_path):
    """./reproduce.sh --profile field, cut to a few sentences and steps: its base is pretrained
    under bf16 on PTB, phase 1 feeds phase 2, and its tables put PTB's published rows beside it."""
    from t5vae.grid import reproduce
    from t5vae.report.results import read_results, result_files

    args = ["--profile", "field", "--techniques", "lnone_pnone", "--output-root", str(tmp_path),
            "--data-dir", str(ptb_data_dir), "--jobs", "2",
            *[a for kv in ("data.train_size=128", "data.valid_size=32", "data.test_size=32",
                           "pretrain.steps=3", "phase1.epochs=1", "phase2.epochs=1",
                           "eval.iw_samples=2", "eval.n_prior_samples=4") for a in ("--set", kv)]]  # fmt: skip
    assert reproduce.main(args) == 0
    (folder,) = (tmp_path / "results").iterdir()
    records = {read_results(p)["run_id"]: read_results(p) for p in result_files(folder)}
    assert set(records) == {"phase1-max_pnone_unfrozen", "phase2-lnone_pnone"}
    prof = records["phase2-lnone_pnone"]["provenance"]["params"]["profile"]
    assert prof["pretrain"]["mixed_precision"] == prof["phase2"]["mixed_precision"] == "bf16"
    assert prof["model"]["t5_overrides"]["d_model"] == 256
    tables = (folder / "tables.md").read_text()
    assert "## ptb: next to the published numbers" in tables
    assert "| K of the IW-NLL (NLL, PPL) | 2 | 500 | **differs** |" in tables
    # the best row's interpolation, made from its checkpoint by the grid and shown in literature.md:
    # greedy from mu, so its ends are that run's own reconstructions of the two sentences
    found = json.loads((folder / "interpolation.json").read_text())["ptb"]
    pairs = records["phase2-lnone_pnone"]["examples"]["reconstructions"]
    assert (found["run_id"], found["a"], found["b"]) == (
        "phase2-lnone_pnone",
        pairs[0]["input"],
        pairs[1]["input"],
    )
    assert found["t"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(found["path"]) == 5
    assert [found["path"][0], found["path"][-1]] == [
        pairs[0]["reconstruction"],
        pairs[1]["reconstruction"],
    ]
    literature = (folder / "literature.md").read_text()
    assert "Its interpolation between the posterior means" in literature
    assert "- t = 0.50: `" in literature
