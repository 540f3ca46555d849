"""The base's span-corruption pretraining: its cache key and bfloat16 autocast."""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict

import pytest
import torch
from transformers import T5ForConditionalGeneration

from helpers import REPO, tiny_t5_config
from t5vae.config import params as P
from t5vae.config.run import make_spec
from t5vae.data.corpora import encode
from t5vae.training import pretrain
from t5vae.utils.identity import decisive_profile


def test_float32_keeps_the_cache_key_of_bases_built_before_the_option(tokenizer, builtin_corpus):
    sents = builtin_corpus.sentences[:50]
    config = tiny_t5_config(len(tokenizer)).to_diff_dict()
    params = dict(steps=5, batch_size=8, lr=1e-3, noise_density=0.15, mean_span_length=3.0,
                  max_length=128)  # fmt: skip
    before = pretrain.cache_key(sents, tokenizer, config, params, 0)
    bf16 = pretrain.cache_key(sents, tokenizer, config, {**params, "mixed_precision": "bf16"}, 0)
    assert before != bf16
    # a profile at "no" keeps the identity it had before the field existed; bf16 is decisive
    quick = asdict(P.load_profile("quick"))
    assert "mixed_precision" not in decisive_profile(quick)["pretrain"]
    quick["pretrain"]["mixed_precision"] = "bf16"
    assert decisive_profile(quick)["pretrain"]["mixed_precision"] == "bf16"


def test_float32_keeps_the_base_folder_of_bases_built_before_the_option(tmp_path):
    """The base folder's hash (RunSpec.base_dir) leaves mixed_precision out at "no": the folder
    notebook 00 printed before the option existed (its stored output) is the one resolved now."""
    stored = json.loads((REPO / "notebooks" / "00_base_model.ipynb").read_text())
    printed = "".join(text for cell in stored["cells"] for out in cell.get("outputs", [])
                      for text in out.get("text", []))  # fmt: skip
    folder = re.search(r"runs/base/(builtin-[0-9a-f]{12})/", printed).group(1)
    spec = make_spec("smoke", "builtin", "base", "base", tmp_path)
    assert spec.base_dir.name == folder
    bf16 = make_spec("smoke", "builtin", "base", "base", tmp_path,
                     overrides=["pretrain.mixed_precision=bf16"])  # fmt: skip
    assert bf16.base_dir.name != folder


def _losses(tokenizer, sentences, mixed_precision: str) -> list[float]:
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config(len(tokenizer), dropout_rate=0.0))
    ids = [x[:-1] for x in encode(tokenizer, sentences, 64).ids]
    history = pretrain.span_corruption_loop(model, tokenizer, ids, random.Random(0), 50, 16, 1e-3,
                                            0.15, 3.0, False, mixed_precision)  # fmt: skip
    return [h["loss"] for h in history]


def test_bf16_autocast_trains_like_float32(tokenizer, builtin_corpus):
    """The same batches under bfloat16 autocast: the loss curve within bf16's rounding of float32's."""
    sents = builtin_corpus.sentences[:400]
    fp32, bf16 = _losses(tokenizer, sents, "no"), _losses(tokenizer, sents, "bf16")
    assert fp32 != bf16  # autocast was on
    assert fp32[-1] < fp32[0] and bf16[-1] < bf16[0]
    assert bf16 == pytest.approx(fp32, rel=0.05)
