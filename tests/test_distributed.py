"""Training through accelerate with 2 CPU processes (gloo) equals one process with the same global
batch: each process takes its half of every global batch and DDP averages the gradients."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import tiny_t5_config
from t5vae.builtin_corpus import builtin_split
from t5vae.model import T5VAE
from t5vae.tokenizer import load_tokenizer
from t5vae.training import TrainConfig, train


def _train(out_dir: str, tok_dir: str) -> None:
    tokenizer = load_tokenizer(tok_dir)
    torch.manual_seed(0)
    # no dropout, z = mu, no denoising: the two runs differ only in how the batch is split
    model = T5VAE.from_base(tiny_t5_config(len(tokenizer), dropout_rate=0.0), latent_dim=8)
    sentences = builtin_split("train", size=64).sentences
    cfg = TrainConfig(phase="phase2", epochs=2, batch_size=16, lr=1e-3, sample_z=False, kl_threshold=0.1,
                      kl_schedule={"kind": "constant"}, progress=False, select_by="last")  # fmt: skip
    train(model, tokenizer, sentences, [], cfg, out_dir, resume=False)
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    (Path(out_dir) / f"ran_world{world}_rank{rank}").touch()


def test_two_processes_match_one_process(tmp_path, tokenizer):
    from accelerate import debug_launcher

    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    debug_launcher(_train, args=(str(tmp_path / "ddp"), str(tok_dir)), num_processes=2)
    _train(str(tmp_path / "single"), str(tok_dir))
    ddp = T5VAE.from_pretrained(tmp_path / "ddp" / "last").state_dict()
    single = T5VAE.from_pretrained(tmp_path / "single" / "last").state_dict()
    assert {p.name for p in (tmp_path / "ddp").glob("ran_*")} == {
        "ran_world2_rank0",
        "ran_world2_rank1",
    }
    torch.manual_seed(0)
    start = T5VAE.from_base(
        tiny_t5_config(len(tokenizer), dropout_rate=0.0), latent_dim=8
    ).state_dict()
    moved = 0
    for name, value in single.items():
        torch.testing.assert_close(ddp[name], value, atol=2e-5, rtol=1e-4, msg=name)
        moved += not torch.equal(value, start[name])
    assert moved > 10  # training did change the weights
