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
# # 02 · Phase 2: finetune the whole VAE
#
# Phase 2 starts from the phase-1 checkpoint and trains **everything** on the negative ELBO with the
# usual remedies against posterior collapse:
#
# * **KL annealing**: the KL weight β rises from 0 (linear warm-up by default; cyclical and the
#   released code's ramp are options in the profile).
# * **KL thresholding** (λ, free bits): each latent dimension's KL counts as at least λ, without
#   gradient below it: `loss = rec + β Σ_d max(λ, KL_d)`.
# * **Input denoising** (p): up to a fraction p of the encoder-input tokens are deleted; the decoder
#   must still reconstruct the clean sentence.
#
# The `vanilla` technique skips phase 1 (the baseline that collapses); `autoencoder` has no KL term.
#
# *This notebook is the pair of `notebooks/02_phase2_vae.py` (jupytext): edit either, then run
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
profile = "smoke"  # params/profiles/<profile>.yaml: smoke (seconds), quick (offline default), paper
dataset = "builtin"  # params/datasets/<dataset>.yaml: builtin, ptb, snli, yelp, yahoo
seed = None  # finetuning seed (default: the profile's first seed)
overrides = None  # profile overrides: a list of the strings ./reproduce.sh --set takes
output_root = None  # runs/ and results/ go here (default: $T5VAE_OUTPUT_ROOT or the repository)
data_dir = None  # Optimus-layout data root (default: $T5VAE_DATA_DIR)
technique = "l0.5_pnone"  # params/phase2/<technique>.yaml
run_config = None  # the grid passes the resolved run (runs/.../run.json): the values above are then not used

# %%
from t5vae.notebook import display
from t5vae.report import plots
from t5vae.notebook import steps

display.quiet()  # no library warnings or download bars in the notebook's output

# %%
spec = steps.spec(run_config, profile, dataset, "phase2", technique, output_root, data_dir, seed, overrides)
print(display.describe(spec))

# %% [markdown]
# ## Train
#
# If the phase-1 run this technique starts from has not been trained yet, `ensure_trained` trains it
# first. After every epoch the validation set gives rec, KL, the mutual information I(x; z) and the
# number of active units: the curves show whether the latent code survives the rising KL weight.

# %%
result = steps.ensure_trained(spec)
display.history_table(result.history)

# %% tags=["nbval-ignore-output"]
plots.training_curves(result.history, f"phase 2: {technique}")
