"""The report's figures, from results files only: metric bars per technique (mean ± sd, seeds as
points), factor probes, the rate/distortion plane, controlled generation against alpha, phase-2
training curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from t5vae.evaluation.metrics import METRICS
from t5vae.report.format import save_figure as _save
from t5vae.report.results import collect, read_results


def _bars_with_seeds(data: pd.DataFrame, y: str, x: str, **kw):
    """Horizontal bars of the mean over seeds, sd error bars, and each seed as a point."""
    import seaborn as sns

    g = sns.catplot(data=data, y=y, x=x, kind="bar", errorbar="sd", capsize=0.2, alpha=0.85, **kw)
    g.map_dataframe(sns.stripplot, y=y, x=x, color="black", size=3, jitter=0.15,
                    **({"hue": kw["hue"], "dodge": True, "palette": "dark:black"} if "hue" in kw else {}))  # fmt: skip
    return g


def write_figures(results_dir: Path, df: pd.DataFrame | None = None) -> list[Path]:
    """Metric bars per technique (mean ± sd, seeds as points), factor probes, the rate/distortion
    plane (one point per run and seed) and phase-2 training curves (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    results_dir = Path(results_dir)
    fig_dir = results_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    df = collect(results_dir) if df is None else df
    ok = df[df["status"] == "ok"] if not df.empty else df
    paths = []
    if ok.empty:
        return paths
    sns.set_theme(style="whitegrid")
    for dataset in sorted(ok["dataset"].unique()):
        d2 = ok[(ok["dataset"] == dataset) & (ok["stage"] == "phase2")].sort_values("name")
        if not d2.empty:
            long = d2.melt(id_vars=["label", "seed"], value_vars=["kl", "mi", "au", "rec"],
                           var_name="metric")  # fmt: skip
            g = _bars_with_seeds(long, "label", "value", col="metric", sharex=False, height=3.6,
                                 aspect=0.8, color="#4c72b0")  # fmt: skip
            g.set_axis_labels("", "")
            g.set_titles("{col_name}")
            g.figure.suptitle(f"{dataset}: phase-2 techniques (bars: mean ± sd over seeds)", y=1.02)
            paths.append(_save(g.figure, fig_dir / f"{dataset}_metrics_by_technique.png"))
        probes = [c for c in d2.columns if c.startswith("probe_") and d2[c].notna().any()]
        if probes:
            long = d2.melt(id_vars=["label", "seed"], value_vars=probes, var_name="factor",
                           value_name="accuracy")  # fmt: skip
            long["factor"] = long["factor"].str.removeprefix("probe_")
            g = _bars_with_seeds(long, "label", "accuracy", hue="factor", height=4, aspect=1.4)
            g.set_axis_labels("linear-probe accuracy on z ~ q(z|x) (5-fold CV)", "")
            g.figure.suptitle(f"{dataset}: what the latent code captures", y=1.02)
            paths.append(_save(g.figure, fig_dir / f"{dataset}_factor_probes.png"))
        paths.append(_rate_distortion(ok[ok["dataset"] == dataset], dataset, fig_dir))
        if any(c.startswith("transfer_accuracy_a") for c in d2.columns):
            paths.append(_transfer_by_alpha(d2, dataset, fig_dir))
        curves = []
        for r in d2.itertuples():
            for h in read_results(Path(r.path)).get("history") or []:
                curves.append({"label": r.label, "seed": r.seed, "epoch": h["epoch"],
                               **{k: h[k] for k in curve_columns(h) if k in h}})  # fmt: skip
        if curves:
            long = pd.DataFrame(curves).melt(id_vars=["label", "seed", "epoch"], var_name="metric")
            g = sns.relplot(data=long, x="epoch", y="value", hue="label", col="metric", kind="line",
                            col_wrap=3, height=3, errorbar="sd", marker="o",
                            facet_kws={"sharey": False})  # fmt: skip
            g.figure.suptitle(f"{dataset}: phase-2 training curves (mean ± sd over seeds)", y=1.02)
            paths.append(_save(g.figure, fig_dir / f"{dataset}_training_curves.png"))
    plt.close("all")
    return paths


def curve_columns(row: dict) -> list[str]:
    """What a history row's curves show: every training term the objective logged (train_*)
    and the validation metrics the registry marks as curves (valid_*)."""
    return [k for k in row if k.startswith("train_")] + [
        f"valid_{m.name}" for m in METRICS.values() if m.curve
    ]


def _rate_distortion(ok: pd.DataFrame, dataset: str, fig_dir: Path) -> Path:
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(5.5, 4))
    sns.scatterplot(data=ok, x="kl", y="rec", hue="stage", style="stage", s=40, alpha=0.7, ax=ax)
    for label, g in ok.groupby("label"):
        ax.annotate(label, (g["kl"].mean(), g["rec"].mean()), fontsize=6, alpha=0.7,
                    xytext=(2, 2), textcoords="offset points")  # fmt: skip
    kl = ok["kl"]
    if (kl > 0).all() and kl.max() > 100 * kl.min():
        ax.set_xscale("log")  # phase-1 rates (no KL term) dwarf phase-2 ones
    ax.set(xlabel="rate: KL (nats)", ylabel="distortion: rec (nats)",
           title=f"{dataset}: rate vs distortion (one point per run and seed)")  # fmt: skip
    return _save(fig, fig_dir / f"{dataset}_rate_distortion.png")


def _transfer_by_alpha(d2: pd.DataFrame, dataset: str, fig_dir: Path) -> Path:
    """Controlled generation per technique: transfer accuracy, content kept and (with a grammar)
    grammatical rate against the shift's strength alpha (mean ± sd over seeds)."""
    import seaborn as sns

    families = ("transfer_accuracy", "content_kept", "grammatical")
    cols = [c for c in d2.columns if c.startswith(tuple(f"{f}_a" for f in families))]
    long = d2.melt(id_vars=["label", "seed"], value_vars=cols, var_name="metric").dropna()
    long["alpha"] = long["metric"].str.rsplit("_a", n=1).str[1].astype(float)
    long["metric"] = long["metric"].str.rsplit("_a", n=1).str[0]
    g = sns.relplot(data=long, x="alpha", y="value", hue="label", col="metric", kind="line",
                    marker="o", errorbar="sd", height=3.2, facet_kws={"sharey": False})  # fmt: skip
    alphas = sorted(long["alpha"].unique())
    g.set(xscale="log", ylim=(-0.02, 1.02))
    for ax in g.axes.flat:
        ax.minorticks_off()
        ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
    g.set_titles("{col_name}")
    g.set_axis_labels("alpha: z = mu_x + alpha v_c", "fraction of shifted sentences")
    g.figure.suptitle(f"{dataset}: attribute shifts (mean ± sd over seeds)", y=1.03)
    return _save(g.figure, fig_dir / f"{dataset}_transfer_by_alpha.png")
