"""The paper's tables (md/csv/tex), generated from results files only (figures: figures.py).

Every cell is a mean over the seeds that finished, with the sample standard deviation when there
are several (`12.63 ± 0.35`); the `n` column counts a run's seeds, and a cell computed from fewer
seeds than its row says so (`(n=2)`). `tables.csv` keeps one row per run and seed (the raw
numbers), `summary.csv` the mean, standard deviation and count of every metric. A dataset with
published rows (params/published/) gets them beside ours (report/published.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from t5vae.evaluation.latent import HEADLINE_ALPHA
from t5vae.evaluation.metrics import METRICS
from t5vae.report.format import latex_table, markdown_table, mean_std_cell
from t5vae.report.published import INTERPOLATION_FILE, literature_section, published_section
from t5vae.report.results import collect, metric_columns, provenance_warnings
from t5vae.utils.files import atomic_write_text

STAGE_TITLES = {"phase1": "Phase 1 variants (encoder pretraining)", "phase2": "Phase 2 ablation"}


def table_columns(stage: str) -> list[str]:
    """The metrics a stage's table shows, in the registry's order (metrics.METRICS)."""
    return [m.name for m in METRICS.values() if stage in m.tables]


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


def seeds_line(df: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in df["seed"].dropna()}) if not df.empty else []
    if len(seeds) > 1:
        return (f"Seeds {', '.join(map(str, seeds))}: each cell is the mean ± sample standard "
                "deviation over the seeds of that run (n: seeds that finished).")  # fmt: skip
    return f"Seed {seeds[0]} (one seed: no spread)." if seeds else "No results."


def write_tables(results_dir: Path, df: pd.DataFrame | None = None) -> dict[str, Path]:
    """tables.md / .tex (mean ± std per run), tables.csv (one row per run and seed) and
    summary.csv (mean, std, n per metric) in results_dir (`df`: its results, collected once); with
    published targets for a dataset, literature.md (where each target lands)."""
    results_dir = Path(results_dir)
    df = collect(results_dir) if df is None else df
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
    md += latent_section(df)
    md += published_section(df)
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
    found = results_dir / INTERPOLATION_FILE  # written by the grid from the checkpoints
    literature = literature_section(df, results_dir.name,
                                    interpolations=json.loads(found.read_text()) if found.is_file() else None)  # fmt: skip
    if literature:
        paths["literature"] = results_dir / "literature.md"
        atomic_write_text(paths["literature"],
                          "\n".join([f"# {results_dir.name}: next to the literature", "", *literature]))  # fmt: skip
    return paths


def latent_columns(df: pd.DataFrame) -> list[str]:
    """The latent-space table's metrics (the registry's `latent` entries, in its order), families
    expanded to the columns present; attribute shifts at alpha = HEADLINE_ALPHA only."""
    headline = f"_a{HEADLINE_ALPHA:g}"
    out = []
    for name in table_columns("latent"):
        if not name.endswith("*"):
            out += [name] if name in df else []
            continue
        found = sorted(c for c in df.columns if c.startswith(name[:-1]) and df[c].notna().any())
        shifts = [c for c in found if c.endswith(headline)]
        out += shifts or [c for c in found if "_a" not in c.removeprefix(name[:-1])]
    return out


def latent_frame(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The latent-space table of a dataset's phase-2 runs: the collapse diagnosis (each label with
    its count over seeds), then latent_columns (mean ± sd); empty when none was scored."""
    cols = latent_columns(df) if not df.empty else []
    if not cols:
        return pd.DataFrame()
    sub = df[(df["dataset"] == dataset) & (df["stage"] == "phase2") & (df["status"] == "ok")]
    if sub.empty or not sub[cols].notna().any().any():
        return pd.DataFrame()
    rows = []
    for _, g in sub.groupby("name", sort=True):
        counts = g["diagnosis"].dropna().value_counts()
        row = {"run": g["label"].iloc[0], "n": str(len(g)),
               "diagnosis": ", ".join(f"{k} ({v})" for k, v in counts.items()) or "-"}  # fmt: skip
        row.update({c: mean_std_cell(g[c], c, len(g)) for c in cols})
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", "n", "diagnosis", *cols])


def latent_section(df: pd.DataFrame) -> list[str]:
    """latent_frame per dataset whose phase-2 runs were scored in the latent space
    (evaluation.latent): controlled generation at alpha = HEADLINE_ALPHA (figures/
    <dataset>_transfer_by_alpha.png: every alpha), disentanglement, path smoothness, diversity."""
    lines = []
    for dataset in sorted(df["dataset"].unique()) if not df.empty else []:
        table = latent_frame(df, dataset)
        if table.empty:
            continue
        lines += [f"## {dataset}: the latent space (phase 2)", "",
                  f"Attribute shifts at alpha = {HEADLINE_ALPHA:g} (every alpha: "
                  f"figures/{dataset}_transfer_by_alpha.png); the diagnosis's rules: "
                  "t5vae/evaluation/diagnosis.py.", "", markdown_table(table), ""]  # fmt: skip
    return lines


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
