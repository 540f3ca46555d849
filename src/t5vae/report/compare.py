"""Reproduced vs reference: every run, seed and metric of a grid, and every claim, against the
committed reference.

Two levels decide whether a grid reproduces its reference (`Comparison.ok`, exit status 3 if not):

metrics, same environment  (same packages, CPU model, torch thread count and device; the host may
    differ) CPU training is bit-for-bit deterministic for a fixed thread count (README, "Same
    machine, same seed, same numbers"), so the same seed must give the same value up to the
    printing of floats: |reproduced - reference| <= 1e-9 + 1e-6 |reference|. A difference is an
    error (DIFFERS).
claims, any environment  each claim of params/claims.yaml that the reference shows beyond seed
    noise must keep its direction (claims.compare_claims): a claim DISAGREES when the reproduced
    difference points the other way by more than the reference's seed noise allows.

In another environment the same seed is an independent draw from the run's seed distribution, so
metrics only warn: each value should lie in the prediction interval of the reference seeds,
mean ± t(1 - a/2, dof) · sd · sqrt(1 + 1/n), with a = 1% / (metrics compared in the run)
(Bonferroni: a run that reproduces gets a warning with probability <= 1%), where

  sd   the reference seeds' sample sd, at least the metric's typical relative spread times |mean|
       (the median over the reference's runs of sd_i / |mean_i|, with the dof of all their seeds),
       so that three seeds that happen to agree do not make a point of the interval;
  half-width  at least the metric's resolution (metrics.Metric.resolution: 1 for AU, 1/n test
       sentences for probe accuracies, 1/n prior samples for distinct-n);
  bounds  a reference whose seeds all sit at a bound of the metric (an accuracy of 1, no active
       unit) gets a one-sided interval (t(1 - a)), and every interval is clipped to the metric's
       range.

A value outside is an OUTLIER, listed with its distance in reference sds. With one reference seed
there is no spread and a run cannot be judged (listed as such). A run missing or failed in the
reproduction is listed and counts as not reproduced; a run the reference lacks, or computed there
with other parameters, is listed as having nothing to compare with, and a grid with nothing to
compare with at all says so and passes. `finish_with_verdict` writes the report and prints the
verdict (the last line ./reproduce.sh prints); saving a grid's results as a reference:
report/reference.py.

Exact numbers of other environments: the CPU model alone moves every value (an Intel and an AMD
machine of this project give different floats; reference/measurements/quick_intel_vs_amd.md), so
a reference can hold, beside its seeds, the results of a grid that reproduced it in another
environment, in `environments/<name>/` (report/reference.py, --save-environment). A run whose
environment is one of them is judged exactly against it, as in the reference's own environment;
the seeds' intervals and the claims still come from the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t5vae.report.format import markdown_table, save_figure
from t5vae.report.results import (
    collect,
    metric_columns,
    result_files,
    same_environment,
)
from t5vae.report.statistics import Interval, finite_or_none, resolution, typical_relative_spread
from t5vae.utils.files import atomic_write_text

ENVIRONMENTS = "environments"  # reference/<profile>/environments/<name>/<dataset>/seed<k>/*.json
SAME_ENV_RTOL, SAME_ENV_ATOL = 1e-6, 1e-9
FLAG_RATE = 0.01  # probability that a run reproducing in another environment gets a warning

MATCH, DIFFERS, OUTLIER = "match", "DIFFERS", "outlier"
NO_SPREAD = "no spread (1 reference seed)"
MISSING, FAILED = "missing in reproduced", "failed in reproduced"
NO_REFERENCE, OTHER_PARAMS = "missing in reference", "parameters differ from the reference"
NOT_REPRODUCED = (DIFFERS, MISSING, FAILED)  # run statuses that make a grid fail
NOTHING_TO_COMPARE = (NO_REFERENCE, OTHER_PARAMS)


@dataclass
class Comparison:
    runs: pd.DataFrame  # one row per run and seed: key, status, mode, metrics outside tolerance
    metrics: pd.DataFrame  # one row per run, seed and metric compared
    claims: pd.DataFrame  # one row per dataset and claim (claims.compare_claims)
    verdict: str

    @property
    def compared(self) -> bool:
        """Some run had a reference to compare with."""
        return bool((~self.runs["status"].isin(NOTHING_TO_COMPARE)).any())

    @property
    def ok(self) -> bool:
        """No same-environment difference, no missing or failed run, no claim that disagrees."""
        from t5vae.report.claims import DISAGREES

        return not self.runs["status"].isin(NOT_REPRODUCED).any() and not (
            len(self.claims) and (self.claims["status"] == DISAGREES).any()
        )


def _key(r) -> str:
    return f"{r['dataset']}/seed{r['seed']}/{r['run_id']}"


def compare(results_dir: Path, reference_dir: Path, keys: list[str] | None = None,
            got: pd.DataFrame | None = None) -> Comparison:  # fmt: skip
    """Compare results_dir with reference_dir (both results/<profile>-shaped folders).

    `keys` (dataset/seed<k>/<stage>-<name>) are the runs to judge, e.g. those of the grid just run;
    None: every run in results_dir (a reference seed that was not rerun is not judged). `got`:
    results_dir's results, when already collected.
    """
    from t5vae.config import params as P
    from t5vae.report.claims import compare_claims

    got = collect(results_dir) if got is None else got
    ref = collect(reference_dir)
    got_by = {_key(r): r for _, r in got.iterrows()}
    exact_by: dict[str, list] = {}  # the reference's own seeds first, then other environments'
    for rows in (ref, *map(collect, environment_dirs(reference_dir))):
        for _, r in rows.iterrows():
            exact_by.setdefault(_key(r), []).append(r)
    keys = sorted(got_by) if keys is None else list(keys)
    metrics = sorted(set(metric_columns(got)) | set(metric_columns(ref)))
    pooled = {m: typical_relative_spread(ref, m) for m in metrics}
    run_rows, metric_rows, judged_keys = [], [], []
    for key in keys:
        g = got_by.get(key)
        dataset, _, run_id = key.split("/")
        spread = ref[
            (ref["dataset"] == dataset) & (ref["run_id"] == run_id) & (ref["status"] == "ok")
        ]
        row = {"run": key, "mode": "", "status": MATCH, "outside": ""}
        if g is None or g["status"] != "ok":
            row["status"] = MISSING if g is None else FAILED
        elif spread.empty:
            row["status"] = NO_REFERENCE
        elif _other_setting(g, spread):
            row["status"] = OTHER_PARAMS
        else:
            judged_keys.append(key)
            exact = _same_environment_result(g, exact_by.get(key, []))
            same_env = exact is not None
            row["mode"] = "same environment" if same_env else "other environment"
            judged = _judge_run(key, g, exact, spread, metrics, pooled)
            metric_rows += judged
            bad = [m for m in judged if m["status"] in (DIFFERS, OUTLIER)]
            if bad:
                row["status"] = DIFFERS if same_env else OUTLIER
                row["outside"] = ", ".join(
                    m["metric"] if same_env else f"{m['metric']} ({_sds(m['distance'])})"
                    for m in bad
                )
            elif any(m["status"] == NO_SPREAD for m in judged):
                row["status"] = NO_SPREAD
        run_rows.append(row)
    runs = pd.DataFrame(run_rows, columns=["run", "mode", "status", "outside"])
    cols = ["run", "metric", "reference", "reproduced", "difference", "tolerance", "low", "high",
            "distance", "status"]  # fmt: skip
    judged_got = got[got.apply(_key, axis=1).isin(judged_keys)] if len(got) else got
    claims = compare_claims(judged_got, ref, P.load_claims(), pooled)
    return Comparison(runs, pd.DataFrame(metric_rows, columns=cols), claims, verdict(runs, claims))


def _sds(distance: float) -> str:
    return "no spread" if math.isinf(distance) else f"{distance:.1f} sd"


def environment_dirs(reference_dir: Path) -> list[Path]:
    """The folders of the exact numbers of other environments a reference holds."""
    return sorted(p for p in (Path(reference_dir) / ENVIRONMENTS).glob("*") if p.is_dir())


def _same_environment_result(got, candidates: list):
    """The first reference result of this run computed in the reproduced run's environment with
    its parameters (the same seed, so the same numbers are expected), or None."""
    for r in candidates:
        same_setting = pd.isna(r.get("setting")) or r.get("setting") == got.get("setting")
        if r["status"] == "ok" and same_setting and same_environment(r, got):
            return r
    return None


def _other_setting(got, spread: pd.DataFrame) -> bool:
    """The reference was computed with other parameters than the reproduced run (both known)."""
    known = spread["setting"].dropna() if "setting" in spread else []
    return got.get("setting") is not None and len(known) > 0 and (known != got["setting"]).any()


def _judge_run(key: str, got, same_seed, spread: pd.DataFrame, metrics: list[str],
               pooled: dict) -> list[dict]:  # fmt: skip
    """One row per metric: the same seed's value (same environment) or the reference seeds'
    interval (other environment, `same_seed` None) against the reproduced value."""
    compared = [m for m in metrics if finite_or_none(got.get(m)) is not None]
    level = 1 - FLAG_RATE / max(1, len(compared))  # Bonferroni over the run's metrics
    rows = []
    for m in metrics:
        v = finite_or_none(got.get(m))
        if same_seed is not None:
            reference = [x for x in [finite_or_none(same_seed.get(m))] if x is not None]
        else:
            reference = [x for x in (finite_or_none(s) for s in spread.get(m, [])) if x is not None]
        row = {"run": key, "metric": m, "reproduced": v}
        if v is None or not reference:
            if v is not None or reference:
                rows.append({**row, "status": "only on one side"})
            continue
        if same_seed is not None:
            expected = reference[0]
            infinite = math.isinf(v) or math.isinf(expected)
            tol = SAME_ENV_ATOL + SAME_ENV_RTOL * abs(expected)
            within = v == expected if infinite else abs(v - expected) <= tol
            rows.append({**row, "reference": expected, "difference": None if infinite else v - expected,
                         "tolerance": tol, "status": MATCH if within else DIFFERS})  # fmt: skip
            continue
        finite = [x for x in reference if math.isfinite(x)]
        if len(finite) < len(reference) or not math.isfinite(v):  # e.g. ppl overflowed
            expected = float(pd.Series(reference).mean())
            rows.append({**row, "reference": expected,
                         "status": MATCH if all(x == v for x in reference) else OUTLIER,
                         "distance": 0.0 if all(x == v for x in reference) else math.inf})  # fmt: skip
            continue
        got_row = got if finite_or_none(got.get("n_sentences")) else spread.iloc[0]
        interval = Interval.of(finite, m, level, pooled.get(m, (0.0, 0)), resolution(m, got_row))
        if interval is None:
            rows.append({**row, "reference": finite[0], "status": NO_SPREAD})
            continue
        inside = interval.low <= v <= interval.high
        rows.append({**row, "reference": interval.mean, "difference": v - interval.mean,
                     "tolerance": max(interval.high - interval.mean, interval.mean - interval.low),
                     "low": interval.low, "high": interval.high,
                     "distance": interval.distance(v), "status": MATCH if inside else OUTLIER})  # fmt: skip
    return rows


def verdict(runs: pd.DataFrame, claims: pd.DataFrame | None = None, named: int = 5) -> str:
    """One line: "24/24 runs match the reference (same environment); claims: 12 reproduced, ...",
    or what does not match, by status, naming the first `named` runs (all of them:
    comparison.md). Outliers of another environment are counts of warnings."""
    from t5vae.report.claims import claims_verdict

    n = len(runs)
    if n == 0:
        return "no runs to compare with the reference"
    compared = runs[~runs["status"].isin(NOTHING_TO_COMPARE)]
    if compared.empty:
        counts = ", ".join(f"{k} {v}" for k, v in runs["status"].value_counts(sort=False).items())
        return f"nothing to compare with: none of the {n} runs has a reference result ({counts})"
    good = compared[compared["status"].isin((MATCH, OUTLIER))]
    text = f"{len(good)}/{len(compared)} runs match the reference"
    modes = sorted(set(good["mode"]) - {""})
    if modes:
        text += f" ({' / '.join(modes)})"
    outliers = compared[compared["status"] == OUTLIER]
    if not outliers.empty:
        text += f", {len(outliers)} with metrics outside the reference seeds' interval (warnings)"
    bad = compared[~compared["status"].isin((MATCH, OUTLIER))]
    if not bad.empty:
        counts = ", ".join(f"{k} {v}" for k, v in bad["status"].value_counts(sort=False).items())
        parts = [f"{r.run} [{r.status}{': ' + r.outside if r.outside else ''}]"
                 for r in bad.head(named).itertuples()]  # fmt: skip
        more = f"; and {len(bad) - named} more (comparison.md)" if len(bad) > named else ""
        text += f"; not matching ({counts}): " + "; ".join(parts) + more
    if claims is not None and len(claims):
        text += f"; {claims_verdict(claims)}"
    uncompared = runs[runs["status"].isin(NOTHING_TO_COMPARE)]
    if not uncompared.empty:
        text += f"; {len(uncompared)} runs with nothing to compare with ({uncompared['status'].iloc[0]})"
    return text


def _markdown(c: Comparison, results_dir: Path, reference_dir: Path) -> str:
    from t5vae.report.claims import claims_comparison_markdown

    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"

    lines = [f"# Reproduced vs reference: {Path(results_dir).name}", "",
             f"Reproduced: `{results_dir}`; reference: `{reference_dir}`.", "",
             "Same environment (packages, CPU model, threads, device): the same seed must give the same "
             f"value (|difference| <= {SAME_ENV_ATOL:g} + {SAME_ENV_RTOL:g} |reference|); a difference "
             "fails the grid. Other environment: each value should lie in the prediction interval of "
             "the reference seeds (mean ± t · sd · sqrt(1 + 1/n), sd at least the metric's pooled "
             "relative spread, half-width at least its resolution, one-sided at a bound, Bonferroni "
             f"over a run's metrics: a reproducing run gets a warning with probability <= {FLAG_RATE:.0%}); "
             "outliers are warnings with their distance in reference sds. In every environment each "
             "claim the reference shows beyond seed noise must keep its direction. See "
             "`t5vae/report/compare.py` and `t5vae/report/claims.py`.", "",
             "## Runs", "", markdown_table(c.runs.fillna("")), ""]  # fmt: skip
    off = c.metrics[c.metrics["status"] != MATCH]
    if not off.empty:
        cols = ("reference", "reproduced", "difference", "tolerance", "low", "high", "distance")
        shown = off.assign(**{k: off[k].map(fmt) for k in cols})
        lines += ["## Metrics outside tolerance or not compared", "", markdown_table(shown), ""]
    if len(c.claims):
        lines += ["## Claims", "", claims_comparison_markdown(c.claims), ""]
    lines += [f"**Verdict:** {c.verdict}", ""]
    return "\n".join(lines)


def write_comparison(results_dir: Path, reference_dir: Path, keys: list[str] | None = None,
                     got: pd.DataFrame | None = None) -> tuple[Comparison, dict[str, Path]]:  # fmt: skip
    """comparison.md, comparison.csv (every metric of every run) and comparison.png."""
    results_dir, reference_dir = Path(results_dir), Path(reference_dir)
    c = compare(results_dir, reference_dir, keys, got)
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
    save_figure(fig, path)


def finish_with_verdict(results_dir: Path, reference: Path, keys: list[str], failed: bool) -> int:
    """Write the comparison with the reference and print its verdict as the last line."""
    if not result_files(reference):
        print(
            f"\nverdict: nothing to compare with: no reference results in {reference}", flush=True
        )
        return 1 if failed else 0
    present = [f"{p.parts[-3]}/{p.parts[-2]}/{p.stem}" for p in result_files(results_dir)]
    comparison, paths = write_comparison(results_dir, reference, sorted(set(keys) | set(present)))
    print(f"comparison: {paths['md']} ({paths['csv'].name}, figures/{paths['figure'].name})")
    print(f"\nverdict: {comparison.verdict}", flush=True)
    return exit_status(comparison, failed)


def exit_status(comparison: Comparison, failed: bool) -> int:
    """0 reproduced (or nothing to compare with), 1 a run failed, 3 a same-environment run
    differs or a claim disagrees (README, "Exit status")."""
    return 1 if failed else 0 if comparison.ok else 3
