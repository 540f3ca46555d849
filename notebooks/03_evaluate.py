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
# # 03 · Evaluate on the test split
#
# All metrics are per sentence, in nats, on the test split. Their definitions (with sources) come from
# the metric registry, `t5vae.evaluation.metrics.METRICS`, shown after the evaluation below.
#
# The results file stores them with provenance (commit, package versions, parameters, seed, device).
#
# *This notebook is the pair of `notebooks/03_evaluate.py` (jupytext): edit either, then run
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
stage = "phase2"  # phase1 or phase2
name = "l0.5_pnone"  # the variant (phase1) or technique (phase2)
run_config = None  # the grid passes the resolved run (runs/.../run.json): the values above are then not used

# %%
from t5vae.notebook import display
from t5vae.notebook import steps

display.quiet()  # no library warnings or download bars in the notebook's output

# %%
spec = steps.spec(run_config, profile, dataset, stage, name, output_root, data_dir, seed, overrides)
steps.ensure_trained(spec)
record = steps.evaluate_run(spec)
print("results file:", display.relative(spec.results_file))
display.metrics_table(record["metrics"])

# %%
display.metric_glossary()

# %% [markdown]
# ## Reconstructions and prior samples
#
# Greedy decoding from the posterior mean of a few test sentences (`bleu` above is the corpus BLEU of
# all test reconstructions), and sentences decoded from z ~ N(0, I) (`distinct_1`, `distinct_2`: the
# share of unique word n-grams among the prior samples).

# %%
display.reconstruction_table(record)

# %%
for sentence in record["examples"]["prior_samples"]:
    print("-", sentence)
