"""Train one run of the grid from the command line, on one or several devices.

    python -m t5vae.grid.train_run --profile paper --dataset ptb --stage phase2 --name l3_p0.15
    accelerate launch --multi_gpu --num_processes 4 -m t5vae.grid.train_run --profile paper ...
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m t5vae.grid.train_run ...
(the last on a machine without GPUs: 2 CPU processes talking over gloo).

It does what notebooks 00-02 do for that run (base model, the phase-1 run a phase-2 technique
starts from, then the run itself) and writes the same checkpoints under runs/: the notebooks and
`./reproduce.sh` then find the run trained and go on with evaluation. Each process takes its
share of every global batch (params' batch_size), so N processes train as one does.
"""

from __future__ import annotations

import argparse

from t5vae.notebook import steps


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m t5vae.grid.train_run", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--profile", required=True, help="params/profiles/<name>.yaml")
    ap.add_argument("--dataset", required=True, help="params/datasets/<name>.yaml")
    ap.add_argument("--stage", required=True, choices=steps.STAGES)
    ap.add_argument("--name", required=True,
                    help="phase-1 variant (params/phase1) or phase-2 technique (params/phase2)")  # fmt: skip
    ap.add_argument(
        "--seed", type=int, default=None, help="finetuning seed (default: the profile's first)"
    )
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a profile value (as ./reproduce.sh --set)")  # fmt: skip
    ap.add_argument("--data-dir", help="root of the Optimus-layout data (default: $T5VAE_DATA_DIR)")
    ap.add_argument("--output-root", default=None,
                    help="where runs/ and results/ go (default: $T5VAE_OUTPUT_ROOT or the repo)")  # fmt: skip
    return ap.parse_args(argv)


def main(argv=None) -> int:
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    args = parse_args(argv)
    # parameter errors stop every process before anything is computed
    spec = steps.make_spec(args.profile, args.dataset, args.stage, args.name, args.output_root,
                        args.data_dir, args.seed, args.overrides)  # fmt: skip
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as Accelerator reads it
    with state.main_process_first():  # the main process builds the base; the others load it
        steps.prepare_base(spec, progress=state.is_main_process)
    result = steps.ensure_trained(spec, progress=state.is_local_main_process)
    if state.is_main_process:
        print(f"{spec.run_dir}: {len(result.history)} epochs, best {result.best_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
