"""The notebooks have one source of truth: each .ipynb holds exactly the cells of its jupytext
pair notebooks/NN_name.py (scripts/build_notebooks.py keeps them in step)."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from conftest import REPO

NB_DIR = REPO / "notebooks"
PAIRS = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))


def test_every_notebook_has_its_source_and_back():
    assert len(PAIRS) >= 6
    assert {p.stem for p in PAIRS} == {p.stem for p in NB_DIR.glob("[0-9][0-9]_*.ipynb")}


@pytest.mark.parametrize("source", PAIRS, ids=lambda p: p.stem)
def test_stored_notebook_matches_its_source(source):
    text = jupytext.read(source)
    stored = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in text.cells
    ], f"{source.name} and its .ipynb differ: run python scripts/build_notebooks.py"
    tags = [c.metadata.get("tags", []) for c in stored.cells]
    assert tags == [c.metadata.get("tags", []) for c in text.cells]
    assert stored.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert f"notebooks/{source.name}" in stored.cells[0].source  # the visible 'paired' mark
