"""Reproduced vs reference: every run, seed and metric of a grid against the committed reference.

Two tolerances, chosen per run from the two results files' provenance:

same environment  (same packages, CPU model, torch thread count and device; the host may differ)
    CPU training is bit-for-bit deterministic for a fixed thread count (measured: README, "Same
    machine, same seed, same numbers"), so the same seed must give the same value up to the
    printing of floats: |reproduced - reference| <= 1e-9 + 1e-6 |reference|.
other environment
    Another CPU type, thread count or library version changes the order of float operations, and
    training amplifies it: the same seed then gives an independent draw from the run's seed
    distribution. Each reproduced value must lie in the prediction interval of the reference
    seeds, mean ± t(1 - a/2, n-1) · sd · sqrt(1 + 1/n) (n reference seeds, sample sd), with
    a = 1% / (metrics compared in the run) (Bonferroni): a run that reproduces is flagged with
    probability <= 1%. AU is an integer: its tolerance is at least one unit. With one reference
    seed there is no spread and the run cannot be judged (listed as such).

A run missing or failed on either side is listed; the verdict counts it as not matching.
`finish_with_verdict` writes the report and prints the verdict (the last line ./reproduce.sh
prints); `save_reference` replaces a reference folder with a grid's results (--save-reference).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t5vae.io import atomic_dir, atomic_write_text
from t5vae.results import collect, metric_columns

# what --save-reference copies from results/<profile>/ into reference/<profile>/
REFERENCE_FILES = ("tables.md", "tables.csv", "tables.tex", "summary.csv", "claims.md",
                   "claims.csv", "released.md", "timing.csv", "timing.md")  # fmt: skip
SAME_ENV_RTOL, SAME_ENV_ATOL = 1e-6, 1e-9
FLAG_RATE = 0.01  # probability that a run reproducing in another environment is flagged
RESOLUTION = {"au": 1.0}  # integer metrics: the smallest difference that means anything

MATCH, DIFFERS, NO_SPREAD = "match", "DIFFERS", "no spread (1 reference seed)"


@dataclass
class Comparison:
    runs: pd.DataFrame  # one row per run and seed: key, status, mode, metrics outside tolerance
    metrics: pd.DataFrame  # one row per run, seed and metric compared
    verdict: str

    @property
    def ok(self) -> bool:
        return bool(len(self.runs)) and bool((self.runs["status"] == MATCH).all())


def _key(r) -> str:
    return f"{r['dataset']}/seed{r['seed']}/{r['run_id']}"


def _value(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def prediction_half_width(values: list[float], level: float) -> float | None:
    """Half-width of the `level` prediction interval for one more draw (None if n < 2)."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return None
    sd = float(pd.Series(values).std(ddof=1))
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return t * sd * math.sqrt(1 + 1 / n)


def compare(results_dir: Path, reference_dir: Path, keys: list[str] | None = None) -> Comparison:
    """Compare results_dir with reference_dir (both results/<profile>-shaped folders).

    `keys` (dataset/seed<k>/<stage>-<name>) are the runs to judge, e.g. those of the grid just run;
    None: every run in results_dir (a reference seed that was not rerun is not judged).
    """
    got, ref = collect(results_dir), collect(reference_dir)
    got_by = {_key(r): r for _, r in got.iterrows()}
    ref_by = {_key(r): r for _, r in ref.iterrows()}
    keys = sorted(got_by) if keys is None else list(keys)
    metrics = sorted(set(metric_columns(got)) | set(metric_columns(ref)))
    run_rows, metric_rows = [], []
    for key in keys:
        g, r = got_by.get(key), ref_by.get(key)
        dataset, _, run_id = key.split("/")
        spread = ref[
            (ref["dataset"] == dataset) & (ref["run_id"] == run_id) & (ref["status"] == "ok")
        ]
        row = {"run": key, "mode": "", "status": MATCH, "outside": ""}
        if g is None or g["status"] != "ok":
            row["status"] = "missing in reproduced" if g is None else "failed in reproduced"
        elif spread.empty:
            row["status"] = "missing in reference"
        elif _other_setting(g, spread):
            row["status"] = "parameters differ from the reference"
        else:
            same_env = r is not None and r["status"] == "ok" and r["env"] == g["env"]
            row["mode"] = "same environment" if same_env else "other environment"
            judged = _judge_run(key, g, r if same_env else None, spread, metrics)
            metric_rows += judged
            outside = [m["metric"] for m in judged if m["status"] == DIFFERS]
            if outside:
                row["status"], row["outside"] = DIFFERS, ", ".join(outside)
            elif any(m["status"] == NO_SPREAD for m in judged):
                row["status"] = NO_SPREAD
        run_rows.append(row)
    runs = pd.DataFrame(run_rows, columns=["run", "mode", "status", "outside"])
    cols = ["run", "metric", "reference", "reproduced", "difference", "tolerance", "status"]
    return Comparison(runs, pd.DataFrame(metric_rows, columns=cols), verdict(runs))


def _other_setting(got, spread: pd.DataFrame) -> bool:
    """The reference was computed with other parameters than the reproduced run (both known)."""
    known = spread["setting"].dropna() if "setting" in spread else []
    return got.get("setting") is not None and len(known) > 0 and (known != got["setting"]).any()


def _judge_run(key: str, got, same_seed, spread: pd.DataFrame, metrics: list[str]) -> list[dict]:
    """One row per metric: the same seed's value (same environment) or the reference seeds'
    prediction interval (other environment, `same_seed` None) against the reproduced value."""
    compared = [m for m in metrics if _value(got.get(m)) is not None]
    level = 1 - FLAG_RATE / max(1, len(compared))  # Bonferroni over the run's metrics
    rows = []
    for m in metrics:
        v = _value(got.get(m))
        if same_seed is not None:
            reference = [x for x in [_value(same_seed.get(m))] if x is not None]
        else:
            reference = [x for x in (_value(s) for s in spread.get(m, [])) if x is not None]
        row = {"run": key, "metric": m, "reproduced": v}
        if v is None or not reference:
            if v is not None or reference:
                rows.append({**row, "status": "only on one side"})
            continue
        expected = reference[0] if same_seed is not None else float(pd.Series(reference).mean())
        tol = SAME_ENV_ATOL + SAME_ENV_RTOL * abs(expected)
        if same_seed is None:
            half = prediction_half_width(reference, level)
            if half is None:
                rows.append({**row, "reference": expected, "status": NO_SPREAD})
                continue
            tol = max(half, RESOLUTION.get(m, 0.0), tol)
        infinite = math.isinf(v) or math.isinf(expected)
        within = v == expected if infinite else abs(v - expected) <= tol
        rows.append({**row, "reference": expected, "difference": None if infinite else v - expected,
                     "tolerance": tol, "status": MATCH if within else DIFFERS})  # fmt: skip
    return rows


def verdict(runs: pd.DataFrame, named: int = 5) -> str:
    """One line: "22/22 runs match the reference", or how many do not, by status, naming the
    first `named` with the metrics outside tolerance (all of them: comparison.md)."""
    n = len(runs)
    if n == 0:
        return "no runs to compare with the reference"
    good = runs[runs["status"] == MATCH]
    text = f"{len(good)}/{n} runs match the reference"
    modes = sorted(set(good["mode"]) - {""})
    if modes:
        text += f" ({' / '.join(modes)})"
    bad = runs[runs["status"] != MATCH]
    if not bad.empty:
        counts = ", ".join(f"{k} {v}" for k, v in bad["status"].value_counts(sort=False).items())
        parts = [f"{r.run} [{r.status}{': ' + r.outside if r.outside else ''}]"
                 for r in bad.head(named).itertuples()]  # fmt: skip
        more = f"; and {len(bad) - named} more (comparison.md)" if len(bad) > named else ""
        text += f"; not matching ({counts}): " + "; ".join(parts) + more
    return text


def _markdown(c: Comparison, results_dir: Path, reference_dir: Path) -> str:
    from t5vae.tables import markdown_table

    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"

    lines = [f"# Reproduced vs reference: {Path(results_dir).name}", "",
             f"Reproduced: `{results_dir}`; reference: `{reference_dir}`.", "",
             "Same environment (packages, CPU model, threads, device): the same seed must give the same "
             f"value (|difference| <= {SAME_ENV_ATOL:g} + {SAME_ENV_RTOL:g} |reference|). Other environment: "
             "the value must lie in the prediction interval of the reference seeds (mean ± t · sd · "
             f"sqrt(1 + 1/n), Bonferroni over a run's metrics: a reproducing run is flagged with "
             f"probability <= {FLAG_RATE:.0%}). See `t5vae/compare.py`.", "",
             "## Runs", "", markdown_table(c.runs.fillna("")), ""]  # fmt: skip
    off = c.metrics[c.metrics["status"] != MATCH]
    if not off.empty:
        shown = off.assign(**{k: off[k].map(fmt) for k in ("reference", "reproduced", "difference",
                                                          "tolerance")})  # fmt: skip
        lines += ["## Metrics outside tolerance or not compared", "", markdown_table(shown), ""]
    lines += [f"**Verdict:** {c.verdict}", ""]
    return "\n".join(lines)


def write_comparison(results_dir: Path, reference_dir: Path,
                     keys: list[str] | None = None) -> tuple[Comparison, dict[str, Path]]:  # fmt: skip
    """comparison.md, comparison.csv (every metric of every run) and comparison.png."""
    results_dir, reference_dir = Path(results_dir), Path(reference_dir)
    c = compare(results_dir, reference_dir, keys)
    paths = {"md": results_dir / "comparison.md", "csv": results_dir / "comparison.csv",
             "figure": results_dir / "figures" / "comparison.png"}  # fmt: skip
    atomic_write_text(paths["md"], _markdown(c, results_dir, reference_dir))
    atomic_write_text(paths["csv"], c.metrics.to_csv(index=False))
    _figure(c, paths["figure"])
    return c, paths


def _figure(c: Comparison, path: Path) -> None:
    """Heat map of |difference| / tolerance per run and metric (above 1: outside tolerance)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    from t5vae.tables import _save

    path.parent.mkdir(parents=True, exist_ok=True)
    m = c.metrics.dropna(subset=["difference", "tolerance"])
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * m["metric"].nunique() + 3),
                                    max(2.5, 0.28 * m["run"].nunique() + 1.5)))  # fmt: skip
    if m.empty:
        ax.text(0.5, 0.5, c.verdict, ha="center", va="center", wrap=True)
        ax.axis("off")
    else:
        ratio = (m["difference"].abs() / m["tolerance"].where(m["tolerance"] > 0)).fillna(0.0)
        grid = m.assign(ratio=np.minimum(ratio, 10.0)).pivot(index="run", columns="metric",
                                                             values="ratio")  # fmt: skip
        sns.heatmap(grid, vmin=0, vmax=2, cmap="RdYlGn_r", cbar_kws={"label": "|diff| / tolerance"},
                    linewidths=0.3, ax=ax)  # fmt: skip
        ax.set(xlabel="", ylabel="", title="reproduced vs reference (red: outside tolerance)")
    _save(fig, path)


def finish_with_verdict(results_dir: Path, reference: Path, keys: list[str], failed: bool) -> int:
    """Write the comparison with the reference and print its verdict as the last line."""
    from t5vae.compare import write_comparison
    from t5vae.results import result_files

    if not result_files(reference):
        print(f"\nno reference results in {reference}: nothing to compare with")
        return 1 if failed else 0
    present = [f"{p.parts[-3]}/{p.parts[-2]}/{p.stem}" for p in result_files(results_dir)]
    comparison, paths = write_comparison(results_dir, reference, sorted(set(keys) | set(present)))
    print(f"comparison: {paths['md']} ({paths['csv'].name}, figures/{paths['figure'].name})")
    print(f"\nverdict: {comparison.verdict}", flush=True)
    return 1 if failed else 0 if comparison.ok else 3


def save_reference(results_dir: Path, reference: Path) -> None:
    """Replace `reference` by the results files, tables, claims and figures of results_dir."""
    from t5vae.results import result_files

    with atomic_dir(reference) as tmp:
        for path in result_files(results_dir):
            dest = tmp / path.relative_to(results_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        for name in REFERENCE_FILES:
            if (results_dir / name).is_file():
                shutil.copy2(results_dir / name, tmp / name)
        if (results_dir / "figures").is_dir():
            shutil.copytree(results_dir / "figures", tmp / "figures",
                            ignore=shutil.ignore_patterns("comparison.png"))  # fmt: skip
