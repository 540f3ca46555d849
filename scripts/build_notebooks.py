"""Keep notebooks/*.ipynb in step with their jupytext sources notebooks/*.py (percent format).

    python scripts/build_notebooks.py            # .py -> .ipynb cells (stored outputs kept)
    python scripts/build_notebooks.py --execute  # and run them (smoke profile) to store outputs

The .py files are what a reviewer reads; the .ipynb files are what papermill, nbval and Colab
run. tests/repo/test_notebooks.py fails when a pair disagrees. Execution happens in a temporary copy,
in order (each notebook uses the previous one's checkpoints), with the environment of the nbval
run (conftest.py): a temporary output root and no progress bars.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path

import jupytext
import nbformat
import tomllib

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"


def sources() -> list[Path]:
    return sorted(NB_DIR.glob("[0-9][0-9]_*.py"))


def repository() -> str:
    """[tool.t5vae] repository in pyproject.toml: where the notebooks install the package from."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["t5vae"]["repository"]


def badge(repo: str, notebook: str) -> str:
    """The Colab badge line of a notebook (GitHub repositories), or what to set to get one."""
    m = re.match(r"https://github\.com/([^/]+/[^/.]+?)(\.git)?/?$", repo)
    if not m:
        return "# *Colab: set [tool.t5vae] repository in pyproject.toml to get a badge here.*"
    return (f"# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{m.group(1)}/blob/main/notebooks/{notebook})")  # fmt: skip


def set_repository(src: Path, repo: str) -> None:
    """The one setting, copied into a source: its install cell and its Colab badge."""
    text = re.sub(r'^T5VAE_REPOSITORY = ".*"$', f"T5VAE_REPOSITORY = {repo!r}".replace("'", '"'),
                  src.read_text(), count=1, flags=re.M)  # fmt: skip
    text = re.sub(r"^# (\[!\[Open In Colab\].*|\*Colab: set \[tool\.t5vae\].*)$",
                  lambda _: badge(repo, src.with_suffix(".ipynb").name), text, count=1, flags=re.M)  # fmt: skip
    src.write_text(text)


def sync() -> None:
    """Write each .py's cells into its .ipynb, keeping the outputs of unchanged code cells."""
    repo = repository()
    for src in sources():
        set_repository(src, repo)
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
