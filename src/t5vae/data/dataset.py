"""What a dataset is: where its text comes from, how long a sentence may be, its labels.

params/datasets/<name>.yaml is the registry (one file registers a dataset, no code needed); the
YAML layer (config/params.py) builds each file into a `DatasetParams`, which checks its values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from t5vae.data.tokenizer import TokenizerParams
from t5vae.utils.checks import check, check_choice

SOURCES = ("files", "hub", "builtin")


@dataclass
class HubSource:
    """Where a dataset is on the Hugging Face Hub (for `source: hub`; needs network)."""

    name: str = ""  # e.g. stanfordnlp/snli
    config: str | None = None
    text: str = "text"  # column with the sentence
    label: str | None = None  # column with a label, if any
    splits: dict = field(default_factory=lambda: {"train": "train", "valid": "validation",
                                                  "test": "test"})  # fmt: skip

    def __post_init__(self):
        check(bool(self.name), "name", "must name a Hub dataset")
        check(set(self.splits) == {"train", "valid", "test"}, "splits",
              "must map train, valid and test to the Hub's split names")  # fmt: skip


@dataclass
class DatasetParams:
    """A dataset: `files` (the Optimus layout), `hub` or `builtin` (the package's grammar)."""

    name: str = ""
    source: str = "files"
    max_length: int = 128
    labelled: bool = False  # files: each line is "label<TAB>text" (Yelp)
    label: str | None = None  # what the label means, for plots
    hub: HubSource | None = None  # the Hub version (required by source: hub)
    # SentencePiece settings for this corpus (override the profile's when it trains one)
    tokenizer: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.hub, dict):  # (a run file's stored parameters)
            self.hub = HubSource(**self.hub)
        bad = sorted(set(self.tokenizer) - {"vocab_size", "model_type"})
        check(not bad, "tokenizer", f"only vocab_size and model_type can be set here, got {bad}")
        if self.tokenizer:
            TokenizerParams(**{**asdict(TokenizerParams()), **self.tokenizer})  # validates values
        check_choice(self.source, SOURCES, "source")
        check(
            self.source != "hub" or self.hub is not None, "hub", "source: hub needs a hub: section"
        )
        check(self.max_length >= 2, "max_length", "must be >= 2")
