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
# ## Controlled generation: shifting an attribute
#
# An attribute vector is a difference of class means of μ, v_c = mean(μ | c) − mean(μ | not c);
# a sentence's code moved to z = μ_x + α·v_c is decoded, and the built-in grammar's parser reads
# back every factor of what comes out (`t5vae.evaluation.control`, `t5vae.data.builtin.parse`):
# did the target value appear (transfer), did the other factors stay (content kept), is it a
# sentence of the grammar at all? A collapsed code has v_c ≈ 0: nothing moves.

# %% tags=["nbval-ignore-output"]
from t5vae.data.builtin import parse
from t5vae.evaluation import control
from t5vae.evaluation.latent import ALPHAS

if spec.dataset.source == "builtin":
    vector = control.builtin_attribute_vector(model, tokenizer, "sentiment", "negative", n=400)
    source = test[0]
    print(f"source: {source}  {parse(source)}")
    for alpha in ALPHAS:
        (shifted,) = control.shift(
            model, tokenizer, [source], vector, alpha, max_new_tokens=spec.dataset.max_length
        )
        print(f"  alpha={alpha:<4} {shifted}  {parse(shifted) or 'not a sentence of the grammar'}")

# %% [markdown]
# The run's results file holds the same scores over 100 test sentences per factor, each moved to
# another value of the factor (the vectors fitted on the validation split), at every α, with
# class-conditional sampling, MIG and DCI, the smoothness of paths and the collapse diagnosis
# (`t5vae.evaluation.latent`; definitions: the metrics page).

# %% tags=["nbval-ignore-output"]
import json

if not spec.results_file.is_file():
    steps.evaluate_run(spec, progress=False)
record = json.loads(spec.results_file.read_text())
print("diagnosis:", record.get("diagnosis"))
display.shift_scores(record)

# %% [markdown]
# ## A traversal and an interpolation, with their scores
#
# Decoding along the most informative latent dimension (largest mean KL) from −3 to 3, and along
# lerp and slerp paths between two test sentences; each path is scored by the fraction of its
# steps that are sentences of the grammar and the fraction of factors that change at most once.

# %% tags=["nbval-ignore-output"]
found = record["examples"].get("latent", {})
if "traversal" in found:
    t = found["traversal"]
    print(f"traversal of dimension {t['dim']} from: {t['sentence']}")
    for v, s in zip(t["values"], t["path"]):
        print(f"  z[{t['dim']}]={v:+.1f}  {s}")
    print("  scores:", control.smoothness(t["path"]))
    i = found["interpolation"]
    for kind in ("lerp", "slerp"):
        print(f"{kind} from '{i['a']}' to '{i['b']}':")
        for s in i[kind]:
            print(f"  {s}")
        print("  scores:", control.smoothness(i[kind]))

# %% [markdown]
# ## Every technique's latent space (the profile's reference, mean ± sd over its seeds)
#
# The diagnosis of each run (collapsed / weak / informative, with the rule in its results file),
# transfer accuracy at α = 1, MIG and DCI against the known factors, and the diversity of prior
# samples, from `reference/<profile>/` (the reference's `figures/<dataset>_transfer_by_alpha.png`
# shows every α).

# %% tags=["nbval-ignore-output"]
display.latent_by_technique(spec.profile.name, spec.dataset.name)

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
