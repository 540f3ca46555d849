"""What tests import (not fixtures): the repository's paths, ../shared, a tiny T5 config.

Importable as `helpers` from every test folder (pyproject.toml: pytest's pythonpath = tests) and
from a helper script run as a subprocess (tests/grid/ddp_train.py adds this folder to sys.path).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from transformers import T5Config

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("T5VAE_SHARED_DIR", REPO.parent / "shared"))
T5_SMALL_DIR = SHARED / "models" / "t5-small"
PTB_DIR = SHARED / "data"


def load_script(path: str) -> ModuleType:
    """A script of the repository that is not a package module (scripts/, benchmarks/), by its path
    relative to the repository, imported under its file name."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_t5_config(vocab_size: int, **overrides) -> T5Config:
    """A 2+2-layer T5 of width 32: a T5VAE of it trains in milliseconds per step."""
    kw = dict(
        vocab_size=vocab_size, d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, d_kv=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        dropout_rate=0.1,
    )  # fmt: skip
    kw.update(overrides)
    return T5Config(**kw)
