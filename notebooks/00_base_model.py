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
# # 00 · The pretrained base model
#
# *Finetuning Pretrained Transformers into Variational Autoencoders* (Park & Lee, 2021) starts from a
# **pretrained** sequence-to-sequence Transformer, T5. The `paper` profile downloads `t5-small` from the
# Hugging Face Hub. The offline profiles (`smoke`, `quick`) cannot, so this notebook builds a stand-in
# that keeps the paper's premise true: a small T5 **pretrained here** with T5's own span-corruption
# objective on the training corpus, with a SentencePiece tokenizer trained on the same corpus.
# Everything is cached under a key of its inputs, so it is built once per profile and dataset.
#
# *This notebook is the pair of `notebooks/00_base_model.py` (jupytext): edit either, then run
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
run_config = None  # the grid passes the resolved run (runs/.../run.json): the values above are then not used

# %%
from t5vae.notebook import display
from t5vae.report import plots
from t5vae.notebook import steps

display.quiet()  # no library warnings or download bars in the notebook's output

# %%
spec = steps.spec(run_config, profile, dataset, "base", "base", output_root, data_dir, None, overrides)
print(display.describe(spec))

# %% [markdown]
# ## Tokenizer and base model
#
# `prepare_base` trains (or loads) the tokenizer and, for `model.base: builtin`, pretrains the small T5:
# about 15% of each sentence's tokens, in spans of mean length 3, are replaced by sentinel tokens in the
# input, and the decoder learns to write the dropped spans (Raffel et al., 2020).

# %%
base = steps.prepare_base(spec)
tokenizer = base.tokenizer
print("base model:", display.relative(base.model_ref))
print("vocabulary:", len(tokenizer), "tokens")
example = steps.load_corpus(spec, "train").sentences[0]
print("example:", example)
print("tokens: ", tokenizer.convert_ids_to_tokens(tokenizer(example).input_ids))

# %% [markdown]
# The pretraining loss falls well below the uniform-guess level of log(vocabulary size) nats per token:

# %% tags=["nbval-ignore-output"]
import math

if base.history:
    print(
        f"loss: first {base.history[0]['loss']:.1f}, last {base.history[-1]['loss']:.1f}, "
        f"uniform guess {math.log(len(tokenizer)):.1f} nats/token"
    )
    plots.pretraining_loss(base.history)
