"""How far the cost plan's unit costs are from a measured grid, run by run.

    python benchmarks/plan_check.py --reference reference/quick --jobs 2 --out benchmarks/plan_check.json

`./reproduce.sh --plan` multiplies measured unit costs (a training step of each phase, a validation
and a test sentence, a decoded sentence, a kernel's start) by the epoch limits, so under early
stopping it is an upper bound. This applies the same cost model to the steps and epochs each run of
a finished grid actually trained (its results file's history) and compares with the times the grid
recorded (timing.csv: training, evaluation, notebook overhead), with the unit costs measured two
ways: one process alone (the plan before it timed runs side by side) and `--jobs` processes at once
(the plan now). A ratio above 1 means the grid took longer than the model predicts.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from t5vae.config import params as P  # noqa: E402
from t5vae.config.run import make_spec  # noqa: E402
from t5vae.grid.cost import measure, measure_side_by_side, run_seconds  # noqa: E402
from t5vae.report.results import read_results  # noqa: E402


def predicted(costs, record: dict, profile: P.Profile) -> dict[str, float]:
    """The plan's cost model (plan.run_seconds) for one run, with the steps and epochs it trained."""
    last = record["history"][-1]
    sizes = {"valid": profile.data.valid_size, "test": profile.data.test_size}
    step_cost = getattr(costs, f"{record['stage']}_step")
    return run_seconds(costs, last["step"], last["epoch"], step_cost, sizes, profile.eval)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--reference", default="reference/quick", help="a finished grid's results folder"
    )
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--jobs", type=int, default=2, help="the runs at a time the grid ran with")
    ap.add_argument("--output-root", default=str(REPO), help="where runs/base holds the base model")
    ap.add_argument(
        "--repeats", type=int, default=3, help="measurements of the unit costs, each way"
    )
    ap.add_argument("--out", default="benchmarks/plan_check.json")
    args = ap.parse_args(argv)

    ref = Path(args.reference)
    timing = {row["run"]: row for row in csv.DictReader(open(ref / "timing.csv"))}
    records = {}
    for path in sorted(ref.rglob("*.json")):
        r = read_results(path)
        key = f"{r['dataset']}/seed{r['seed']}/{r['run_id']}"
        if r.get("status", "ok") == "ok" and key in timing:
            records[key] = r
    first = next(iter(records.values()))
    profile = P.load_profile(args.profile)
    spec = make_spec(args.profile, first["dataset"], "phase2", "l0.5_pnone", args.output_root)
    out = {"reference": str(ref), "jobs": args.jobs, "runs": len(records), "repeats": []}
    print(f"{len(records)} runs of {ref}; measured / predicted, summed over the runs:")
    for i in range(args.repeats):  # alternating, so that a slow spell of the machine hits both
        costs = {"alone": measure(spec), "side_by_side": measure_side_by_side(spec, args.jobs)}
        rep = {"costs": {k: asdict(v) for k, v in costs.items()}, "ratio_measured_to_model": {}}
        for how, c in costs.items():
            sums = {k: [0.0, 0.0] for k in ("train_s", "eval_s", "overhead_s")}
            for key, r in records.items():
                for k, v in predicted(c, r, profile).items():
                    sums[k][0] += float(timing[key][k])
                    sums[k][1] += v
            total = [sum(v[0] for v in sums.values()), sum(v[1] for v in sums.values())]
            ratios = {k: m / p for k, (m, p) in {**sums, "total": total}.items()}
            rep["ratio_measured_to_model"][how] = ratios
            print(f"  [{i + 1}/{args.repeats}] unit costs timed {how:>12}: "
                  + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()), flush=True)  # fmt: skip
        out["repeats"].append(rep)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
