"""Shared fixtures: a tokenizer trained on the built-in corpus, tiny T5 configs, ../shared paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import T5Config

from t5vae.data.corpora import builtin_split
from t5vae.data.tokenizer import train_sentencepiece
from t5vae.model.vae import T5VAE

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("T5VAE_SHARED_DIR", REPO.parent / "shared"))
T5_SMALL_DIR = SHARED / "models" / "t5-small"
PTB_DIR = SHARED / "data"


@pytest.fixture(autouse=True)
def _working_directory_unchanged():
    """Every test leaves the process where it found it: the nbval run after the tests opens
    tests/nbval_sanitize.cfg relative to it (a thread race in papermill's cwd= once moved it)."""
    before = os.getcwd()
    yield
    assert os.getcwd() == before, f"the test moved the working directory to {os.getcwd()}"


@pytest.fixture(scope="session")
def t5_small_dir() -> Path:
    if not (T5_SMALL_DIR / "config.json").is_file():
        pytest.skip(f"t5-small tokenizer/config not found at {T5_SMALL_DIR} (set T5VAE_SHARED_DIR)")
    return T5_SMALL_DIR


@pytest.fixture(scope="session")
def ptb_data_dir() -> Path:
    if not (PTB_DIR / "ptb" / "train.txt").is_file():
        pytest.skip(f"PTB not found at {PTB_DIR}/ptb (set T5VAE_SHARED_DIR)")
    return PTB_DIR


@pytest.fixture(scope="session")
def builtin_corpus():
    return builtin_split("train", size=2000)


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory, builtin_corpus):
    """A word-level SentencePiece tokenizer of the built-in corpus (no files from ../shared)."""
    return train_sentencepiece(
        builtin_corpus.sentences, 200, tmp_path_factory.mktemp("tok"), model_type="word"
    )


def tiny_t5_config(vocab_size: int, **overrides) -> T5Config:
    kw = dict(
        vocab_size=vocab_size, d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, d_kv=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        dropout_rate=0.1,
    )  # fmt: skip
    kw.update(overrides)
    return T5Config(**kw)


@pytest.fixture
def make_model(tokenizer):
    """make_model(seed=0, **T5VAE options) -> a tiny random-init T5VAE in eval mode."""

    def make(
        seed: int = 0, latent_dim: int = 8, pooling: str = "max", injection: str = "memory", **cfg
    ):
        torch.manual_seed(seed)
        model = T5VAE.from_base(
            tiny_t5_config(len(tokenizer), **cfg), latent_dim=latent_dim, pooling=pooling,
            injection=injection,
        )  # fmt: skip
        return model.eval()

    return make
