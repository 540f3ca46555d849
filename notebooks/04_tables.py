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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/t5vae/blob/main/notebooks/04_tables.ipynb)

# %%
# On Colab (or anywhere t5vae is not installed): install the package from its repository.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("t5vae") is None:
    subprocess.run(["git", "clone", "-q", "https://github.com/OWNER/t5vae", "t5vae"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "t5vae"], check=True)
    sys.path.insert(0, os.path.abspath("t5vae/src"))

# %% tags=["parameters"]
profile = "smoke"
output_root = None

# %%
from t5vae import display
from t5vae import pipeline as pl

display.quiet()  # no library warnings or download bars in the notebook's output

# %%
tables = pl.build_tables(profile, output_root)
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
