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
# # 05 · Explore the latent space
#
# A text VAE is judged by what its latent space does, not only by its ELBO. This notebook takes a
# trained phase-2 model (training the smoke one first when none exists) and looks at it: what it
# reconstructs, what it generates from the prior, how it moves between two sentences, where the
# sentences lie in z, and which latent dimensions carry information.
#
# *This notebook is the pair of `notebooks/05_explore_latent_space.py` (jupytext): edit either, then run
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
technique = "l0.5_pnone"  # the phase-2 run to explore
n_points = 300  # test sentences in the maps
run_config = None  # the grid passes the resolved run (runs/.../run.json): the values above are then not used

# %%
from t5vae.notebook import display
from t5vae.report import plots
from t5vae.notebook import steps

display.quiet()  # no library warnings or download bars in the notebook's output

# %%
from t5vae.notebook import analysis
from t5vae.evaluation import generation as gen

spec = steps.spec(run_config, profile, dataset, "phase2", technique, output_root, data_dir, seed, overrides)
steps.ensure_trained(spec)
model, tokenizer = steps.trained_model(spec), steps.prepare_base(spec).tokenizer
test = steps.load_corpus(spec, "test").sentences
print(display.describe(spec))

# %% [markdown]
# ## Reconstruction
#
# Greedy decoding from the posterior mean μ of each sentence, with the corpus BLEU against the inputs.
# A collapsed VAE writes the same sentence whatever the input.

# %%
sentences = test[:5]
recon = gen.reconstruct(
    model,
    tokenizer,
    sentences,
    max_length=spec.dataset.max_length,
    max_new_tokens=spec.dataset.max_length,
)
print(f"BLEU of these {len(sentences)}: {gen.reconstruction_bleu(sentences, recon):.1f}")
for a, b in zip(sentences, recon):
    print(f"  in:  {a}\n  out: {b}")

# %% [markdown]
# ## Sampling from the prior: z ~ N(0, I), greedy and nucleus (top-p 0.9) decoding

# %%
import torch

greedy = gen.sample_prior(model, tokenizer, 5, seed=0, max_new_tokens=spec.dataset.max_length)
nucleus = gen.sample_prior(
    model,
    tokenizer,
    5,
    seed=0,
    strategy="sample",
    top_p=0.9,
    generator=torch.Generator().manual_seed(0),
    max_new_tokens=spec.dataset.max_length,
)
for g, s in zip(greedy, nucleus):
    print(f"  greedy: {g}\n  top-p:  {s}")
print(f"distinct-2 of the greedy samples: {gen.distinct_n(greedy, 2):.2f}")

# %% [markdown]
# ## Interpolation and latent arithmetic
#
# Decoding (1 − t)·μ_a + t·μ_b for t from 0 to 1 (a homotopy, Bowman et al. 2016): a smooth latent
# space changes the sentence gradually. Arithmetic decodes μ_a − μ_b + μ_c.

# %%
a, b = test[0], test[1]
for t, s in zip(
    [0, 0.25, 0.5, 0.75, 1],
    gen.interpolate(model, tokenizer, a, b, steps=5, max_new_tokens=spec.dataset.max_length),
):
    print(f"  t={t:<4} {s}")
print(
    "a - b + c:",
    gen.arithmetic(
        model, tokenizer, test[0], test[1], test[2], max_new_tokens=spec.dataset.max_length
    ),
)

# %% [markdown]
# ## Where sentences lie in z
#
# PCA and t-SNE of μ over test sentences, coloured by the corpus label (Yelp: sentiment) or, for
# the built-in corpus, by each known generating factor. Clusters by factor mean the code captures it.

# %% tags=["nbval-ignore-output"]
latent = analysis.latent_map(spec, n=n_points)
hues = [c for c in ("topic", "sentiment", "tense", "length", "label") if c in latent][:2] or [None]
for hue in hues:
    plots.latent_scatter(latent, "pca_1", "pca_2", hue, f"PCA of mu ({hue})")
    plots.latent_scatter(latent, "tsne_1", "tsne_2", hue, f"t-SNE of mu ({hue})")

# %% [markdown]
# ## Which units are active: KL per latent dimension, and MI / AU over the phase-2 epochs

# %% tags=["nbval-ignore-output"]
plots.kl_per_dimension(latent.attrs["mu"], latent.attrs["logvar"], "mean KL per dimension (test)")
plots.training_curves(steps.history(spec), "phase 2: validation MI and AU per epoch")
