# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Tables, claims, figures and the comparison with the reference
#
# Every results file of the profile is gathered into the paper's layout: one table of phase-1 variants
# and one ablation table of phase-2 techniques per dataset (`tables.md`, `.csv`, `.tex`). With several
# seeds each cell is the mean ± standard deviation over seeds and `n` counts them (`summary.csv` has the
# numbers, `tables.csv` one row per run and seed). Results of different code versions or parameters are
# flagged, never mixed silently; failed runs are listed as failed.
#
# *This notebook is the pair of `notebooks/04_tables.py` (jupytext): edit either, then run
# `python scripts/build_notebooks.py`; the stored outputs come from the smoke profile.*

# %% [markdown]
# *Colab: set [tool.t5vae] repository in pyproject.toml to get a badge here.*

# %%
# On Colab (or anywhere t5vae is not installed): install the package from its published repository
# (set once for every notebook: [tool.t5vae] repository in pyproject.toml, then
# `python scripts/build_notebooks.py`).
T5VAE_REPOSITORY = ""
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("t5vae") is None:
    if not T5VAE_REPOSITORY:
        raise RuntimeError(
            "t5vae is not installed and this notebook does not know where it is published: set "
            "repository under [tool.t5vae] in pyproject.toml and run python scripts/build_notebooks.py, "
            "or install the package first (pip install git+<the repository URL>)."
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{T5VAE_REPOSITORY}"], check=True
    )

# %% tags=["parameters"]
profile = "smoke"
output_root = None

# %%
from t5vae.notebook import display
from t5vae.notebook import steps

display.quiet()  # no library warnings or download bars in the notebook's output

# %%
tables = steps.build_tables(profile, output_root)
print(tables["md"].read_text())

# %% [markdown]
# ## The paper's claims
#
# Each claim of `params/claims.yaml` is tested on the runs above: the two runs' per-seed values, their
# difference, and Welch's t-test (a claim about one run: a one-sided test against a bound). With one
# seed no test is possible, and the table says so.

# %%
print(tables["claims"].read_text())

# %% [markdown]
# ## Reproduced vs reference
#
# The runs are compared with the committed reference results (`reference/<profile>/`): the same seed
# in the same environment must give the same numbers; in another environment a value must lie within
# the spread of the reference seeds (`comparison.md` states the tolerances and lists every metric).

# %% tags=["nbval-ignore-output"]
print(tables["verdict"])

# %% tags=["nbval-ignore-output"]
import IPython.display

for path in tables["figures"]:
    IPython.display.display(IPython.display.Image(filename=str(path)))
