"""The "Published" section of a grid's tables: its phase-2 rows beside the literature's.

For each dataset of the grid that params/published/ has a file for: one table with this package's
rows (mean ± sd over seeds, n) and the published rows (as printed, with source and table) in the
same units and columns, then each metric's definition on both sides and whether they agree. Where
a definition differs the section says so; nothing is converted (a K = 25 bound is not turned into
a K = 500 one, a test subset is not scaled to the whole set). The reproduced paper's own rows
(`park_lee2021:`) have a labelled slot that stays empty until someone enters them.
"""

from __future__ import annotations

import inspect
import math

import pandas as pd

from t5vae.config import params as P
from t5vae.config.published import (
    PUBLISHED_METRICS,
    TARGET_OPS,
    PublishedResults,
    PublishedRow,
)
from t5vae.evaluation.diagnosis import diagnose
from t5vae.evaluation.metrics import evaluate, metric
from t5vae.report.format import markdown_table, mean_std_cell, value_cell
from t5vae.report.results import read_results

COLUMNS = {
    "nll": "NLL",
    "ppl": "PPL (per word)",
    "neg_elbo": "-ELBO",
    "rec": "Rec",
    "kl": "KL",
    "mi": "MI",
    "au": "AU",
}  # fmt: skip  (published metric -> column title)
# how this package computes each quantity (evaluation.metrics; the values K, test size and latent
# size are read from the runs)
OURS = {
    "ppl_per": "word",
    "ppl_counts_eos": True,  # ppl_word: exp(sum nll / (words + one EOS per sentence))
    # the evaluate() default (read from it, so that the statement cannot drift from the code)
    "au_delta": inspect.signature(evaluate).parameters["au_delta"].default,
    "mi_aggregate": "test set",  # evaluation.metrics.mutual_information (mi_batch256: per batch)
    "units": "nats per sentence",
}


def published_section(df: pd.DataFrame, params_root=None) -> list[str]:
    """Markdown lines: one "Published" subsection per dataset of `df` with published rows."""
    lines = []
    ok = df[df["status"] == "ok"] if not df.empty else df
    for dataset in sorted(ok["dataset"].unique()) if not ok.empty else []:
        pub = P.load_published(dataset, params_root)
        runs = ok[(ok["dataset"] == dataset) & (ok["stage"] == "phase2")]
        if pub is None or runs.empty:
            continue
        lines += [f"## {dataset}: next to the published numbers", "",
                  f"This grid's phase-2 rows (mean ± sd over seeds; n seeds) and the published rows "
                  f"of params/published/{dataset}.yaml, values as printed (trailing zeros dropped; units: "
                  f"{pub.definitions.units}; PPL per word from the importance-weighted NLL). "
                  "Definitions that differ are listed below the table; no number is converted.",
                  "", markdown_table(comparison_frame(runs, pub)), ""]  # fmt: skip
        lines += targets_lines(runs, pub)
        lines += ["Definitions, this package vs the published rows:", "",
                  markdown_table(definitions_frame(runs, pub)), ""]  # fmt: skip
        lines += _notes(pub)
    return lines


def literature_section(df: pd.DataFrame, title: str, params_root=None,
                       interpolations: dict | None = None) -> list[str]:  # fmt: skip
    """literature.md: the targets of every dataset of `df` with published targets (the whole
    comparison is in tables.md), what reaching the missed ones would cost, and the best row's
    examples (with its interpolation: `interpolations`, INTERPOLATION_FILE's content); [] when
    there is none."""
    ok = df[df["status"] == "ok"] if not df.empty else df
    lines = []
    for dataset in sorted(ok["dataset"].unique()) if not ok.empty else []:
        pub = P.load_published(dataset, params_root)
        runs = ok[(ok["dataset"] == dataset) & (ok["stage"] == "phase2")]
        if pub is None or not pub.targets or runs.empty:
            continue
        lines += [f"### {dataset}: {title} next to the literature", "", *targets_lines(runs, pub)]
        lines += reach_lines(runs, pub)
        lines += examples_lines(runs, (interpolations or {}).get(dataset))
        lines += [f"Every row beside the published ones, and each definition on both sides: "
                  f"the same folder's tables.md, \"{dataset}: next to the published numbers\".", ""]  # fmt: skip
    return lines


# in a results folder: {dataset: the best row's interpolation} (grid.jobs.write_interpolations)
INTERPOLATION_FILE = "interpolation.json"
EXAMPLES, EXAMPLE_CHARS = 3, 160  # examples shown of the best row, and characters of each


def best_row(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(the seeds of the phase-2 run with the lowest mean NLL among those diagnosed informative in
    every seed, else among all; why it was chosen): the best language model that uses z."""
    labels = runs.apply(_diagnosis, axis=1).groupby(runs["name"]).agg(set)
    means = runs.groupby("name")["nll"].mean()
    informative = [n for n in means.index if labels[n] == {"informative"}]
    if informative:
        name, why = (
            means[informative].idxmin(),
            "the lowest NLL among rows diagnosed informative in every seed",
        )
    else:
        name = means.idxmin()
        why = (f"no row is diagnosed informative in every seed: the lowest NLL of all, diagnosed "
               f"{', '.join(sorted(labels[name]))}")  # fmt: skip
    return runs[runs["name"] == name].sort_values("seed"), why


def _diagnosis(row: pd.Series) -> str:
    """The run's stored diagnosis, or (results written before diagnoses were stored) the same
    rules applied to its metrics and prior samples (evaluation/diagnosis.py)."""
    if isinstance(row.get("diagnosis"), str):
        return row["diagnosis"]
    samples = (read_results(row["path"]).get("examples") or {}).get("prior_samples")
    return diagnose(row[["au", "mi", "kl"]].to_dict(), int(row["latent_dim"]), samples).label


def examples_lines(runs: pd.DataFrame, interpolation: dict | None = None) -> list[str]:
    """Reconstructions and prior samples of best_row's first seed, from its results file; its
    interpolation when `interpolation` was made from that run and seed."""
    if runs.empty or "path" not in runs:
        return []
    rows, why = best_row(runs)
    best = rows.iloc[0]
    examples = read_results(best["path"]).get("examples") or {}
    pairs = examples.get("reconstructions", [])[:EXAMPLES]
    samples = examples.get("prior_samples", [])[:EXAMPLES]
    if not pairs and not samples:
        return []
    lines = [f"Examples of the best row, {best['label']} ({why}; seed {best['seed']}, greedy "
             f"decoding, from its results file; cut at {EXAMPLE_CHARS} characters):", ""]  # fmt: skip
    lines += [f"- reconstruction: {_cut(e['input'])} → {_cut(e['reconstruction'])}" for e in pairs]
    lines += [f"- prior sample: {_cut(text)}" for text in samples]
    if interpolation and (interpolation["run_id"], interpolation["seed"]) == (
        best["run_id"], int(best["seed"])):  # fmt: skip
        lines += ["", f"Its interpolation between the posterior means of the first two test "
                  f"sentences, (1 - t) μ_A + t μ_B decoded greedily ({INTERPOLATION_FILE}):", ""]  # fmt: skip
        lines += [f"- t = {t:.2f}: {_cut(text)}"
                  for t, text in zip(interpolation["t"], interpolation["path"], strict=True)]  # fmt: skip
    return [*lines, ""]


def _cut(text: str) -> str:
    """A code span (so that `<unk>` shows as written), cut at EXAMPLE_CHARS characters."""
    text = " ".join(str(text).split()).replace("`", "'")
    return f"`{text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + '…'}`"


SYMBOLS = {"<=": "≤", "<": "<", ">=": "≥", ">": ">"}


def targets_frame(runs: pd.DataFrame, pub: PublishedResults) -> pd.DataFrame:
    """target | run | condition | ours | published | met | distance: one row per bound of
    pub.targets, judged on the mean over seeds of the target's run (nothing converted)."""
    rows = []
    for target in pub.targets:
        g = runs[runs["name"] == target.technique]
        for bound in target.require:
            ours_col, theirs = (
                PUBLISHED_METRICS[bound.metric],
                pub.row(bound.row).metrics[bound.metric],
            )
            values = pd.to_numeric(g[ours_col], errors="coerce").dropna() if ours_col in g else []
            row = {"target": target.name, "run": g["label"].iloc[0] if len(g) else target.technique,
                   "condition": f"{COLUMNS[bound.metric]} {SYMBOLS[bound.op]} {bound.row}",
                   "ours": mean_std_cell(pd.Series(values, dtype=float), ours_col, len(g)),
                   "published": f"{theirs:g}"}  # fmt: skip
            if len(values) == 0:
                row.update(met="not in this grid", distance="-")
            else:
                row.update(met=_met(TARGET_OPS[bound.op](values.mean(), theirs)),
                           distance=_distance(values.mean(), theirs))  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows, columns=["target", "run", "condition", "ours", "published", "met",
                                       "distance"])  # fmt: skip


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _distance(ours: float, theirs: float) -> str:
    """ours - published, and their ratio where the published value is positive."""
    text = f"{ours - theirs:+.2f}"
    return text + (f" ({ours / theirs:.2f}×)" if theirs > 0 else "")


def targets_lines(runs: pd.DataFrame, pub: PublishedResults) -> list[str]:
    """The targets table with a count of the targets met, or [] when the file sets none."""
    if not pub.targets:
        return []
    table = targets_frame(runs, pub)
    verdicts = table.groupby("target", sort=False)["met"].agg(
        set
    )  # a target: its conditions' verdicts
    met = sum(v == {"yes"} for v in verdicts)
    judged = sum("not in this grid" not in v for v in verdicts)
    ks = _values(runs, "iw_samples")
    bound = (f" Our K = {_join(ks)} against their K = {pub.definitions.iw_samples}: a smaller K gives "
             "a looser bound, so at their K our NLL and PPL would be no higher (in expectation) and "
             "a PPL target met here stays met."
             if ks and max(ks) < pub.definitions.iw_samples else "")  # fmt: skip
    defs = definitions_frame(runs, pub)
    differ = defs[defs["same"] != "yes"]
    differ = [f"{q} ({ours} here, {theirs} there)" for q, ours, theirs in
              zip(differ["quantity"], differ["this package"], differ["published"], strict=True)]  # fmt: skip
    shown = table.copy()
    shown.loc[shown["target"].duplicated(), "target"] = "(same)"  # the same target's next condition
    return [f"Targets (params/published/{pub.name}.yaml `targets:`), judged on the mean over seeds: a "
            "target is met when every condition is; distance = ours - published (and ours / "
            f"published). {met} of {judged} targets met"
            + (f" ({len(verdicts) - judged} not judged: their runs are not in this grid)"
               if judged < len(verdicts) else "")
            + "." + bound
            + (" Definitions that differ: " + "; ".join(differ) + "." if differ else ""),
            "", markdown_table(shown), ""]  # fmt: skip


# quantities whose logarithm moves by a number of nats per epoch (ln PPL = nats per word)
IN_NATS_AS_LOG = {"ppl_word"}


def reach_frame(runs: pd.DataFrame, pub: PublishedResults) -> pd.DataFrame:
    """target | run | condition | validation by epoch | change per epoch | more epochs | steps |
    hours: for each condition missed, what more epochs of the same run would cost if every further
    epoch moved the metric as its last one did (in nats: ln PPL for a perplexity); a lower bound
    where the changes shrink from epoch to epoch, and then the value they level off at if each keeps
    shrinking by the ratio of the last two. From each seed's training history (its results
    file): the validation metric by epoch, the steps and training wall seconds of its last epoch;
    the seeds' mean."""
    rows = []
    for target in pub.targets:
        g = runs[runs["name"] == target.technique]
        for bound in target.require:
            col = PUBLISHED_METRICS[bound.metric]
            values = pd.to_numeric(g[col], errors="coerce").dropna() if col in g else []
            theirs = pub.row(bound.row).metrics[bound.metric]
            if len(values) == 0 or TARGET_OPS[bound.op](values.mean(), theirs):
                continue
            curves = [_curve(path, col) for path in g["path"]] if "path" in g else []
            curves = [c for c in curves if len(c["values"]) >= 2]
            if not curves:
                continue
            rows.append({"target": target.name, "run": g["label"].iloc[0],
                         "condition": f"{COLUMNS[bound.metric]} {SYMBOLS[bound.op]} {bound.row}",
                         **_reach(curves, col, values.mean(), theirs)})  # fmt: skip
    return pd.DataFrame(rows, columns=["target", "run", "condition", "validation by epoch",
                                       "change per epoch", "more epochs", "steps", "hours",
                                       "levels off at"])  # fmt: skip


def _curve(path: str, col: str) -> dict:
    """The validation values of `col` by epoch, the steps and training seconds of the last epoch."""
    history = [h for h in read_results(path).get("history") or [] if f"valid_{col}" in h]
    values = [float(h[f"valid_{col}"]) for h in history]
    last = history[-2:]
    return {"values": values,
            "steps": last[-1]["step"] - last[0]["step"] if len(last) == 2 else 0,
            "seconds": float(last[-1].get("wall_time_s", float("nan"))) if last else float("nan")}  # fmt: skip


def _reach(curves: list[dict], col: str, ours: float, theirs: float) -> dict:
    """The cells of reach_frame: epochs = ceil(gap / last change), gap and change in nats."""
    nats = (lambda v: math.log(v)) if col in IN_NATS_AS_LOG else (lambda v: v)
    by_epoch = [sum(c["values"][i] for c in curves) / len(curves)
                for i in range(min(len(c["values"]) for c in curves))]  # fmt: skip
    changes = [nats(b) - nats(a) for a, b in zip(by_epoch, by_epoch[1:], strict=False)]
    steps = sum(c["steps"] for c in curves) / len(curves)
    seconds = sum(c["seconds"] for c in curves) / len(curves)
    cells = {"validation by epoch": " → ".join(value_cell(v, col) for v in by_epoch),
             "change per epoch": ", ".join(f"{d:+.3f}" for d in changes)
             + (" nats/word" if col in IN_NATS_AS_LOG else "")}  # fmt: skip
    change, gap = changes[-1], nats(theirs) - nats(ours)
    levels = levels_off(nats(ours), changes)
    unnats = math.exp if col in IN_NATS_AS_LOG else (lambda v: v)
    cells["levels off at"] = "-" if levels is None else value_cell(unnats(levels), col)
    if change == 0 or (change > 0) != (gap > 0):
        return cells | {"more epochs": "not reached: the last epoch moved away", "steps": "-",
                        "hours": "-"}  # fmt: skip
    epochs = math.ceil(gap / change)
    return cells | {"more epochs": f"{epochs:,}", "steps": f"{epochs * steps:,.0f}",
                    "hours": f"{epochs * seconds / 3600:.1f}"}  # fmt: skip


def shrink_ratio(changes: list[float]) -> float | None:
    """r = last change / the one before, when the changes shrink without changing sign (0 < r < 1)."""
    if len(changes) < 2 or not changes[-2]:
        return None
    r = changes[-1] / changes[-2]
    return r if 0 < r < 1 else None


def path_ahead(value: float, changes: list[float], epochs: int) -> list[float]:
    """The value after each of `epochs` more epochs if every change is the last one times r^j
    (shrink_ratio); [] where the changes do not shrink."""
    r = shrink_ratio(changes)
    if r is None:
        return []
    return [value + changes[-1] * sum(r**j for j in range(1, k + 1)) for k in range(1, epochs + 1)]


def levels_off(value: float, changes: list[float]) -> float | None:
    """Where path_ahead leads: value + c r / (1 - r), the geometric series of the changes still to
    come (c the last change); None where the changes do not shrink."""
    r = shrink_ratio(changes)
    return None if r is None else value + changes[-1] * r / (1 - r)


def reach_lines(runs: pd.DataFrame, pub: PublishedResults) -> list[str]:
    """reach_frame with what it assumes, or [] when no missed condition has a training history."""
    table = reach_frame(runs, pub)
    if table.empty:
        return []
    table.loc[table["target"].duplicated(), "target"] = "(same)"
    return ["What reaching each missed condition would cost in more epochs of the same run: the "
            "gap between our test value and the published one divided by how far the validation "
            "value moved in the run's last epoch (in nats: ln PPL for a perplexity), times that "
            "epoch's steps and training wall hours (on this machine, validation not counted; the "
            "seeds' mean). It holds the last change constant: where the changes shrink from epoch "
            "to epoch it is a lower bound. Where they shrink, \"levels off at\" is the test value "
            "they lead to if each keeps shrinking by the ratio of the last two (a geometric series); "
            "on the wrong side of the target, more epochs reach it only if the gains shrink more "
            "slowly than that (benchmarks/more_epochs.py sets the rule's predictions beside epochs "
            "trained past a reference). A larger model or a longer pretraining is not in either.",
            "", markdown_table(table), ""]  # fmt: skip


def _published_cells(row: PublishedRow, n: str) -> dict:
    cells = {"row": row.label, "source": f"{row.source}, Table {row.table}", "n": n}
    for key, title in COLUMNS.items():
        value = row.metrics.get(key)
        cells[title] = "-" if value is None else f"{value:g}"
    return cells


def comparison_frame(runs: pd.DataFrame, pub: PublishedResults) -> pd.DataFrame:
    """Our phase-2 runs, then the published rows, then the reproduced paper's (if entered)."""
    rows = []
    for _, g in runs.groupby("name", sort=True):
        cells = {"row": f"this package: {g['label'].iloc[0]}", "source": "this grid",
                 "n": str(len(g))}  # fmt: skip
        for key, title in COLUMNS.items():
            ours = PUBLISHED_METRICS[key]
            cells[title] = mean_std_cell(g[ours] if ours in g else pd.Series([]), ours, len(g))
        rows.append(cells)
    rows += [_published_cells(r, "-") for r in pub.rows]
    rows += [_published_cells(r, "-") for r in pub.park_lee2021]
    return pd.DataFrame(rows, columns=["row", "source", "n", *COLUMNS.values()])


def _values(runs: pd.DataFrame, column: str) -> list:
    return sorted({int(v) for v in runs[column].dropna()}) if column in runs else []


def _join(values: list) -> str:
    return ", ".join(f"{v:,}" for v in values) or "not recorded"


def _ppl(per: str, counts_eos: bool) -> str:
    return f"per {per}" + (", one EOS per sentence counted" if counts_eos else "")


def definitions_frame(runs: pd.DataFrame, pub: PublishedResults) -> pd.DataFrame:
    """quantity | this package | published | same: each definition behind the table's numbers."""
    d = pub.definitions
    n_test, ks, dims = (
        _values(runs, "n_sentences"),
        _values(runs, "iw_samples"),
        _values(runs, "latent_dim"),
    )
    ppl_ours, ppl_pub = (
        _ppl(OURS["ppl_per"], OURS["ppl_counts_eos"]),
        _ppl(d.ppl_per, d.ppl_counts_eos),
    )
    rows = [
        ("test sentences", _join(n_test),
         f"{d.test_sentences:,}" if d.test_sentences else "not stated", n_test == [d.test_sentences],
         "our numbers are means over a subset of the test set" if d.test_sentences and n_test
         and max(n_test) < d.test_sentences else ""),
        ("K of the IW-NLL (NLL, PPL)", _join(ks), f"{d.iw_samples}", ks == [d.iw_samples],
         "a smaller K gives a looser bound: our NLL and PPL are upper bounds on what K = "
         f"{d.iw_samples} would give" if ks and max(ks) < d.iw_samples else ""),
        ("PPL", ppl_ours, ppl_pub, ppl_ours == ppl_pub, metric("ppl_word").description),
        ("AU threshold δ", f"{OURS['au_delta']:g}", f"{d.au_delta:g}", OURS["au_delta"] == d.au_delta, ""),
        ("MI: q(z) aggregated over", OURS["mi_aggregate"], d.mi_aggregate,
         OURS["mi_aggregate"] == d.mi_aggregate,
         f"{d.mi_note}; ours per batch of 256: the mi_batch256 column of tables.csv" if d.mi_note else ""),
        ("latent size", _join(dims), f"{d.latent_dim}", dims == [d.latent_dim], ""),
        ("units", OURS["units"], d.units, d.units.startswith(OURS["units"]), ""),
    ]  # fmt: skip
    return pd.DataFrame(
        [
            {
                "quantity": q,
                "this package": a,
                "published": b,
                "same": "yes" if same else "**differs**",
                "note": note,
            }
            for q, a, b, same, note in rows
        ],  # fmt: skip
    )


def _notes(pub: PublishedResults) -> list[str]:
    lines = ["Sources and the caveats printed with their rows:", ""]
    lines += [f"- {key}: {s.citation} ({s.read_from})" for key, s in sorted(pub.sources.items())]
    lines += [
        f"- {r.label} ({r.source}, Table {r.table}): {r.caveat}" for r in pub.rows if r.caveat
    ]
    if not pub.park_lee2021:
        lines.append(f"- Park & Lee 2021 (the paper this package reproduces): no published number of "
                     f"theirs is known here; their rows go under `park_lee2021:` in "
                     f"params/published/{pub.name}.yaml and then appear in the table above.")  # fmt: skip
    return [*lines, ""]
