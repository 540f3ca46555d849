"""The latent space of a trained run: 2-D maps of the posterior means (PCA, t-SNE)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from t5vae.config.run import RunSpec
from t5vae.evaluation.generation import encode_sentences
from t5vae.notebook.steps import load_corpus, prepare_base, trained_model


def latent_map(spec: RunSpec, n: int = 500, seed: int = 0) -> pd.DataFrame:
    """mu of up to n test sentences with PCA and t-SNE coordinates, labels and known factors.

    attrs: "mu", "logvar" (tensors) and "spread" (norm of the per-dimension std of mu).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    model = trained_model(spec)
    tokenizer = prepare_base(spec, progress=False).tokenizer
    test = load_corpus(spec, "test")
    sentences = test.sentences[:n]
    parts = [encode_sentences(model, tokenizer, sentences[i : i + 100], spec.dataset.max_length)
             for i in range(0, len(sentences), 100)]  # fmt: skip
    mu, logvar = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    x = mu.double().numpy()
    df = pd.DataFrame({"sentence": sentences})
    pca = PCA(n_components=2, random_state=seed).fit_transform(x)
    df["pca_1"], df["pca_2"] = pca[:, 0], pca[:, 1]
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca")
    coords = tsne.fit_transform(x)
    df["tsne_1"], df["tsne_2"] = coords[:, 0], coords[:, 1]
    if test.labels:
        df["label"] = test.labels[: len(df)]
    for key in sorted(test.factors[0]) if test.factors else []:
        df[key] = [f[key] for f in test.factors[: len(df)]]
    df.attrs["mu"], df.attrs["logvar"] = mu, logvar
    df.attrs["spread"] = float(np.linalg.norm(x.std(0)))
    return df
