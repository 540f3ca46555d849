"""Published numbers the package's tables put beside its own: params/published/<dataset>.yaml.

Each file holds the rows of the literature for one dataset, as printed (values never converted),
each with its source, the table it was read from and the caveat printed there; the definitions
the sources used (test set, K of the importance-weighted bound, what PPL divides by, AU's δ, the
MI estimator, units), which report/published.py compares with this package's own, one by one;
`park_lee2021:`, the slot for the reproduced paper's own rows (empty until someone enters
them); and `targets:`, where this package's runs should land next to those rows (each bound names
a printed row, so that no published number is written twice). A row without a source, a table or
a known metric, or a target naming a row or metric the file lacks, is an error naming the file
and the entry.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

from t5vae.config.schema import build, read_yaml
from t5vae.utils.checks import ParamsError, check, check_choice

# a published metric -> this package's metric of the same name and unit (report/published.py
# compares their definitions); ppl is per word in the literature, so our ppl_word
PUBLISHED_METRICS = {"nll": "nll", "ppl": "ppl_word", "neg_elbo": "neg_elbo", "rec": "rec",
                     "kl": "kl", "mi": "mi", "au": "au"}  # fmt: skip
MI_AGGREGATES = ("test set", "per batch", "unstated")  # where q(z) = mean of q(z|x_n) runs over
# a target's bound: ours OP published
TARGET_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass
class PublishedSource:
    citation: str = ""  # authors, title, venue, pages
    read_from: str = ""  # which tables, from which version of the paper

    def __post_init__(self):
        check(bool(self.citation), "citation", "must cite the paper")
        check(bool(self.read_from), "read_from", "must say where the numbers were read")


@dataclass
class PublishedDefinitions:
    """How the sources computed their numbers, as they state them."""

    test_sentences: int | None = None  # null: not stated
    iw_samples: int = 500  # K of the importance-weighted NLL (Burda et al. 2016)
    ppl_per: str = "word"  # PPL = exp(sum NLL / sum units): "word" or "subword"
    ppl_counts_eos: bool = True  # one end-of-sentence token per sentence counted as a unit
    au_delta: float = 0.01  # active unit: Var_x(E_q[z_d|x]) >= delta
    mi_aggregate: str = "unstated"
    mi_note: str = ""  # the estimator in words, with its source
    latent_dim: int = 32
    units: str = "nats per sentence"

    def __post_init__(self):
        check(self.test_sentences is None or self.test_sentences >= 1, "test_sentences",
              "must be >= 1 or null")  # fmt: skip
        check(self.iw_samples >= 1, "iw_samples", "must be >= 1")
        check_choice(self.ppl_per, ("word", "subword"), "ppl_per")
        check(self.au_delta > 0, "au_delta", "must be > 0")
        check_choice(self.mi_aggregate, MI_AGGREGATES, "mi_aggregate")
        check(self.latent_dim >= 1, "latent_dim", "must be >= 1")


@dataclass
class PublishedRow:
    """One printed table row: the model, its setting, the metrics as printed, where and caveat."""

    model: str = ""
    source: str = ""  # a key of the file's `sources:`
    table: str | int = ""
    setting: str = ""  # e.g. "λ = 0.5" (the source's hyperparameter)
    metrics: dict = field(default_factory=dict)  # PUBLISHED_METRICS -> value as printed
    caveat: str = ""  # an inconsistency printed in the source, or a note on comparability

    def __post_init__(self):
        check(bool(self.model), "model", "must name the model")
        check(bool(self.source), "source", "must name its source (a key of sources:)")
        check(self.table not in ("", None), "table", "must name the table it was read from")
        check(bool(self.metrics), "metrics", "must give at least one number")
        for key, value in self.metrics.items():
            check_choice(key, tuple(PUBLISHED_METRICS), f"metrics.{key}")
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            check(ok, f"metrics.{key}", f"must be a number, got {value!r}")

    @property
    def label(self) -> str:
        return f"{self.model}, {self.setting}" if self.setting else self.model


@dataclass
class TargetBound:
    """One condition of a target: this package's `metric` OP the printed value of row `row`."""

    metric: str = ""  # a key of PUBLISHED_METRICS
    op: str = ""  # a key of TARGET_OPS
    row: str = ""  # the label of one of the file's rows (PublishedRow.label)

    def __post_init__(self):
        check_choice(self.metric, tuple(PUBLISHED_METRICS), "metric")
        check_choice(self.op, tuple(TARGET_OPS), "op")
        check(bool(self.row), "row", "must name one of the file's rows by its label")


@dataclass
class PublishedTarget:
    """Where one of this package's phase-2 runs should land: every bound met by its mean over
    seeds on the test set (report/published.py says met or by how much it is missed)."""

    name: str = ""  # what meeting it would show, in words
    technique: str = ""  # params/phase2/<technique>.yaml
    require: list = field(default_factory=list)  # TargetBound

    def __post_init__(self):
        check(bool(self.name), "name", "must say what the target shows")
        check(bool(self.technique), "technique", "must name a phase-2 technique")
        check(bool(self.require), "require", "must give at least one bound")


@dataclass
class PublishedResults:
    """params/published/<dataset>.yaml."""

    name: str = ""  # the dataset (params/datasets/<name>.yaml)
    description: str = ""
    definitions: PublishedDefinitions = field(default_factory=PublishedDefinitions)
    sources: dict = field(default_factory=dict)  # id -> PublishedSource
    rows: list = field(default_factory=list)  # PublishedRow
    park_lee2021: list = field(default_factory=list)  # the reproduced paper's rows (PublishedRow)
    targets: list = field(default_factory=list)  # PublishedTarget

    def row(self, label: str) -> PublishedRow:
        return next(r for r in self.rows if r.label == label)


def load_published_file(path) -> PublishedResults:
    """One file, validated: every row's source is one of its sources."""
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise ParamsError(f"{path}: name: must equal the file name {path.stem!r}")
    sources = data.pop("sources", None) or {}
    rows = {key: data.pop(key, None) or [] for key in ("rows", "park_lee2021")}
    targets = data.pop("targets", None) or []
    if not isinstance(sources, dict):
        raise ParamsError(f"{path}: sources: expected a mapping of id -> citation")
    out = build(PublishedResults, data, str(path))
    out.sources = {
        k: build(PublishedSource, v, str(path), f"sources.{k}.") for k, v in sources.items()
    }
    for key, items in rows.items():
        if not isinstance(items, list):
            raise ParamsError(f"{path}: {key}: expected a list of rows")
        built = [
            build(PublishedRow, item, str(path), f"{key}[{i}].") for i, item in enumerate(items)
        ]
        for i, row in enumerate(built):
            if row.source not in out.sources:
                raise ParamsError(f"{path}: {key}[{i}].source: {row.source!r} is not one of the "
                                  f"file's sources ({', '.join(sorted(out.sources)) or 'none'})")  # fmt: skip
        setattr(out, key, built)
    out.targets = _targets(path, targets, out)
    return out


def _targets(path, items, pub: PublishedResults) -> list[PublishedTarget]:
    """targets:, each bound checked against the row it names (technique names: config/params.py)."""
    if not isinstance(items, list):
        raise ParamsError(f"{path}: targets: expected a list of targets")
    out = []
    for i, item in enumerate(items):
        target = build(PublishedTarget, item, str(path), f"targets[{i}].")
        target.require = [_bound(path, f"targets[{i}].require[{j}].", bound, pub)
                          for j, bound in enumerate(target.require)]  # fmt: skip
        out.append(target)
    return out


def _bound(path, where: str, data, pub: PublishedResults) -> TargetBound:
    bound = build(TargetBound, data, str(path), where)
    labels = [r.label for r in pub.rows]
    if bound.row not in labels:
        raise ParamsError(f"{path}: {where}row: {bound.row!r} is not a row of the file "
                          f"({'; '.join(labels)})")  # fmt: skip
    if bound.metric not in pub.row(bound.row).metrics:
        raise ParamsError(f"{path}: {where}metric: the row {bound.row!r} prints no {bound.metric}")
    return bound
