"""The paper's tables (md/csv/tex) and figures, generated from results files only.

Every cell is a mean over the seeds that finished, with the sample standard deviation when there
are several (`12.63 ± 0.35`); the `n` column counts a run's seeds, and a cell computed from fewer
seeds than its row says so (`(n=2)`). `tables.csv` keeps one row per run and seed (the raw
numbers), `summary.csv` the mean, standard deviation and count of every metric.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from t5vae.io import atomic_file, atomic_write_text
from t5vae.metrics import METRICS, metric
from t5vae.results import collect, metric_columns, provenance_warnings

STAGE_TITLES = {"phase1": "Phase 1 variants (encoder pretraining)", "phase2": "Phase 2 ablation"}


def table_columns(stage: str) -> list[str]:
    """The metrics a stage's table shows, in the registry's order (metrics.METRICS)."""
    return [m.name for m in METRICS.values() if stage in m.tables]


def _fmt(v, col: str, n: int = 1) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    return metric(col).format(v, n)


def mean_std_cell(values: pd.Series, col: str, row_n: int | None = None) -> str:
    """`mean ± std` over seeds (sample std, ddof 1), `mean` alone for one seed, `(n=k)` when the
    cell has fewer values than its row."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "-"
    text = _fmt(float(v.mean()), col, len(v))
    if len(v) > 1:
        text += " ± " + _fmt(float(v.std(ddof=1)), col, len(v))
    if row_n is not None and len(v) != row_n:
        text += f" (n={len(v)})"
    return text


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, stage, name): label, n ok seeds, failed seeds, mean/std/n per metric."""
    rows = []
    if df.empty:
        return pd.DataFrame(rows)
    metrics = metric_columns(df)
    for (dataset, stage, name), g in df.groupby(["dataset", "stage", "name"], sort=True):
        ok = g[g["status"] == "ok"]
        row = {"dataset": dataset, "stage": stage, "name": name, "label": g["label"].iloc[0],
               "n": len(ok), "failed_seeds": ",".join(str(s) for s in g.loc[g["status"] != "ok", "seed"]),
               "seeds": ",".join(str(s) for s in sorted(ok["seed"]))}  # fmt: skip
        for m in metrics:
            v = pd.to_numeric(ok[m], errors="coerce").dropna() if m in ok else pd.Series([])
            row[f"{m}_mean"] = float(v.mean()) if len(v) else None
            row[f"{m}_std"] = float(v.std(ddof=1)) if len(v) > 1 else None
            row[f"{m}_n"] = len(v)
        rows.append(row)
    return pd.DataFrame(rows)


def table_frame(df: pd.DataFrame, dataset: str, stage: str) -> pd.DataFrame:
    """One table of the paper's layout: rows = runs, columns = n + metrics (+ factor probes)."""
    cols = table_columns(stage)
    sub = df[(df["dataset"] == dataset) & (df["stage"] == stage)]
    probes = sorted(c for c in sub.columns if c.startswith("probe_") and sub[c].notna().any())
    rows = []
    for _, g in sub.groupby("name", sort=True):
        ok = g[g["status"] == "ok"]
        failed = len(g) - len(ok)
        row = {
            "run": g["label"].iloc[0],
            "n": f"{len(ok)}" + (f" ({failed} failed)" if failed else ""),
        }
        if stage == "phase2":  # the phase-1 run it started from (profile.phase2_from_decoder)
            row["from"] = (
                ", ".join(sorted({str(v) for v in g["from_phase1"] if pd.notna(v)})) or "-"
            )
        for c in cols + probes:
            row[c] = (
                "FAILED"
                if ok.empty
                else mean_std_cell(ok[c] if c in ok else pd.Series([]), c, len(ok))
            )
        rows.append(row)
    start = ["from"] if stage == "phase2" else []
    return pd.DataFrame(rows, columns=["run", "n", *start, *cols, *probes])


def markdown_table(t: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "|".join("---" for _ in t.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)


def _tex(s) -> str:
    return (str(s).replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")
            .replace("±", "$\\pm$"))  # fmt: skip


def latex_table(t: pd.DataFrame, caption: str, label: str) -> str:
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{_tex(caption)}}}\\label{{{label}}}",
             "\\begin{tabular}{l" + "r" * (len(t.columns) - 1) + "}", "\\hline",
             " & ".join(_tex(c) for c in t.columns) + " \\\\", "\\hline"]  # fmt: skip
    lines += [" & ".join(_tex(v) for v in row) + " \\\\" for row in t.itertuples(index=False)]
    lines += ["\\hline", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def seeds_line(df: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in df["seed"].dropna()}) if not df.empty else []
    if len(seeds) > 1:
        return (f"Seeds {', '.join(map(str, seeds))}: each cell is the mean ± sample standard "
                "deviation over the seeds of that run (n: seeds that finished).")  # fmt: skip
    return f"Seed {seeds[0]} (one seed: no spread)." if seeds else "No results."


def write_tables(results_dir: Path) -> dict[str, Path]:
    """tables.md / .tex (mean ± std per run), tables.csv (one row per run and seed) and
    summary.csv (mean, std, n per metric) in results_dir."""
    results_dir = Path(results_dir)
    df = collect(results_dir)
    md, tex = [f"# Results: {results_dir.name}", "", seeds_line(df), ""], []
    for w in provenance_warnings(df):
        md.append(f"> **Warning:** {w}.")
    if md[-1] != "":
        md.append("")
    for dataset in sorted(df["dataset"].unique()) if not df.empty else []:
        for stage, title in STAGE_TITLES.items():
            t = table_frame(df, dataset, stage)
            if t.empty:
                continue
            md += [f"## {dataset}: {title}", "", markdown_table(t), ""]
            tex.append(latex_table(t, f"{dataset}: {title}", f"tab:{dataset}-{stage}"))
    md += convergence_section(df)
    failed = df[df["status"] != "ok"] if not df.empty else df
    if not failed.empty:
        md += ["## Failed runs", ""]
        md += [f"- {r.dataset} seed {r.seed} {r.run_id}" for r in failed.itertuples()] + [""]
    paths = {kind: results_dir / f"tables.{kind}" for kind in ("md", "csv", "tex")}
    paths["summary"] = results_dir / "summary.csv"
    raw = df.drop(columns=["path"], errors="ignore")
    atomic_write_text(paths["md"], "\n".join(md))
    atomic_write_text(paths["csv"], raw.to_csv(index=False))
    atomic_write_text(paths["tex"], "\n".join(tex))
    atomic_write_text(paths["summary"], summary(df).to_csv(index=False))
    return paths


RELEASED_COLUMNS = {  # "as released" (released.py) next to "corrected", from the results files
    "NLL as released: one-sample -ELBO": lambda r: r["neg_elbo"],
    "NLL: importance-weighted (K)": lambda r: r["nll"],
    "-ELBO as released: rec - KL": lambda r: r["rec"] - r["kl"],
    "-ELBO: rec + KL": lambda r: r["neg_elbo"],
    "PPL as released: per subword, from the bound": lambda r: math.exp(
        min(709.0, r["neg_elbo"] * r["n_sentences"] / max(1, r["n_tokens"] - r["n_sentences"]))
    ),
    "PPL: per word, from the IW-NLL": lambda r: r["ppl_word"],
    "MI as released: batches of 256": lambda r: r.get("mi_batch256"),
    "MI: whole set": lambda r: r["mi"],
}


def released_frame(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The released code's metrics next to the corrected ones, per phase-2 run (mean ± sd)."""
    ok = df[(df["status"] == "ok") & (df["dataset"] == dataset) & (df["stage"] == "phase2")]
    rows = []
    for _, g in ok.groupby("name", sort=True):
        row = {"run": g["label"].iloc[0], "n": len(g)}
        for col, value in RELEASED_COLUMNS.items():
            values = pd.Series([value(r) for _, r in g.iterrows()], dtype=float)
            row[col] = mean_std_cell(values, "ppl" if "PPL" in col else "rec", len(g))
        rows.append(row)
    return pd.DataFrame(rows)


def write_released(results_dir: Path) -> Path:
    """released.md: what the released code would have reported for each run, next to ours."""
    df = collect(results_dir)
    md = [f"# As released vs corrected: {Path(results_dir).name}", "",
          "Each phase-2 run's test metrics as the released code computes them (src/t5vae/released.py: "
          "its 'NLL' is a one-sample -ELBO, its '-ELBO' is rec - KL, its PPL is per subword "
          "excluding EOS from the bound, its MI is averaged over batches of 256) next to this "
          "package's. Per sentence, nats; mean ± sd over seeds.", ""]  # fmt: skip
    for dataset in sorted(df["dataset"].unique()) if not df.empty else []:
        t = released_frame(df, dataset)
        if not t.empty:
            md += [f"## {dataset}", "", markdown_table(t), ""]
    path = Path(results_dir) / "released.md"
    atomic_write_text(path, "\n".join(md))
    return path


UNFINISHED = 0.01  # a run that ends at its epoch limit still improving by more than this


def convergence_section(df: pd.DataFrame) -> list[str]:
    """Which runs stopped at their epoch limit while their selection metric (validation -ELBO in
    phase 2, rec in phase 1) was still falling by more than UNFINISHED per epoch."""
    ok = df[df["status"] == "ok"] if not df.empty else df
    if ok.empty or "last_change" not in ok:
        return []
    at_limit = ok[(ok["epochs"] >= ok["epoch_limit"]) & (ok["last_change"] < -UNFINISHED)]
    lines = ["## Convergence", ""]
    if at_limit.empty:
        lines.append(f"No run stopped at its epoch limit while its validation metric still fell by more "
                     f"than {UNFINISHED:.0%} per epoch.")  # fmt: skip
    else:
        lines.append(f"{len(at_limit)} of {len(ok)} runs stopped at their epoch limit while their "
                     f"validation metric still fell by more than {UNFINISHED:.0%} in the last epoch "
                     "(their numbers measure unfinished training):")  # fmt: skip
        lines += [f"- {r.dataset} seed {r.seed} {r.run_id}: {int(r.epochs)} epochs, last change "
                  f"{r.last_change:+.1%}" for r in at_limit.itertuples()]  # fmt: skip
    return [*lines, ""]


# ---------------------------------------------------------------------- figures
def _bars_with_seeds(data: pd.DataFrame, y: str, x: str, **kw):
    """Horizontal bars of the mean over seeds, sd error bars, and each seed as a point."""
    import seaborn as sns

    g = sns.catplot(data=data, y=y, x=x, kind="bar", errorbar="sd", capsize=0.2, alpha=0.85, **kw)
    g.map_dataframe(sns.stripplot, y=y, x=x, color="black", size=3, jitter=0.15,
                    **({"hue": kw["hue"], "dodge": True, "palette": "dark:black"} if "hue" in kw else {}))  # fmt: skip
    return g


def write_figures(results_dir: Path) -> list[Path]:
    """Metric bars per technique (mean ± sd, seeds as points), factor probes, the rate/distortion
    plane (one point per run and seed) and phase-2 training curves (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from t5vae.results import read_results

    results_dir = Path(results_dir)
    fig_dir = results_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    df = collect(results_dir)
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


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


if (
    __name__ == "__main__"
):  # python -m t5vae.tables DIR: tables, claims, figures of DIR's results files
    import sys

    from t5vae.claims import write_claims

    for folder in sys.argv[1:] or ["."]:
        write_tables(Path(folder))
        write_claims(Path(folder))
        write_released(Path(folder))
        write_figures(Path(folder))
        print(f"{folder}: tables.md, summary.csv, claims.md, released.md, figures/")
