"""Keep notebooks/*.ipynb in step with their jupytext sources notebooks/*.py (percent format).

    python scripts/build_notebooks.py            # .py -> .ipynb cells (stored outputs kept)
    python scripts/build_notebooks.py --execute  # and run them (smoke profile) to store outputs

The .py files are what a reviewer reads; the .ipynb files are what papermill, nbval and Colab
run. tests/test_notebooks.py fails when a pair disagrees. Execution happens in a temporary copy,
in order (each notebook uses the previous one's checkpoints), with the environment of the nbval
run (conftest.py): a temporary output root and no progress bars.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"


def sources() -> list[Path]:
    return sorted(NB_DIR.glob("[0-9][0-9]_*.py"))


def sync() -> None:
    """Write each .py's cells into its .ipynb, keeping the outputs of unchanged code cells."""
    for src in sources():
        text_nb = jupytext.read(src)
        ipynb = src.with_suffix(".ipynb")
        if ipynb.is_file():
            text_nb = jupytext.combine.combine_inputs_with_outputs(
                text_nb, nbformat.read(ipynb, as_version=4), fmt="py:percent"
            )
        text_nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
        nbformat.write(text_nb, ipynb)


def execute() -> None:
    """Run the notebooks in order (smoke profile, fresh output root) and store their outputs."""
    import papermill

    with tempfile.TemporaryDirectory() as out:
        os.environ.update({"T5VAE_OUTPUT_ROOT": out, "TQDM_DISABLE": "1"})
        executed, copies = Path(out) / "executed", Path(out) / "sources"
        executed.mkdir()
        shutil.copytree(NB_DIR, copies)  # the tree stays as committed while they run (git_dirty)
        for src in sources():
            name = src.with_suffix(".ipynb").name
            print("executing", name, flush=True)
            papermill.execute_notebook(str(copies / name), str(executed / name), kernel_name="python3",
                                       cwd=str(NB_DIR), progress_bar=False)  # fmt: skip
        for src in sources():  # copied back at the end
            name = src.with_suffix(".ipynb").name
            nb = nbformat.read(executed / name, as_version=4)
            for cell in nb.cells:  # keep the stored notebook free of papermill's run metadata
                cell.metadata.pop("papermill", None)
                cell.metadata.pop("execution", None)
            nb.metadata.pop("papermill", None)
            nbformat.write(nb, NB_DIR / name)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--execute", action="store_true", help="also execute them (smoke) to store outputs"
    )
    args = ap.parse_args()
    sync()
    if args.execute:
        execute()
