"""Helper of tests/grid/test_distributed.py (not a test): train a tiny T5VAE on the built-in corpus.

    accelerate launch --cpu --num_processes 2 tests/grid/ddp_train.py OUT TOKENIZER_DIR [options]

--deterministic: no dropout, z = mu, no denoising (runs differ only in how batches are split);
otherwise dropout, sampled z and token deletion, the random streams a resumed run must restore.
--interrupt-at N: every process raises KeyboardInterrupt at its N-th loss computation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers
from helpers import tiny_t5_config  # noqa: E402
from t5vae.data.corpora import builtin_split  # noqa: E402
from t5vae.data.tokenizer import load_tokenizer  # noqa: E402
from t5vae.model.objectives import KLScheduleConfig, Objective  # noqa: E402
from t5vae.model.vae import T5VAE  # noqa: E402
from t5vae.training import loop as training  # noqa: E402
from t5vae.training.config import TrainConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("tokenizer_dir")
    ap.add_argument("--deterministic", action="store_true")
    ap.add_argument("--interrupt-at", type=int)
    args = ap.parse_args()
    if args.interrupt_at:
        real_loss, calls = training.vae_loss, {"n": 0}

        def interrupted(*a, **k):
            calls["n"] += 1
            if calls["n"] == args.interrupt_at:
                raise KeyboardInterrupt
            return real_loss(*a, **k)

        training.vae_loss = interrupted
    tokenizer = load_tokenizer(args.tokenizer_dir)
    det = args.deterministic
    torch.manual_seed(0)
    model = T5VAE.from_base(
        tiny_t5_config(len(tokenizer), dropout_rate=0.0 if det else 0.1), latent_dim=8
    )
    sentences = builtin_split("train", size=64).sentences
    objective = Objective(kl_threshold=0.1, kl_schedule=KLScheduleConfig("constant"), sample_z=not det,
                          denoise_prob=0.0 if det else 0.3)  # fmt: skip
    cfg = TrainConfig(
        phase="phase2", epochs=2, batch_size=16, lr=1e-3, progress=False, select_by="last",
        objective=objective, checkpoint_every=2,
    )  # fmt: skip
    training.train(model, tokenizer, sentences, [], cfg, args.out_dir, resume=True)


if __name__ == "__main__":
    main()
