"""The paper's qualitative claims, computed from the results files (never written by hand).

Each claim of params/claims.yaml is a comparison of two runs on one metric, or a bound on one
run's metric, evaluated per dataset over the seeds that finished:

  versus  Welch's two-sided t-test on the per-seed values of the two runs (unequal variances);
  below   a two-sided one-sample t-test of the run's mean against the bound (expected: lower).

A difference "exceeds seed noise" when p < ALPHA. With one seed on either side no test is
possible and the row says so. When every seed gives the same value (sd 0, e.g. AU), the
difference is exact: p is 0 if the means differ, 1 if not.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from t5vae.config import params as P
from t5vae.report.format import markdown_table
from t5vae.report.results import collect
from t5vae.report.statistics import bound_p, resolution, sample_sd, t_quantile, welch_p
from t5vae.utils.files import atomic_write_text

ALPHA = 0.05


def _values(ok: pd.DataFrame, dataset: str, run: str, metric: str) -> list[float]:
    stage, name = run.split("/", 1)
    sub = ok[(ok["dataset"] == dataset) & (ok["stage"] == stage) & (ok["name"] == name)]
    if metric not in sub:
        return []
    return [float(v) for v in pd.to_numeric(sub[metric], errors="coerce").dropna()]


def _label(df: pd.DataFrame, run: str) -> str:
    """The run's row name in the tables (phase 2: the technique's label, as its results record
    it; from params/phase2/ when the grid did not run it)."""
    stage, name = run.split("/", 1)
    if stage == "phase1":
        return f"phase 1 {name}"
    rows = df[(df["stage"] == stage) & (df["name"] == name)] if not df.empty else df
    if len(rows) and rows["label"].iloc[0]:
        return str(rows["label"].iloc[0])
    return P.load_phase2(name).label or name


def _summary(v: list[float]) -> str:
    if not v:
        return "not run"
    mean = sum(v) / len(v)
    return f"{mean:.3g} ± {sample_sd(v):.2g} (n={len(v)})" if len(v) > 1 else f"{mean:.3g} (n=1)"


def evaluate_claims(df: pd.DataFrame, claims: list[P.Claim]) -> pd.DataFrame:
    """One row per dataset and claim: both sides (mean ± sd, n), difference, p, verdict; a claim
    on a metric that no run of the dataset computes is left out for it."""
    rows = []
    ok = df[df["status"] == "ok"] if not df.empty else df
    for dataset in sorted(ok["dataset"].unique()) if not ok.empty else []:
        here = ok[ok["dataset"] == dataset]
        for c in claims:
            if c.metric not in here or here[c.metric].isna().all():
                continue  # a metric no run of this dataset computes (e.g. transfer without factors)
            a = _values(ok, dataset, c.run, c.metric)
            b = _values(ok, dataset, c.versus, c.metric) if c.versus else []
            row = {"dataset": dataset, "claim": c.claim, "metric": c.metric,
                   "run": _label(ok, c.run), "run_value": _summary(a),
                   "versus": _label(ok, c.versus) if c.versus else f"bound {c.below:g}",
                   "versus_value": _summary(b) if c.versus else "", "difference": None,
                   "p": None, "verdict": ""}  # fmt: skip
            if not a or (c.versus and not b):
                row["verdict"] = "not run in this grid"
                rows.append(row)
                continue
            mean_a = sum(a) / len(a)
            if c.versus:
                diff = mean_a - sum(b) / len(b)
                p = welch_p(a, b)
                direction = "higher" if diff > 0 else "lower" if diff < 0 else "equal"
            else:
                diff = mean_a - c.below
                p = bound_p(a, c.below)
                direction = "lower" if diff < 0 else "higher" if diff > 0 else "equal"
            row["difference"], row["p"] = diff, p
            expect = c.expect or ("lower" if c.below is not None else None)
            if p is None:
                row["verdict"] = f"one seed, no test ({direction})"
            elif p >= ALPHA or direction == "equal":
                row["verdict"] = "within seed noise"
            elif expect is None:
                row["verdict"] = f"{direction}, beyond seed noise"
            else:
                row["verdict"] = "supported" if direction == expect else "contradicted"
            rows.append(row)
    cols = ["dataset", "claim", "metric", "run", "run_value", "versus", "versus_value",
            "difference", "p", "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def claims_markdown(table: pd.DataFrame, title: str) -> str:
    def fmt(v, spec):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    shown = table.assign(difference=table["difference"].map(lambda v: fmt(v, "+.3g")),
                         p=table["p"].map(lambda v: fmt(v, ".2g")))  # fmt: skip
    shown.columns = ["dataset", "claim", "metric", "run", "mean ± sd (n)", "versus",
                     "mean ± sd (n) ", "difference", "p", "verdict"]  # fmt: skip
    return "\n".join([
        f"# Claims: {title}", "",
        f"Computed by `t5vae/report/claims.py` from the results files (params/claims.yaml). p: Welch's "
        f"two-sided t-test on the per-seed values (against a bound: one-sample t-test); a difference "
        f"exceeds seed noise when p < {ALPHA}. 'supported' / 'contradicted': beyond seed noise in / "
        "against the paper's direction.", "",
        markdown_table(shown), "",
    ])  # fmt: skip


def write_claims(results_dir: Path, df: pd.DataFrame | None = None,
                 claims: list[P.Claim] | None = None) -> dict[str, Path]:  # fmt: skip
    """claims.md and claims.csv in results_dir, from its results files (`df`: collected once)."""
    results_dir = Path(results_dir)
    df = collect(results_dir) if df is None else df
    table = evaluate_claims(df, P.load_claims() if claims is None else claims)
    paths = {"md": results_dir / "claims.md", "csv": results_dir / "claims.csv"}
    atomic_write_text(paths["md"], claims_markdown(table, results_dir.name))
    atomic_write_text(paths["csv"], table.to_csv(index=False))
    return paths


# --- Does a reproduction keep the reference's claims? (compare.py's claim level) -------------

REPRODUCED, DISAGREES = "reproduced", "DISAGREES"
FLIPPED = "flipped within the reference's seed noise (warning)"
NO_EFFECT = "not judged: within seed noise in the reference"
ONE_REFERENCE_SEED = "not judged: one reference seed"
NOT_IN_REPRODUCTION = "not judged: not run in the reproduction"
CLAIM_FLAG_RATE = 0.01  # probability that a reproduction keeping every claim is failed


def _direction(diff: float) -> int:
    return (diff > 0) - (diff < 0)


def _stats(values: list[float], typical: tuple[float, int]) -> tuple[float, float, int]:
    """(mean, sd, dof) of one side's seeds; sd at least the metric's typical relative spread
    times |mean| (compare.typical_relative_spread), with that spread's dof when it decides."""
    mean = sum(values) / len(values)
    own = sample_sd(values) if len(values) > 1 else 0.0
    cv, typical_dof = typical
    if own >= cv * abs(mean):
        return mean, own, max(1, len(values) - 1)
    return mean, cv * abs(mean), max(1, len(values) - 1, typical_dof)


def compare_claims(got: pd.DataFrame, ref: pd.DataFrame, claims: list[P.Claim],
                   pooled: dict[str, tuple[float, int]] | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per dataset of the reproduction and claim: whether the reproduced runs keep the
    direction the reference shows beyond seed noise.

    D is the claim's difference (mean of the run minus mean of the other run, or minus the
    bound). Were the reproduction a new draw of the reference's seeds, D_got - D_ref would have
    variance sum over the claim's runs of sd^2 (1/n_got + 1/n_ref) (sd: the reference seeds', at
    least the metric's typical relative spread times |mean|; dof: the smallest side's). A claim DISAGREES when D_got points the other way
    and |D_got - D_ref| exceeds t(1 - a/2, dof) times its sd (and the metric's resolution), with
    a = 1% / (claims judged), Bonferroni; a flip within that is a warning. A claim within seed
    noise in the reference has no direction to keep and is not judged.
    """
    pooled = pooled or {}
    cols = ["dataset", "claim", "metric", "reference", "reference_difference", "reproduced",
            "reproduced_difference", "half_width", "status"]  # fmt: skip
    if got.empty or ref.empty:
        return pd.DataFrame(columns=cols)
    ok_got, ok_ref = got[got["status"] == "ok"], ref[ref["status"] == "ok"]
    ref_table = evaluate_claims(ok_ref[ok_ref["dataset"].isin(set(ok_got["dataset"]))], claims)
    rows, pending = [], []
    for c, (_, r) in _by_claim(claims, ref_table):
        dataset = r["dataset"]
        row = {"dataset": dataset, "claim": c.claim, "metric": c.metric,
               "reference": r["verdict"], "reference_difference": r["difference"]}  # fmt: skip
        sides = [c.run, c.versus] if c.versus else [c.run]
        got_values = [_values(ok_got, dataset, s, c.metric) for s in sides]
        ref_values = [_values(ok_ref, dataset, s, c.metric) for s in sides]
        if not all(got_values):
            rows.append({**row, "status": NOT_IN_REPRODUCTION})
            continue
        means = [sum(v) / len(v) for v in got_values]
        row["reproduced_difference"] = means[0] - (means[1] if c.versus else c.below)
        n = ", ".join(str(len(v)) for v in got_values)
        row["reproduced"] = f"{row['reproduced_difference']:+.3g} (seeds {n})"
        if r["verdict"].startswith("one seed") or r["verdict"] == "not run in this grid":
            rows.append({**row, "status": ONE_REFERENCE_SEED})
        elif r["verdict"] == "within seed noise":
            rows.append({**row, "status": NO_EFFECT})
        else:
            typical = pooled.get(c.metric, (0.0, 0))
            var, dof = 0.0, math.inf
            for g, rv in zip(got_values, ref_values, strict=True):
                _, sd, d = _stats(rv, typical)
                var += sd**2 * (1 / len(g) + 1 / len(rv))
                dof = min(dof, d)
            res = resolution(c.metric, ok_ref[ok_ref["dataset"] == dataset].iloc[0])
            pending.append((len(rows), math.sqrt(var), dof, res))
            rows.append(row)
    level = 1 - CLAIM_FLAG_RATE / max(1, len(pending)) / 2
    for i, sd, dof, res in pending:
        row = rows[i]
        half = max(t_quantile(level, dof) * sd if sd else 0.0, res)
        row["half_width"] = half
        d_ref, d_got = row["reference_difference"], row["reproduced_difference"]
        if _direction(d_got) == _direction(d_ref):
            row["status"] = REPRODUCED
        else:
            row["status"] = FLIPPED if abs(d_got - d_ref) <= half else DISAGREES
    return pd.DataFrame(rows, columns=cols)


def _by_claim(claims: list[P.Claim], table: pd.DataFrame):
    """(claim, its row of evaluate_claims' table) for every dataset, in the table's order."""
    by_text = {}
    for c in claims:
        by_text.setdefault((c.claim, c.metric), c)
    for item in table.iterrows():
        yield by_text[(item[1]["claim"], item[1]["metric"])], item


def claims_verdict(table: pd.DataFrame) -> str:
    """`claims: 12 reproduced, 1 DISAGREES (<claim>, <metric> on <dataset>), 3 not judged`."""
    parts = []
    for status in (REPRODUCED, DISAGREES, FLIPPED):
        sub = table[table["status"] == status]
        if len(sub):
            text = f"{len(sub)} {status}"
            if status == DISAGREES:
                text += " (" + "; ".join(f"{r.claim}, {r.metric} on {r.dataset}"
                                         for r in sub.itertuples()) + ")"  # fmt: skip
            parts.append(text)
    judged = table["status"].str.startswith("not judged")
    if judged.any():
        parts.append(f"{int(judged.sum())} not judged")
    return "claims: " + (", ".join(parts) if parts else "none")


def claims_comparison_markdown(table: pd.DataFrame) -> str:
    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3g}"

    shown = table.assign(reference_difference=table["reference_difference"].map(fmt),
                         half_width=table["half_width"].map(lambda v: fmt(v).lstrip("+")))  # fmt: skip
    return markdown_table(shown.astype(object).fillna("-"))  # object: no dtype change to warn of
