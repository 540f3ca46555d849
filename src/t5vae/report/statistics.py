"""The statistics of the report: t quantiles, prediction intervals with their floors, Welch's and
one-sample t-tests, each metric's typical seed spread (used by compare.py and claims.py)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import pandas as pd

from t5vae.evaluation.metrics import metric as metric_entry


def sample_sd(v: list[float]) -> float:
    return float(pd.Series(v).std(ddof=1)) if len(v) > 1 else float("nan")


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p of Welch's t-test; exact 0 / 1 when both samples have no spread."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if sample_sd(a) == 0 and sample_sd(b) == 0:
        return 0.0 if a[0] != b[0] else 1.0
    with warnings.catch_warnings():  # (nearly identical values: scipy warns, the p is still right)
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def bound_p(a: list[float], bound: float) -> float | None:
    """Two-sided p of a one-sample t-test of mean(a) against `bound`; exact when a has no spread."""
    from scipy import stats

    if len(a) < 2:
        return None
    if sample_sd(a) == 0:
        return 0.0 if a[0] != bound else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_1samp(a, bound).pvalue)


def finite_or_none(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def t_quantile(p: float, dof: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(p, dof))


def prediction_half_width(values: list[float], level: float) -> float | None:
    """Half-width of the `level` prediction interval for one more draw (None if n < 2)."""
    n = len(values)
    if n < 2:
        return None
    sd = float(pd.Series(values).std(ddof=1))
    return t_quantile(0.5 + level / 2, n - 1) * sd * math.sqrt(1 + 1 / n)


def typical_relative_spread(ref: pd.DataFrame, metric: str) -> tuple[float, int]:
    """(cv, dof): the median over the reference's runs (dataset and run, at least two seeds,
    non-zero mean) of the seeds' sd relative to their mean, the metric's typical seed spread
    (robust to runs near zero whose relative spread means nothing), and the degrees of freedom
    of the seeds it is estimated from, sum (n_i - 1)."""
    if metric not in ref:
        return 0.0, 0
    ok = ref[ref["status"] == "ok"]
    cvs, dof = [], 0
    for _, g in ok.groupby(["dataset", "run_id"]):
        v = pd.to_numeric(g[metric], errors="coerce").dropna()
        v = v[v.map(math.isfinite)]
        if len(v) >= 2 and v.mean() != 0:
            cvs.append(float(v.std(ddof=1)) / abs(float(v.mean())))
            dof += len(v) - 1
    return (float(pd.Series(cvs).median()), dof) if cvs else (0.0, 0)


def resolution(metric: str, row) -> float:
    """The smallest difference of `metric` that means anything for this results row."""
    res = metric_entry(metric).resolution
    if isinstance(res, str):
        count = finite_or_none(row.get(res))
        return 1.0 / count if count else 0.0
    return float(res)


@dataclass(frozen=True)
class Interval:
    """Where another environment's value of one metric should lie (see the module docstring)."""

    mean: float
    sd: float  # the reference seeds' sd, floored by the pooled relative spread
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float], metric: str, level: float, typical: tuple[float, int],
           res: float) -> Interval | None:  # fmt: skip
        n = len(values)
        if n < 2:
            return None
        mean, own = float(pd.Series(values).mean()), float(pd.Series(values).std(ddof=1))
        cv, typical_dof = typical
        floor = cv * abs(mean)
        sd, dof = (own, n - 1) if own >= floor else (floor, max(n - 1, typical_dof))
        lo_bound, hi_bound = metric_entry(metric).bounds
        at_low = own == 0 and lo_bound is not None and mean == lo_bound
        at_high = own == 0 and hi_bound is not None and mean == hi_bound
        p = level if at_low or at_high else 0.5 + level / 2  # one-sided at a bound
        half = max(t_quantile(p, dof) * sd * math.sqrt(1 + 1 / n) if sd else 0.0, res)
        low, high = mean - half, mean + half
        if lo_bound is not None:
            low = max(low, lo_bound)
        if hi_bound is not None:
            high = min(high, hi_bound)
        return cls(mean, sd, low, high)

    def distance(self, v: float) -> float:
        """|v - mean| in reference sds (inf with no spread at all)."""
        return abs(v - self.mean) / self.sd if self.sd else (0.0 if v == self.mean else math.inf)
