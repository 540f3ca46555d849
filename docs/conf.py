"""Sphinx configuration of the documentation site (./reproduce.sh docs).

Sphinx + MyST-NB: the pages are Markdown (MyST), the notebooks are pages with their stored
outputs (never executed at build time), the Python API comes from the docstrings (autodoc) and
the CLI from its parsers (sphinx-argparse). Everything the site needs is bundled: MathJax from
sphinx-mathjax-offline, Sphinx's own search index, the furo theme; no page loads anything from
the network.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO / "src"))

project = "t5vae"
author = "t5vae contributors"
copyright = "2026, t5vae contributors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "sphinxarg.ext",
    "sphinx_copybutton",
    "sphinx.ext.githubpages",  # .nojekyll: the build is publishable on GitHub Pages as is
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks' stored outputs (scripts/build_notebooks.py) are shown
nb_merge_streams = True
html_theme = "furo"
html_title = "t5vae"
html_static_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "jupyter_execute"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
nitpicky = False  # type hints of torch/transformers have no inventory offline

# The notebooks are pages: copied from notebooks/ (their one place) at every build.
_NB = DOCS / "notebooks"
_NB.mkdir(exist_ok=True)
for stale in _NB.glob("*.ipynb"):
    stale.unlink()
for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
    shutil.copy2(nb, _NB / nb.name)


def _docstring_as_written(app, what, name, obj, options, lines):
    """The package's docstrings are plain text (formulas in ASCII, aligned lists), not
    reStructuredText: shown as written, in a literal block, instead of parsed into errors."""
    if any(line.strip() for line in lines):
        lines[:] = ["::", "", *("    " + line for line in lines), ""]


def setup(app):
    app.connect("autodoc-process-docstring", _docstring_as_written)
