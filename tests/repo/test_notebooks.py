"""The notebooks have one source of truth: each .ipynb holds exactly the cells of its jupytext
pair notebooks/NN_name.py (scripts/build_notebooks.py keeps them in step)."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from helpers import REPO, load_script

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


def test_the_install_cell_is_one_cell_set_in_one_place():
    """Every notebook installs from [tool.t5vae] repository of pyproject.toml (copied by
    scripts/build_notebooks.py): the same cell everywhere, carrying that value."""
    import tomllib

    repo = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["t5vae"]["repository"]
    cells = [
        next(c.source for c in jupytext.read(p).cells if "T5VAE_REPOSITORY =" in c.source)
        for p in PAIRS
    ]
    assert len(set(cells)) == 1
    assert f'T5VAE_REPOSITORY = "{repo}"' in cells[0]


def test_the_install_cell_says_what_to_set_while_the_repository_is_unset():
    cell = next(c.source for c in jupytext.read(PAIRS[0]).cells if "T5VAE_REPOSITORY =" in c.source)
    cell = cell.replace(
        'T5VAE_REPOSITORY = "', 'T5VAE_REPOSITORY = "" and "', 1
    )  # unset, whatever it is
    namespace = {"__name__": "colab"}
    import importlib.util

    real = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "t5vae" else real(name, *a)
    try:
        with pytest.raises(
            RuntimeError, match=r"set repository under \[tool\.t5vae\] in pyproject\.toml"
        ):
            exec(cell, namespace)
    finally:
        importlib.util.find_spec = real


def test_setting_the_repository_gives_every_notebook_its_install_url_and_badge(tmp_path):
    import shutil

    build = load_script("scripts/build_notebooks.py")
    src = tmp_path / PAIRS[0].name
    shutil.copy(PAIRS[0], src)
    build.set_repository(src, "https://github.com/someone/t5vae")
    text = src.read_text()
    assert 'T5VAE_REPOSITORY = "https://github.com/someone/t5vae"' in text
    assert (
        f"colab.research.google.com/github/someone/t5vae/blob/main/notebooks/{PAIRS[0].stem}.ipynb"
        in text
    )
    build.set_repository(src, "")
    assert src.read_text() == PAIRS[0].read_text()
