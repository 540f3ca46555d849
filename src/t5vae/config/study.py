"""Studies: tables whose rows are runs of the grid under different settings (params/studies/).

params/studies/<name>.yaml lists rows, each a run (`phase1/<variant>` or `phase2/<technique>`) of
a profile with `--set` overrides; `load_study` validates every row's parameters (errors name the
file and the row). grid/study.py runs the rows, report/study.py writes the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from t5vae.config import params as P
from t5vae.config import run as runs


@dataclass
class Row:
    label: str
    run: str  # <stage>/<name>
    set: list = field(default_factory=list)  # --set overrides of the profile


@dataclass
class Study:
    name: str
    description: str
    profile: str
    dataset: str
    seeds: list
    columns: list  # metrics shown
    rows: list  # of Row
    # --set overrides of the profile for every row, before the row's own: e.g. the profile's
    # settings at the commit the study was measured at, so that a later change of the profile
    # neither recomputes the study nor leaves its committed rows unlike what the study names
    set: list = field(default_factory=list)

    def overrides(self, row: Row) -> list[str]:
        """The study's overrides, then the row's (a key the row sets replaces the study's)."""
        own = {item.split("=", 1)[0] for item in row.set}
        return [*(item for item in self.set if item.split("=", 1)[0] not in own), *row.set]

    def spec(self, row: Row, seed: int, output_root=None) -> runs.RunSpec:
        stage, name = row.run.split("/", 1)
        return runs.make_spec(self.profile, self.dataset, stage, name, output_root, seed=seed,
                              overrides=self.overrides(row) or None)  # fmt: skip


def load_study(name: str) -> Study:
    """params/studies/<name>.yaml, every row's parameters validated (errors name file and row)."""
    path = P.params_dir() / "studies" / f"{name}.yaml"
    data = P.read_yaml(path)
    rows = []
    for i, item in enumerate(data.pop("rows", [])):
        try:
            rows.append(Row(**item))
        except TypeError as e:
            raise P.ParamsError(f"{path}: rows[{i}]: {e}") from None
    try:
        study = Study(name=name, rows=rows, **data)
    except TypeError as e:
        raise P.ParamsError(f"{path}: {e}") from None
    P.check_seeds(study.seeds, "seeds")
    for i, row in enumerate(rows):
        try:
            study.spec(row, study.seeds[0])
        except (P.ParamsError, ValueError) as e:
            raise P.ParamsError(f"{path}: rows[{i}] ({row.label}): {e}") from None
    return study
