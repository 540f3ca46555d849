"""Results files (atomic, with provenance), the paper's tables (md/csv/tex) and figures.

results/<profile>/<dataset>/<stage>-<name>.json holds {"metrics", "provenance", "status", ...};
tables and figures are generated from those files only, never edited by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from t5vae.metrics import METRIC_KEYS

PACKAGES = ("t5vae", "torch", "transformers", "accelerate", "datasets", "sentencepiece", "numpy")
PHASE1_COLUMNS = ["rec", "kl", "mi", "au", "nll", "ppl", "bleu"]
PHASE2_COLUMNS = [
    "ppl",
    "ppl_word",
    "ppl_elbo",
    "nll",
    "neg_elbo",
    "rec",
    "kl",
    "mi",
    "au",
    "bleu",
    "distinct_2",
]
LOWER_IS_BETTER = {"ppl", "ppl_word", "ppl_elbo", "nll", "neg_elbo", "rec"}


class ResultsError(ValueError):
    """A results file is corrupted, truncated or not a results file (the message names it)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file + rename: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def git_state(repo: Path | None = None) -> dict:
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
        # generated results/ do not make the code dirty (they are rewritten by design)
        status = [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)results",
        ]
        dirty = bool(
            subprocess.run(status, cwd=repo, capture_output=True, text=True).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def provenance(spec, **extra) -> dict:
    params = spec.params()
    return {
        **git_state(),
        "versions": versions(),
        "params": params,
        "params_hash": params_hash(params),
        "seed": spec.profile.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        **extra,
    }


def _record(spec, status: str, metrics: dict | None, error: str | None = None, **extra) -> dict:
    label = spec.technique.label if spec.stage == "phase2" else spec.name
    return {
        "run_id": spec.run_id, "profile": spec.profile.name, "dataset": spec.dataset.name,
        "stage": spec.stage, "name": spec.name, "label": label or spec.name, "status": status,
        "error": error, "metrics": metrics, "provenance": provenance(spec, **extra),
    }  # fmt: skip


def write_results(spec, metrics: dict, examples: dict | None = None, **extra) -> dict:
    """Write the run's results file atomically; returns the record."""
    record = _record(
        spec, "ok", {k: v for k, v in metrics.items() if k not in ("mu", "logvar")}, **extra
    )
    record["examples"] = examples or {}
    atomic_write_text(spec.results_file, json.dumps(record, indent=2, default=float))
    return record


def write_failure(spec, error: str, **extra) -> dict:
    """Mark a run failed (kept in the tables as failed, never silently omitted)."""
    record = _record(spec, "failed", None, error=error, **extra)
    atomic_write_text(spec.results_file, json.dumps(record, indent=2))
    return record


def read_results(path: Path) -> dict:
    """Load one results file, or raise ResultsError naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(
            f"{path}: corrupted or truncated results file ({e}); delete it to recompute"
        ) from None
    if not isinstance(record, dict) or not {"run_id", "status", "metrics", "provenance"} <= set(
        record
    ):
        raise ResultsError(
            f"{path}: not a t5vae results file (missing keys); delete it to recompute"
        )
    if record["status"] == "ok" and not set(METRIC_KEYS) <= set(record["metrics"] or {}):
        raise ResultsError(f"{path}: results file lacks metrics; delete it to recompute")
    return record


def is_complete(path: Path) -> bool:
    """A valid results file with status ok exists (what lets reproduce skip a run)."""
    try:
        return read_results(path)["status"] == "ok"
    except (ResultsError, FileNotFoundError):
        return False


def collect(results_dir: Path) -> pd.DataFrame:
    """All results files under results_dir/<dataset>/ as one row per run."""
    rows = []
    for path in sorted(Path(results_dir).glob("*/*.json")):
        rec = read_results(path)
        prov = rec["provenance"]
        row = {k: rec[k] for k in ("dataset", "stage", "name", "label", "status", "run_id")}
        row.update(rec["metrics"] or {})
        row.update(git_commit=prov.get("git_commit"), git_dirty=prov.get("git_dirty"),
                   params_hash=prov.get("params_hash"), profile_params=params_hash(prov["params"]["profile"]),
                   train_time_s=prov.get("train_time_s"), eval_time_s=prov.get("eval_time_s"))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def provenance_warnings(df: pd.DataFrame) -> list[str]:
    """Say so when results of different code versions or profile parameters are mixed."""
    out = []
    if df.empty:
        return out
    commits = sorted({str(c)[:10] for c in df["git_commit"].dropna()})
    if len(commits) > 1:
        out.append(f"results come from {len(commits)} code versions: {', '.join(commits)}")
    if df["git_dirty"].fillna(False).astype(bool).any():
        out.append("some results were produced with uncommitted changes (git_dirty)")
    if df["profile_params"].nunique() > 1:
        out.append("results were produced with different profile parameters")
    return out


def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    if col == "au":
        return f"{int(v)}"
    if col.startswith("distinct"):
        return f"{v:.3f}"
    if col.startswith("ppl") and v >= 1000:
        return f"{v:.3g}"
    return f"{v:.2f}"


def table_frame(df: pd.DataFrame, dataset: str, stage: str) -> pd.DataFrame:
    """One table of the paper's layout: rows = runs, columns = metrics (+ factor probes if any)."""
    cols = PHASE1_COLUMNS if stage == "phase1" else PHASE2_COLUMNS
    sub = df[(df["dataset"] == dataset) & (df["stage"] == stage)].sort_values("name")
    probes = sorted(c for c in sub.columns if c.startswith("probe_") and sub[c].notna().any())
    out = pd.DataFrame({"run": sub["label"].values})
    for c in cols + probes:
        values = sub[c] if c in sub else [None] * len(sub)
        out[c] = [
            _fmt(v, c) if s == "ok" else "FAILED"
            for v, s in zip(values, sub["status"], strict=True)
        ]
    return out


def markdown_table(t: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "|".join("---" for _ in t.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)


def latex_table(t: pd.DataFrame, caption: str, label: str) -> str:
    esc = lambda s: str(s).replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")  # noqa: E731
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{esc(caption)}}}\\label{{{label}}}",
             "\\begin{tabular}{l" + "r" * (len(t.columns) - 1) + "}", "\\hline",
             " & ".join(esc(c) for c in t.columns) + " \\\\", "\\hline"]  # fmt: skip
    lines += [" & ".join(esc(v) for v in row) + " \\\\" for row in t.itertuples(index=False)]
    lines += ["\\hline", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def write_tables(results_dir: Path) -> dict[str, Path]:
    """tables.md, tables.csv (one row per run, every metric) and tables.tex in results_dir."""
    results_dir = Path(results_dir)
    df = collect(results_dir)
    md, tex = [f"# Results: {results_dir.name}", ""], []
    for w in provenance_warnings(df):
        md.append(f"> **Warning:** {w}.")
    if md[-1] != "":
        md.append("")
    for dataset in sorted(df["dataset"].unique()) if not df.empty else []:
        for stage, title in (
            ("phase1", "Phase 1 variants (encoder pretraining)"),
            ("phase2", "Phase 2 ablation"),
        ):
            t = table_frame(df, dataset, stage)
            if t.empty:
                continue
            md += [f"## {dataset}: {title}", "", markdown_table(t), ""]
            tex.append(latex_table(t, f"{dataset}: {title}", f"tab:{dataset}-{stage}"))
    failed = df[df["status"] != "ok"] if not df.empty else df
    if not failed.empty:
        md += (
            ["## Failed runs", ""]
            + [f"- {r.dataset} {r.run_id}" for r in failed.itertuples()]
            + [""]
        )
    paths = {
        "md": results_dir / "tables.md",
        "csv": results_dir / "tables.csv",
        "tex": results_dir / "tables.tex",
    }
    atomic_write_text(paths["md"], "\n".join(md))
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["tex"], "\n".join(tex))
    return paths


def write_figures(results_dir: Path, runs_dir: Path | None = None) -> list[Path]:
    """Metric bars per technique, the rate/distortion plane, training curves (from history.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

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
        d2 = ok[(ok["dataset"] == dataset) & (ok["stage"] == "phase2")]
        if not d2.empty:
            long = d2.melt(
                id_vars=["label"], value_vars=["kl", "mi", "au", "rec"], var_name="metric"
            )
            g = sns.catplot(data=long, y="label", x="value", col="metric", kind="bar", sharex=False,
                            height=3.6, aspect=0.8, color="#4c72b0")  # fmt: skip
            g.set_axis_labels("", "")
            g.set_titles("{col_name}")
            g.figure.suptitle(f"{dataset}: phase-2 techniques", y=1.02)
            paths.append(_save(g.figure, fig_dir / f"{dataset}_metrics_by_technique.png"))
        probes = [c for c in d2.columns if c.startswith("probe_") and d2[c].notna().any()]
        if probes:
            long = d2.melt(
                id_vars=["label"], value_vars=probes, var_name="factor", value_name="accuracy"
            )
            long["factor"] = long["factor"].str.removeprefix("probe_")
            g = sns.catplot(
                data=long, y="label", x="accuracy", hue="factor", kind="bar", height=4, aspect=1.4
            )
            g.set_axis_labels("linear-probe accuracy on z ~ q(z|x) (5-fold CV)", "")
            g.figure.suptitle(f"{dataset}: what the latent code captures", y=1.02)
            paths.append(_save(g.figure, fig_dir / f"{dataset}_factor_probes.png"))
        fig, ax = plt.subplots(figsize=(5.5, 4))
        sns.scatterplot(
            data=ok[ok["dataset"] == dataset],
            x="kl",
            y="rec",
            hue="stage",
            style="stage",
            s=60,
            ax=ax,
        )
        for r in ok[ok["dataset"] == dataset].itertuples():
            ax.annotate(
                r.label,
                (r.kl, r.rec),
                fontsize=6,
                alpha=0.7,
                xytext=(2, 2),
                textcoords="offset points",
            )
        kl = ok.loc[ok["dataset"] == dataset, "kl"]
        if (kl > 0).all() and kl.max() > 100 * kl.min():
            ax.set_xscale("log")  # phase-1 rates (no KL term) dwarf phase-2 ones
        ax.set(
            xlabel="rate: KL (nats)",
            ylabel="distortion: rec (nats)",
            title=f"{dataset}: rate vs distortion",
        )
        paths.append(_save(fig, fig_dir / f"{dataset}_rate_distortion.png"))
        if runs_dir is not None:
            curves = []
            for r in d2.itertuples():
                hist = Path(runs_dir) / dataset / "phase2" / r.name / "history.json"
                if hist.is_file():
                    for h in json.loads(hist.read_text()):
                        curves.append({"label": r.label, "epoch": h["epoch"], "valid_kl": h.get("valid_kl"),
                                       "valid_mi": h.get("valid_mi"), "valid_au": h.get("valid_au"),
                                       "train_rec": h.get("train_rec")})  # fmt: skip
            if curves:
                long = pd.DataFrame(curves).melt(id_vars=["label", "epoch"], var_name="metric")
                g = sns.relplot(data=long, x="epoch", y="value", hue="label", col="metric", kind="line",
                                col_wrap=2, height=3, facet_kws={"sharey": False}, marker="o")  # fmt: skip
                g.figure.suptitle(f"{dataset}: phase-2 training curves", y=1.02)
                paths.append(_save(g.figure, fig_dir / f"{dataset}_training_curves.png"))
    return paths


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
