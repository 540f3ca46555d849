"""Corpora: Optimus layout, strict reading with clear errors, tokenisation, dynamic batching."""

from __future__ import annotations

import pytest

from t5vae.config import params as P
from t5vae.data.builtin import FACTORS
from t5vae.data.corpora import (
    DataError,
    batch_indices,
    builtin_split,
    collate,
    encode,
    load_split,
    read_lines,
)
from t5vae.data.tokenizer import train_sentencepiece


def split(name: str, which: str, data_dir=None):
    """A split of a registered dataset (params/datasets/<name>.yaml)."""
    return load_split(P.load_dataset(name), which, data_dir)


def write_split(root, name, split, data: bytes):
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / f"{split}.txt").write_bytes(data)


def test_blank_lines_bom_and_crlf(tmp_path):
    write_split(tmp_path, "ptb", "train", b"\xef\xbb\xbfa b c\r\n\r\n   \r\nd e\n\t\nf\n")
    c = split("ptb", "train", tmp_path)
    assert c.sentences == ["a b c", "d e", "f"]
    assert c.n_blank_skipped == 3
    assert c.labels is None


def test_invalid_utf8_names_file_and_line(tmp_path):
    write_split(tmp_path, "ptb", "valid", b"fine\nalso fine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"valid\.txt:3: invalid UTF-8"):
        split("ptb", "valid", tmp_path)


def test_yelp_labels_and_missing_label(tmp_path):
    write_split(tmp_path, "yelp", "train", b"1\tgreat food .\n0\tawful service .\n")
    c = split("yelp", "train", tmp_path)
    assert c.sentences == ["great food .", "awful service ."] and c.labels == ["1", "0"]
    write_split(tmp_path, "yelp", "test", b"1\tok .\nno label here\n")
    with pytest.raises(DataError, match=r"test\.txt:2: expected 'label<TAB>text'"):
        split("yelp", "test", tmp_path)


def test_empty_split_missing_files_and_unknown_names(tmp_path, monkeypatch):
    write_split(tmp_path, "snli", "train", b"\n  \n")
    with pytest.raises(DataError, match="no sentences"):
        split("snli", "train", tmp_path)
    with pytest.raises(DataError, match=r"snli/valid\.txt does not exist.*--data-dir"):
        split("snli", "valid", tmp_path)
    with pytest.raises(DataError, match=r"yahoo does not exist"):
        split("yahoo", "train", tmp_path)
    with pytest.raises(P.ParamsError, match="known datasets: builtin, ptb, snli, yahoo, yelp"):
        split("wikitext", "train", tmp_path)
    monkeypatch.delenv("T5VAE_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="no data directory"):
        split("ptb", "train")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    write_split(tmp_path, "ptb", "test", b"x y\n")
    monkeypatch.setenv("T5VAE_DATA_DIR", str(tmp_path))
    assert split("ptb", "test").sentences == ["x y"]


def test_read_lines_whitespace_is_stripped(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"  padded line  \n")
    assert read_lines(p)[0] == ["padded line"]


def test_encode_appends_eos_and_counts_truncation(tokenizer):
    sents = ["the chef cooked a soup .", " ".join(["the"] * 50)]
    enc = encode(tokenizer, sents, max_length=10)
    assert all(x[-1] == tokenizer.eos_token_id for x in enc.ids)
    assert len(enc.ids[0]) == 7  # 6 words + EOS (word-level tokenizer)
    assert len(enc.ids[1]) == 10 and enc.n_truncated == 1
    with pytest.raises(ValueError, match="max_length"):
        encode(tokenizer, sents, max_length=1)


def test_collate_pads_to_the_batch_not_to_256():
    b = collate([[5, 6, 1], [7, 1], [8, 9, 10, 11, 1]])
    assert b["input_ids"].shape == (3, 5)
    assert b["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert b["labels"][1].tolist() == [7, 1, -100, -100, -100]


def test_batch_indices_cover_each_example_once_and_bucket():
    lengths = [(i * 37) % 50 + 1 for i in range(1000)]
    for shuffle in (False, True):
        batches = batch_indices(lengths, 32, shuffle=shuffle, seed=4)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(1000))
        assert all(len(b) == 32 for b in batches[:-1]) or shuffle
    assert batch_indices(lengths, 32, shuffle=True, seed=4) == batch_indices(
        lengths, 32, shuffle=True, seed=4
    )
    assert batch_indices(lengths, 32, shuffle=True, seed=4) != batch_indices(
        lengths, 32, shuffle=True, seed=5
    )

    def padding(batches):
        return sum(
            max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches
        )

    bucketed = padding(batch_indices(lengths, 32, shuffle=True, seed=0))
    plain = padding(batch_indices(lengths, 32, shuffle=True, seed=0, bucket=False))
    assert bucketed < plain / 5


def test_builtin_corpus_is_deterministic_with_factors():
    a, b = builtin_split("valid", size=50), builtin_split("valid", size=50)
    assert a.sentences == b.sentences and a.factors == b.factors
    assert builtin_split("test", size=50).sentences != a.sentences
    for s, f in zip(a.sentences, a.factors, strict=True):
        assert set(f) == set(FACTORS)
        assert (" , " in s) == (f["length"] == "long")
        assert {"past": "yesterday", "present": "today", "future": "tomorrow"}[f["tense"]] in s


def test_real_ptb_split(ptb_data_dir):
    c = split("ptb", "train", ptb_data_dir)
    assert len(c) == 42068 and c.n_blank_skipped == 0
    assert sum(len(s.split()) for s in c.sentences) / len(c) == pytest.approx(21.1, abs=0.05)


def test_encode_cache_stores_arrow_and_does_not_tokenise_again(tokenizer, tmp_path, monkeypatch):
    import t5vae.data.corpora as data

    sentences = builtin_split("valid", size=50).sentences
    plain = encode(tokenizer, sentences, 8)
    other = train_sentencepiece(sentences, 50, tmp_path / "tok2", model_type="word")
    other_plain = encode(other, sentences, 8)
    first = encode(tokenizer, sentences, 8, cache_dir=tmp_path)
    (entry,) = (p for p in tmp_path.iterdir() if p.name != "tok2")
    assert list(entry.glob("*.arrow")), "the ids are stored as an Arrow dataset"
    calls = {"n": 0}
    real = data._tokenize

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(data, "_tokenize", counting)
    second = encode(tokenizer, sentences, 8, cache_dir=tmp_path)
    assert calls["n"] == 0
    assert plain.ids == first.ids == second.ids
    assert plain.n_truncated == first.n_truncated == second.n_truncated > 0
    # anything that changes the output changes the key: sentences, max_length, tokenizer
    encode(tokenizer, sentences[:-1], 8, cache_dir=tmp_path)
    encode(tokenizer, sentences, 9, cache_dir=tmp_path)
    assert encode(other, sentences, 8, cache_dir=tmp_path).ids == other_plain.ids
    assert calls["n"] == 3
    assert len([p for p in tmp_path.iterdir() if p.name != "tok2"]) == 4


def test_damaged_encode_cache_is_recomputed_not_trusted(tokenizer, tmp_path):
    sentences = builtin_split("valid", size=30).sentences
    want = encode(tokenizer, sentences, 64).ids
    encode(tokenizer, sentences, 64, cache_dir=tmp_path)
    (arrow,) = tmp_path.glob("*/*.arrow")
    arrow.write_bytes(arrow.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        assert encode(tokenizer, sentences, 64, cache_dir=tmp_path).ids == want
    assert encode(tokenizer, sentences, 64, cache_dir=tmp_path).ids == want  # rewritten
