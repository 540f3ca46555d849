"""Tokenizers: the t5-small one (Hub or local files) or a SentencePiece model trained on the corpus.

A small vocabulary trained on the corpus is the offline default: with the 32k-piece t5-small
vocabulary the output softmax dominates a small model's training step on CPU.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, T5Tokenizer

from t5vae.utils.checks import check, check_choice

MODEL_TYPES = ("unigram", "bpe", "word", "char")  # SentencePiece's


@dataclass
class TokenizerParams:
    """Which tokenizer a run uses: the base model's, one trained on the corpus, or a folder."""

    source: str = (
        "base"  # "base" (the base model's), "sentencepiece" (trained on the corpus) or a dir
    )
    vocab_size: int = 8000
    model_type: str = "unigram"

    def __post_init__(self):
        check(self.vocab_size >= 10, "vocab_size", "must be >= 10")
        check_choice(self.model_type, MODEL_TYPES, "model_type")


def load_tokenizer(name_or_dir: str | os.PathLike):
    """A Hugging Face tokenizer from a Hub name ("t5-small") or a local directory."""
    return AutoTokenizer.from_pretrained(str(name_or_dir))


def train_sentencepiece(
    sentences: list[str],
    vocab_size: int,
    out_dir: str | os.PathLike,
    extra_ids: int = 32,
    model_type: str = "unigram",
):
    """Train a unigram SentencePiece model (pad=0, eos=1, unk=2 as in T5) and save it as a
    T5 tokenizer in `out_dir` with `extra_ids` sentinel tokens for span corruption.

    `model_type="word"` suits a closed-vocabulary corpus (the built-in one): SentencePiece's
    unigram trainer caps tiny vocabularies and then splits common words into letters.
    The vocabulary may come out smaller than `vocab_size` when the corpus has fewer pieces.
    Deterministic for the same sentences (single-threaded training).
    """
    import sentencepiece as spm

    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "spiece")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=prefix,
            vocab_size=vocab_size,
            model_type=model_type,
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
            character_coverage=1.0,
            num_threads=1,
            hard_vocab_limit=False,
            minloglevel=2,
        )  # fmt: skip
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=extra_ids)
    tokenizer.save_pretrained(str(out))
    return load_tokenizer(out)
