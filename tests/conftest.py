"""Shared fixtures: a tokenizer trained on the built-in corpus, a tiny T5VAE, ../shared data.

Tests are grouped by what they exercise: tests/unit (one module or function, seconds; the subset
to run while editing), tests/grid (the grid, CLI, launchers, reference results: end to end),
tests/repo (the repository itself: packaging, README, notebooks' pairs, the layer contract).
Plain helpers live in tests/helpers.py (`from helpers import ...`), fixtures here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers import PTB_DIR, T5_SMALL_DIR, tiny_t5_config
from t5vae.data.corpora import builtin_split
from t5vae.data.tokenizer import train_sentencepiece
from t5vae.model.vae import T5VAE


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
