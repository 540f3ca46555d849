"""Does "levels off at" (report/published.py) predict what more epochs do? A backtest.

    python benchmarks/more_epochs.py RUN_DIR --known 3 --metric ppl_word \
        --out reference/measurements/field_more_epochs.json

RUN_DIR is a run trained past the epochs its reference has (its history.json; how the field's
two-phase run was continued from its checkpoint: reference/measurements/field_run.md). From the
first `--known` epochs' validation values this predicts each later epoch's the way literature.md
does (the changes, in nats for a perplexity, shrinking by the ratio of the last two:
published.path_ahead, published.levels_off) and, for comparison, with the last change held
constant; then sets the measured values beside them. Writes JSON, a markdown table and a figure
(same stem).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from t5vae.report.format import save_figure
from t5vae.report.published import IN_NATS_AS_LOG, levels_off, path_ahead
from t5vae.utils.files import atomic_write_json, atomic_write_text


def backtest(values: list[float], known: int, log_scale: bool) -> dict:
    """Predicted (shrinking changes; constant change) and measured values after epoch `known`."""
    if not 3 <= known < len(values):
        raise ValueError(f"need 3 <= known < {len(values)} epochs, got known = {known}")
    to, back = (math.log, math.exp) if log_scale else (float, float)
    seen = [to(v) for v in values[:known]]
    changes = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    ahead = len(values) - known
    shrinking = path_ahead(seen[-1], changes, ahead)
    limit = levels_off(seen[-1], changes)
    return {"known": values[:known], "changes": changes,
            "epochs": list(range(known + 1, len(values) + 1)), "measured": values[known:],
            "shrinking": [back(v) for v in shrinking],
            "constant": [back(seen[-1] + changes[-1] * k) for k in range(1, ahead + 1)],
            "levels_off": None if limit is None else back(limit)}  # fmt: skip


def markdown(found: dict, metric: str, source: str) -> str:
    rows = [f"| {e} | {m:.2f} | {s:.2f} | {c:.2f} |" for e, m, s, c in
            zip(found["epochs"], found["measured"], found["shrinking"] or [math.nan] * len(found["epochs"]),
                found["constant"], strict=True)]  # fmt: skip
    limit = found["levels_off"]
    return "\n".join([
        f"# More epochs against the prediction: validation {metric}", "",
        f"From {source}: the first {len(found['known'])} epochs' validation values "
        f"({', '.join(f'{v:.2f}' for v in found['known'])}) predict the later ones, with the changes "
        "shrinking by the ratio of the last two (as literature.md's \"levels off at\"; limit "
        f"{'-' if limit is None else f'{limit:.2f}'}) and with the last change held constant (as "
        "its \"more epochs\"); measured beside them.", "",
        "| epoch | measured | predicted, shrinking changes | predicted, constant change |",
        "|---|---|---|---|", *rows, ""])  # fmt: skip


def figure(found: dict, metric: str, path: Path) -> Path:
    """The measured curve over every epoch, and both predictions from the known epochs on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = len(found["known"])
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(range(1, known + 1), found["known"], "o-", color="black", label="measured (reference)")
    start = ([known], [found["known"][-1]])
    ax.plot(start[0] + found["epochs"], start[1] + found["measured"], "o-", color="tab:blue",
            label="measured (continued)")  # fmt: skip
    for key, style, color, label in (
        ("shrinking", "s--", "tab:green", "predicted: changes shrink by their last ratio"),
        ("constant", "^:", "tab:orange", "predicted: last change held"),
    ):
        if found[key]:
            ax.plot(
                start[0] + found["epochs"], start[1] + found[key], style, color=color, label=label
            )
    if found["levels_off"] is not None:
        ax.axhline(found["levels_off"], color="gray", lw=0.8, label="levels off at (predicted)")
    ax.set(xlabel="epoch", ylabel=f"validation {metric}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--known", type=int, default=3, help="epochs the prediction may see")
    ap.add_argument("--metric", default="ppl_word", help="a validation metric of the history")
    ap.add_argument("--out", type=Path, required=True, help="the JSON to write (and .md beside it)")
    args = ap.parse_args(argv)
    history = json.loads((args.run_dir / "history.json").read_text())
    values = [h[f"valid_{args.metric}"] for h in history]
    try:
        found = backtest(values, args.known, args.metric in IN_NATS_AS_LOG)
    except ValueError as e:
        print(f"error: {args.run_dir / 'history.json'}: {e}", file=sys.stderr)
        return 2
    atomic_write_json(args.out, {"run_dir": str(args.run_dir), "metric": args.metric, **found})
    atomic_write_text(args.out.with_suffix(".md"), markdown(found, args.metric, args.run_dir.name))
    figure(found, args.metric, args.out.with_suffix(".png"))
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
