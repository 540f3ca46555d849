"""What the released code would have reported for each run, next to this package's numbers.

released.md, from the results files: its 'NLL' is a one-sample -ELBO, its '-ELBO' is rec - KL, its
PPL is per subword excluding EOS from the bound, its MI is averaged over batches of 256
(model/released.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from t5vae.report.format import markdown_table, mean_std_cell
from t5vae.report.results import collect
from t5vae.utils.files import atomic_write_text

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


def write_released(results_dir: Path, df: pd.DataFrame | None = None) -> Path:
    """released.md: what the released code would have reported for each run, next to ours."""
    df = collect(results_dir) if df is None else df
    md = [f"# As released vs corrected: {Path(results_dir).name}", "",
          "Each phase-2 run's test metrics as the released code computes them (src/t5vae/model/released.py: "
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
