"""Write notebooks/*.ipynb from the cell sources below (outputs are added by executing them:
`python scripts/build_notebooks.py --execute`, which runs them in the smoke profile so that
nbval can check they still produce the stored outputs).

Notebooks are thin: a parameters cell, markdown explaining each step, calls into t5vae.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
# Where the Colab cell clones the package from: set T5VAE_REPO_URL to the published repository
# and rebuild the notebooks (the default is a placeholder until the project is published).
REPO_URL = os.environ.get("T5VAE_REPO_URL", "https://github.com/OWNER/t5vae")

COLAB_SETUP = f"""\
# On Colab (or anywhere t5vae is not installed): install the package from its repository.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("t5vae") is None:
    subprocess.run(["git", "clone", "-q", "{REPO_URL}", "t5vae"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "t5vae"], check=True)
    sys.path.insert(0, os.path.abspath("t5vae/src"))"""

IMPORTS = """\
from t5vae import pipeline as pl
from t5vae import plots

pl.quiet()  # no library warnings or download bars in the notebook's output"""
IMPORTS_NO_PLOTS = IMPORTS.replace("from t5vae import plots\n", "")


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = tags
    return cell


def params_cell(text: str):
    return code(text, ["parameters"])


def colab_badge(name: str) -> str:
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({REPO_URL.replace('https://github.com', 'https://colab.research.google.com/github')}"
            f"/blob/main/notebooks/{name})")  # fmt: skip


COMMON_PARAMS = """\
profile = "smoke"      # params/profiles/<profile>.yaml: smoke (seconds), quick (offline default), paper
dataset = "builtin"    # params/datasets/<dataset>.yaml: builtin, ptb, snli, yelp, yahoo
seed = None            # finetuning seed (default: the profile's first seed)
output_root = None     # runs/ and results/ go here (default: $T5VAE_OUTPUT_ROOT or the repository)
data_dir = None        # Optimus-layout data root (default: $T5VAE_DATA_DIR)"""

NOTEBOOKS = {
    "00_base_model.ipynb": [
        md("""
# 00 · The pretrained base model

*Finetuning Pretrained Transformers into Variational Autoencoders* (Park & Lee, 2021) starts from a
**pretrained** sequence-to-sequence Transformer, T5. The `paper` profile downloads `t5-small` from the
Hugging Face Hub. The offline profiles (`smoke`, `quick`) cannot, so this notebook builds a stand-in
that keeps the paper's premise true: a small T5 **pretrained here** with T5's own span-corruption
objective on the training corpus, with a SentencePiece tokenizer trained on the same corpus.
Everything is cached under a key of its inputs, so it is built once per profile and dataset.
"""),
        code(COLAB_SETUP),
        params_cell(COMMON_PARAMS),
        code(IMPORTS),
        code("""
spec = pl.base_spec(profile, dataset, output_root, data_dir)
print(pl.describe(spec))"""),
        md("""
## Tokenizer and base model

`prepare_base` trains (or loads) the tokenizer and, for `model.base: builtin`, pretrains the small T5:
about 15% of each sentence's tokens, in spans of mean length 3, are replaced by sentinel tokens in the
input, and the decoder learns to write the dropped spans (Raffel et al., 2020).
"""),
        code("""
base = pl.prepare_base(spec)
tokenizer = pl.load_tokenizer_for(spec)
print("base model:", pl.relative(base["base"]))
print("vocabulary:", len(tokenizer), "tokens")
example = pl.load_corpus(spec, "train").sentences[0]
print("example:", example)
print("tokens: ", tokenizer.convert_ids_to_tokens(tokenizer(example).input_ids))"""),
        md(
            "The pretraining loss falls well below the uniform-guess level of log(vocabulary size) nats per token:"
        ),
        code(
            """
import math
if base["history"]:
    print(f"loss: first {base['history'][0]['loss']:.1f}, last {base['history'][-1]['loss']:.1f}, "
          f"uniform guess {math.log(len(tokenizer)):.1f} nats/token")
    plots.pretraining_loss(base["history"])""",
            ["nbval-ignore-output"],
        ),
    ],
    "01_phase1_encoder.ipynb": [
        md("""
# 01 · Phase 1: train the encoder as an autoencoder

The VAE is `x → T5 encoder → pooling → (μ, log σ²) → z → T5 decoder → x`. The decoder is pretrained,
the latent heads are new. Training everything at once with a KL term lets the strong decoder ignore
z (*posterior collapse*). Park & Lee therefore first train **only the encoder side** (encoder, pooling,
μ/σ heads) to autoencode, with the decoder frozen and **no KL term**: the encoder learns to put
information in z that the pretrained decoder can read before any pressure towards the prior.

Variants (the paper's phase-1 table): pooling (`mean` / `max` over the real tokens of the last
encoder layer), token-deletion denoising of the encoder input (`p` ∈ {0, 0.15, 0.4}) and freezing the
decoder or not.
"""),
        code(COLAB_SETUP),
        params_cell(
            COMMON_PARAMS
            + """
variant = "max_pnone_frozen"  # params/phase1/<variant>.yaml"""
        ),
        code(IMPORTS),
        code("""
spec = pl.make_spec(profile, dataset, "phase1", variant, output_root, data_dir, seed)
print(pl.describe(spec))"""),
        md("""
## What trains

With `freeze_decoder: true` the decoder blocks, the latent-to-memory projection and `lm_head` are
frozen. T5 ties its encoder input embeddings to the decoder's and to `lm_head`; the released code froze
them silently with `lm_head`. Here it is the explicit choice `phase1_embeddings` (`frozen`, `untied`:
the encoder gets its own trainable copy, or `trainable`). The decoder's cross-attention never runs:
z reaches the decoder only as one extra key/value slot in every self-attention layer.
"""),
        code("""
pl.prepare_base(spec)
pl.trainable_summary(pl.new_model(spec, spec.variant.pooling), pl.train_config(spec))"""),
        md("""
## Train

Loss per sentence: reconstruction only, `rec = −log p(x | z)` summed over target tokens (EOS included,
padding excluded), with z sampled from q(z|x). Validation metrics are computed after every epoch; the
checkpoint with the best validation `rec` is kept (`best/`), with early stopping in the `paper` profile.
"""),
        code("""
result = pl.ensure_trained(spec)
pl.history_table(result.history)"""),
        code(
            """plots.training_curves(result.history, f"phase 1: {variant}");""",
            ["nbval-ignore-output"],
        ),
    ],
    "02_phase2_vae.ipynb": [
        md("""
# 02 · Phase 2: finetune the whole VAE

Phase 2 starts from the phase-1 checkpoint and trains **everything** on the negative ELBO with the
usual remedies against posterior collapse:

* **KL annealing**: the KL weight β rises from 0 (linear warm-up by default; cyclical and the
  released code's ramp are options in the profile).
* **KL thresholding** (λ, free bits): each latent dimension's KL counts as at least λ, without
  gradient below it: `loss = rec + β Σ_d max(λ, KL_d)`.
* **Input denoising** (p): up to a fraction p of the encoder-input tokens are deleted; the decoder
  must still reconstruct the clean sentence.

The `vanilla` technique skips phase 1 (the baseline that collapses); `autoencoder` has no KL term.
"""),
        code(COLAB_SETUP),
        params_cell(
            COMMON_PARAMS
            + """
technique = "l0.5_pnone"  # params/phase2/<technique>.yaml"""
        ),
        code(IMPORTS),
        code("""
spec = pl.make_spec(profile, dataset, "phase2", technique, output_root, data_dir, seed)
print(pl.describe(spec))"""),
        md("""
## Train

If the phase-1 run this technique starts from has not been trained yet, `ensure_trained` trains it
first. After every epoch the validation set gives rec, KL, the mutual information I(x; z) and the
number of active units: the curves show whether the latent code survives the rising KL weight.
"""),
        code("""
result = pl.ensure_trained(spec)
pl.history_table(result.history)"""),
        code(
            """plots.training_curves(result.history, f"phase 2: {technique}");""",
            ["nbval-ignore-output"],
        ),
    ],
    "03_evaluate.ipynb": [
        md("""
# 03 · Evaluate on the test split

All metrics are per sentence, in nats, on the test split:

| metric | definition |
|---|---|
| `rec` | E_q[−log p(x\\|z)], one sample |
| `kl` | KL(q(z\\|x) ‖ N(0, I)), analytic, no threshold |
| `neg_elbo` | rec + kl, an upper bound on −log p(x) |
| `nll` | −log p(x) by importance sampling with K samples of q(z\\|x) (Burda et al., 2016) |
| `ppl`, `ppl_word` | exp(total nll / tokens incl. EOS), and per word + EOS (comparable across tokenizers) |
| `ppl_elbo` | exp(total neg_elbo / tokens): the paper's bound |
| `mi` | I(x; z) under q, aggregate posterior over the whole test set (He et al., 2019) |
| `au` | active units: dimensions with Var_x(E_q[z_d]) ≥ 0.01 (Burda et al., 2016) |
| `bleu` | corpus BLEU of greedy reconstructions from μ against the inputs (sacrebleu) |
| `distinct_1`, `distinct_2` | unique word uni/bigrams among sentences decoded from the prior |
| `probe_*` | built-in corpus only: 5-fold CV accuracy of a linear probe from z ~ q(z\\|x) to each known factor (`chance_*`: majority class) |

The results file stores them with provenance (commit, package versions, parameters, seed, device).
"""),
        code(COLAB_SETUP),
        params_cell(
            COMMON_PARAMS
            + """
stage = "phase2"       # phase1 or phase2
name = "l0.5_pnone"    # the variant (phase1) or technique (phase2)"""
        ),
        code(IMPORTS_NO_PLOTS),
        code("""
spec = pl.make_spec(profile, dataset, stage, name, output_root, data_dir, seed)
pl.ensure_trained(spec)
record = pl.evaluate_run(spec)
print("results file:", pl.relative(spec.results_file))
pl.metrics_table(record["metrics"])"""),
        md("""
## Reconstructions and prior samples

Greedy decoding from the posterior mean of a few test sentences (`bleu` above is the corpus BLEU of
all test reconstructions), and sentences decoded from z ~ N(0, I) (`distinct_1`, `distinct_2`: the
share of unique word n-grams among the prior samples).
"""),
        code("""pl.reconstruction_table(record)"""),
        code("""
for sentence in record["examples"]["prior_samples"]:
    print("-", sentence)"""),
    ],
    "04_tables.ipynb": [
        md("""
# 04 · Tables, claims, figures and the comparison with the reference

Every results file of the profile is gathered into the paper's layout: one table of phase-1 variants
and one ablation table of phase-2 techniques per dataset (`tables.md`, `.csv`, `.tex`). With several
seeds each cell is the mean ± standard deviation over seeds and `n` counts them (`summary.csv` has the
numbers, `tables.csv` one row per run and seed). Results of different code versions or parameters are
flagged, never mixed silently; failed runs are listed as failed.
"""),
        code(COLAB_SETUP),
        params_cell("""
profile = "smoke"
output_root = None"""),
        code(IMPORTS_NO_PLOTS),
        code("""
tables = pl.build_tables(profile, output_root)
print(tables["md"].read_text())"""),
        md("""
## The paper's claims

Each claim of `params/claims.yaml` is tested on the runs above: the two runs' per-seed values, their
difference, and Welch's t-test (a claim about one run: a one-sided test against a bound). With one
seed no test is possible, and the table says so.
"""),
        code("""print(tables["claims"].read_text())"""),
        md("""
## Reproduced vs reference

The runs are compared with the committed reference results (`reference/<profile>/`): the same seed
in the same environment must give the same numbers; in another environment a value must lie within
the spread of the reference seeds (`comparison.md` states the tolerances and lists every metric).
"""),
        code("""print(tables["verdict"])""", ["nbval-ignore-output"]),
        code(
            """
from IPython.display import Image, display
for path in tables["figures"]:
    display(Image(filename=str(path)))""",
            ["nbval-ignore-output"],
        ),
    ],
    "05_explore_latent_space.ipynb": [
        md("""
# 05 · Explore the latent space

A text VAE is judged by what its latent space does, not only by its ELBO. This notebook takes a
trained phase-2 model (training the smoke one first when none exists) and looks at it: what it
reconstructs, what it generates from the prior, how it moves between two sentences, where the
sentences lie in z, and which latent dimensions carry information.
"""),
        code(COLAB_SETUP),
        params_cell(
            COMMON_PARAMS
            + """
technique = "l0.5_pnone"  # the phase-2 run to explore
n_points = 300            # test sentences in the maps"""
        ),
        code(IMPORTS),
        code("""
from t5vae import generation as gen

spec = pl.make_spec(profile, dataset, "phase2", technique, output_root, data_dir, seed)
pl.ensure_trained(spec)
model, tokenizer = pl.trained_model(spec), pl.load_tokenizer_for(spec)
test = pl.load_corpus(spec, "test").sentences
print(pl.describe(spec))"""),
        md("""
## Reconstruction

Greedy decoding from the posterior mean μ of each sentence, with the corpus BLEU against the inputs.
A collapsed VAE writes the same sentence whatever the input.
"""),
        code("""
sentences = test[:5]
recon = gen.reconstruct(model, tokenizer, sentences, max_new_tokens=spec.dataset.max_length)
print(f"BLEU of these {len(sentences)}: {gen.reconstruction_bleu(sentences, recon):.1f}")
for a, b in zip(sentences, recon):
    print(f"  in:  {a}\\n  out: {b}")"""),
        md("## Sampling from the prior: z ~ N(0, I), greedy and nucleus (top-p 0.9) decoding"),
        code("""
import torch

greedy = gen.sample_prior(model, tokenizer, 5, seed=0, max_new_tokens=spec.dataset.max_length)
nucleus = gen.sample_prior(model, tokenizer, 5, seed=0, strategy="sample", top_p=0.9,
                           generator=torch.Generator().manual_seed(0), max_new_tokens=spec.dataset.max_length)
for g, s in zip(greedy, nucleus):
    print(f"  greedy: {g}\\n  top-p:  {s}")
print(f"distinct-2 of the greedy samples: {gen.distinct_n(greedy, 2):.2f}")"""),
        md("""
## Interpolation and latent arithmetic

Decoding (1 − t)·μ_a + t·μ_b for t from 0 to 1 (a homotopy, Bowman et al. 2016): a smooth latent
space changes the sentence gradually. Arithmetic decodes μ_a − μ_b + μ_c.
"""),
        code("""
a, b = test[0], test[1]
for t, s in zip([0, 0.25, 0.5, 0.75, 1], gen.interpolate(model, tokenizer, a, b, steps=5,
                                                         max_new_tokens=spec.dataset.max_length)):
    print(f"  t={t:<4} {s}")
print("a - b + c:", gen.arithmetic(model, tokenizer, test[0], test[1], test[2],
                                    max_new_tokens=spec.dataset.max_length))"""),
        md("""
## Where sentences lie in z

PCA and t-SNE of μ over test sentences, coloured by the corpus label (Yelp: sentiment) or, for
the built-in corpus, by each known generating factor. Clusters by factor mean the code captures it.
"""),
        code(
            """
latent = pl.latent_map(spec, n=n_points)
hues = [c for c in ("topic", "sentiment", "tense", "length", "label") if c in latent][:2] or [None]
for hue in hues:
    plots.latent_scatter(latent, "pca_1", "pca_2", hue, f"PCA of mu ({hue})")
    plots.latent_scatter(latent, "tsne_1", "tsne_2", hue, f"t-SNE of mu ({hue})")""",
            ["nbval-ignore-output"],
        ),
        md(
            "## Which units are active: KL per latent dimension, and MI / AU over the phase-2 epochs"
        ),
        code(
            """
plots.kl_per_dimension(latent.attrs["mu"], latent.attrs["logvar"], "mean KL per dimension (test)")
plots.training_curves(pl.history(spec), "phase 2: validation MI and AU per epoch");""",
            ["nbval-ignore-output"],
        ),
    ],
}


def build(dest: Path = NB_DIR) -> None:
    dest.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        cells = [cells[0], md(colab_badge(name)), *cells[1:]]
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        })  # fmt: skip
        nbformat.write(nb, dest / name)


def execute() -> None:
    """Run the notebooks in order (smoke profile, fresh output root) and store their outputs."""
    import papermill

    with tempfile.TemporaryDirectory() as out:
        # the same environment as the nbval run in tests/ (conftest.py): no progress bars
        os.environ.update({"T5VAE_OUTPUT_ROOT": out, "TQDM_DISABLE": "1"})
        executed, sources = Path(out) / "executed", Path(out) / "sources"
        executed.mkdir()
        build(sources)  # the tree stays as committed while they run (results record git_dirty)
        for name in NOTEBOOKS:  # in order: each step uses the previous one's checkpoints
            print("executing", name, flush=True)
            papermill.execute_notebook(str(sources / name), str(executed / name), kernel_name="python3",
                                       cwd=str(NB_DIR), progress_bar=False)  # fmt: skip
        for name in NOTEBOOKS:  # copied back at the end: the tree stays clean while they run
            nb = nbformat.read(executed / name, as_version=4)
            for cell in nb.cells:  # keep the stored notebook free of papermill's run metadata
                cell.metadata.pop("papermill", None)
                cell.metadata.pop("execution", None)
            nb.metadata.pop("papermill", None)
            nbformat.write(nb, NB_DIR / name)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--execute", action="store_true", help="also execute them (smoke) to store outputs"
    )
    args = ap.parse_args()
    if args.execute:
        execute()  # builds into a temporary folder, executes, then writes notebooks/
    else:
        build()
