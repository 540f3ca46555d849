"""The field profile on one GPU (params/profiles/field_gpu.yaml: t5-small's shape, all of PTB),
trained and evaluated in one process, with the wall time of every stage.

    python benchmarks/field_gpu.py --data-dir DIR [--output-root OUT] [--budget-s 420] [--set K=V]

DIR holds ptb/{train,valid,test}.txt. Writes <OUT>/results/field_gpu[+<hash of --set>]/ (a results file per run,
tables.md with the published PTB rows beside ours, claims, figures) and <OUT>/field_gpu_timing.json
(device, versions, seconds per stage and run; rewritten after each run). The machine this is for
has no Jupyter and no network, so nothing here goes through papermill or the Hub: each run is
what notebooks 00-03 do (notebook.steps), one after the other. A run that would start after
--budget-s seconds is left out and listed (what finished is kept). benchmarks/field_gpu.sh is the
command for the GPU machine; tests/grid/test_paper_size.py runs this tiny on the CPU.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from t5vae.config.run import RunSpec
from t5vae.notebook import steps
from t5vae.report.build import write_report
from t5vae.utils.files import atomic_write_json

PROFILE, DATASET = "field_gpu", "ptb"


def grid(profile: str, output_root: str, data_dir: str, overrides: list[str]) -> list[RunSpec]:
    """The runs of the profile's first seed in the order ./reproduce.sh resolves them
    (grid.reproduce.expand_grid: parameters and data validated, phase 1 before phase 2)."""
    from t5vae.grid.reproduce import expand_grid, parse_args

    argv = ["--profile", profile, "--datasets", DATASET, "--output-root", output_root,
            "--data-dir", data_dir, *(x for o in overrides for x in ("--set", o))]  # fmt: skip
    prof, jobs = expand_grid(parse_args(argv))
    return [job.spec for job in jobs if job.spec.seed == prof.seeds[0]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, help="folder with ptb/{train,valid,test}.txt")
    ap.add_argument("--output-root", default="field_gpu_out")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="start no run after this many seconds (default 420)")  # fmt: skip
    ap.add_argument("--profile", default=PROFILE)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    specs = grid(args.profile, args.output_root, args.data_dir, args.overrides)
    cuda = torch.cuda.is_available()
    timing = {"device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
              "torch": torch.__version__, "python": platform.python_version(),
              "overrides": args.overrides, "budget_s": args.budget_s, "runs": [], "left_out": []}  # fmt: skip
    out = Path(args.output_root) / f"{args.profile}_timing.json"

    t = time.perf_counter()
    base = steps.prepare_base(specs[0], progress=False)
    timing["base_s"] = time.perf_counter() - t
    print(f"[base] {timing['base_s']:.0f} s", flush=True)
    for spec in specs:
        if time.perf_counter() - start > args.budget_s:
            timing["left_out"].append(spec.key)
            print(f"[{spec.key}] left out: past the {args.budget_s:.0f} s budget", flush=True)
            continue
        t = time.perf_counter()
        steps.ensure_trained(spec, progress=False, base=base)
        trained = time.perf_counter()
        metrics = steps.evaluate_run(spec, progress=False)["metrics"]
        row = {"run": spec.key, "train_s": trained - t, "eval_s": time.perf_counter() - trained}
        timing["runs"].append(row)
        timing["elapsed_s"] = time.perf_counter() - start
        atomic_write_json(out, timing)
        print(f"[{spec.key}] train {row['train_s']:.0f} s, eval {row['eval_s']:.0f} s: "
              f"nll {metrics['nll']:.2f}, rec {metrics['rec']:.2f}, kl {metrics['kl']:.2f}, "
              f"mi {metrics['mi']:.2f}, au {metrics['au']}", flush=True)  # fmt: skip
    if cuda:
        timing["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    results = specs[0].results_dir  # results/<profile>[+<hash of the overrides>]/
    if results.is_dir():
        write_report(results)
    timing["elapsed_s"] = time.perf_counter() - start
    atomic_write_json(out, timing)
    print(f"results: {results}/ (tables.md); timing: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
