"""Figures the notebooks show (seaborn). Each returns the matplotlib Figure."""

from __future__ import annotations

import pandas as pd


def _sns():
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return sns


def pretraining_loss(history: list[dict]):
    """Span-corruption loss of the base T5 against the step."""
    import matplotlib.pyplot as plt

    sns = _sns()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if history:
        sns.lineplot(data=pd.DataFrame(history), x="step", y="loss", ax=ax, marker="o")
    ax.set(title="base T5 pretraining (span corruption)", ylabel="cross-entropy per target token")
    return fig


def training_curves(history: list[dict], title: str = ""):
    """Per epoch: the KL weight, every training term and the registry's validation curves."""
    import matplotlib.pyplot as plt

    from t5vae.report.figures import curve_columns

    sns = _sns()
    df = pd.DataFrame(history)
    panels = [c for c in ["kl_weight", *curve_columns(history[0] if history else {})] if c in df]
    cols = min(4, max(1, len(panels)))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.6 * rows), squeeze=False)
    for ax, col in zip(axes.flat, panels, strict=False):
        sns.lineplot(data=df, x="epoch", y=col, ax=ax, marker="o")
        ax.set(title=col.replace("_", " "), ylabel="")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def kl_per_dimension(mu, logvar, title: str = ""):
    """Mean KL of each latent dimension over a set (bars; the active units stand out)."""
    import matplotlib.pyplot as plt

    from t5vae.model.objectives import kl_per_dim

    sns = _sns()
    kl = kl_per_dim(mu, logvar).mean(0).cpu().numpy()
    fig, ax = plt.subplots(figsize=(max(4, 0.18 * len(kl)), 2.8))
    sns.barplot(x=list(range(len(kl))), y=kl, ax=ax, color="#4c72b0")
    ax.set(xlabel="latent dimension", ylabel="KL (nats)", title=title or "KL per latent dimension")
    ax.tick_params(axis="x", labelsize=6)
    return fig


def latent_scatter(df, x: str, y: str, hue: str | None, title: str = ""):
    """A 2-D map of the posterior means, coloured by a label or factor."""
    import matplotlib.pyplot as plt

    sns = _sns()
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.scatterplot(data=df, x=x, y=y, hue=hue, s=14, alpha=0.8, ax=ax)
    ax.set(title=title)
    if hue:
        ax.legend(fontsize=7, title=hue, loc="best")
    return fig
