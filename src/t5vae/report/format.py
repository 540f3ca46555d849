"""How the report writes: a cell (mean ± sd over seeds), markdown and LaTeX tables, figures as PNG
(atomically)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from t5vae.evaluation.metrics import metric
from t5vae.utils.files import atomic_file


def value_cell(v, col: str, n: int = 1) -> str:
    """One value as the metric writes it (evaluation.metrics), "-" when missing."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    return metric(col).format(v, n)


def mean_std_cell(values: pd.Series, col: str, row_n: int | None = None) -> str:
    """`mean ± std` over seeds (sample std, ddof 1), `mean` alone for one seed, `(n=k)` when the
    cell has fewer values than its row."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "-"
    text = value_cell(float(v.mean()), col, len(v))
    if len(v) > 1:
        text += " ± " + value_cell(float(v.std(ddof=1)), col, len(v))
    if row_n is not None and len(v) != row_n:
        text += f" (n={len(v)})"
    return text


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


def save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
