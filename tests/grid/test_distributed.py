"""Training through `accelerate launch` with 2 CPU processes (gloo).

Two processes equal one process with the same global batch (each takes its half of every global
batch and DDP averages the gradients); a 2-process run interrupted mid-epoch and launched again
ends with the weights of an uninterrupted 2-process run (each process's random streams are in the
checkpoint); `python -m t5vae.grid.train_run` trains a run of the grid under `accelerate launch`.
The processes are launched as subprocesses: forking this (multi-threaded) test process would
deadlock OpenMP in the children.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import torch

from helpers import tiny_t5_config
from t5vae.model.vae import T5VAE

HERE = Path(__file__).resolve().parent
HELPER = HERE / "ddp_train.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], processes: int = 2, check: bool = True):
    """`accelerate launch` on the CPU with `processes` processes (1: plain python)."""
    if processes == 1:
        cmd = [sys.executable, *args]
    else:
        # as the README says for a machine without GPUs (`--cpu` would start one process)
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
               str(processes), "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()), *args]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return T5VAE.from_pretrained(run_dir / "last").state_dict()


def assert_same_weights(got: dict, want: dict, **tol) -> None:
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, msg=name, **tol)


def test_two_processes_match_one_process(tmp_path, tokenizer):
    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    launch([str(HELPER), str(tmp_path / "ddp"), str(tok_dir), "--deterministic"], processes=2)
    launch([str(HELPER), str(tmp_path / "single"), str(tok_dir), "--deterministic"], processes=1)
    for run, world in (("ddp", 2), ("single", 1)):
        state = torch.load(tmp_path / run / "last" / "train_state.pt", weights_only=False)
        assert len(state["rng_per_process"]) == world, run
    ddp, single = weights(tmp_path / "ddp"), weights(tmp_path / "single")
    assert_same_weights(ddp, single, atol=2e-5, rtol=1e-4)
    torch.manual_seed(0)
    start = T5VAE.from_base(
        tiny_t5_config(len(tokenizer), dropout_rate=0.0), latent_dim=8
    ).state_dict()
    moved = sum(not torch.equal(v, start[k]) for k, v in single.items())
    assert moved > 10  # training did change the weights


def test_two_process_run_resumed_mid_epoch_matches_uninterrupted(tmp_path, tokenizer):
    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    launch([str(HELPER), str(tmp_path / "ref"), str(tok_dir)], processes=2)
    # 64 sentences, global batch 16: 4 steps per epoch, checkpoints every 2 steps; the 7th loss is
    # in epoch 2, after the step-6 checkpoint
    cut = launch([str(HELPER), str(tmp_path / "cut"), str(tok_dir), "--interrupt-at", "7"],
                 processes=2, check=False)  # fmt: skip
    assert cut.returncode != 0 and "KeyboardInterrupt" in cut.stderr
    state = torch.load(tmp_path / "cut" / "last" / "train_state.pt", weights_only=False)
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (1, 2, 6)
    assert len(state["rng_per_process"]) == 2
    # each process's streams are needed: resuming the unfinished run in 1 process is refused
    shutil.copytree(tmp_path / "cut", tmp_path / "cut_copy")
    one = launch([str(HELPER), str(tmp_path / "cut_copy"), str(tok_dir)], processes=1, check=False)
    assert one.returncode != 0 and "was saved by 2 processes" in one.stderr
    launch([str(HELPER), str(tmp_path / "cut"), str(tok_dir)], processes=2)
    assert_same_weights(weights(tmp_path / "cut"), weights(tmp_path / "ref"))


def test_train_run_cli_under_accelerate_launch(tmp_path):
    """The grid's CLI under 2 processes: base model built once, phase 1 then phase 2 trained."""
    args = ["-m", "t5vae.grid.train_run", "--profile", "smoke", "--dataset", "builtin",
            "--stage", "phase2", "--name", "l0.5_p0.15", "--output-root", str(tmp_path)]  # fmt: skip
    proc = launch(args, processes=2)
    runs = tmp_path / "runs" / "smoke" / "builtin" / "seed0"
    for stage in ("phase1/max_p0.15_frozen", "phase2/l0.5_p0.15"):
        state = torch.load(runs / stage / "last" / "train_state.pt", weights_only=False)
        assert state["finished"] and len(state["rng_per_process"]) == 2, stage
        assert (runs / stage / "best" / "model.safetensors").is_file(), stage
    assert "phase2/l0.5_p0.15" in proc.stdout
    # the notebooks (one process) then find the run trained: nothing is trained again
    from t5vae.notebook import steps

    before = (runs / "phase2/l0.5_p0.15/best/model.safetensors").stat().st_mtime_ns
    spec = steps.make_spec("smoke", "builtin", "phase2", "l0.5_p0.15", tmp_path)
    result = steps.ensure_trained(spec, progress=False)
    assert len(result.history) == spec.profile.phase2.epochs
    assert (runs / "phase2/l0.5_p0.15/best/model.safetensors").stat().st_mtime_ns == before
