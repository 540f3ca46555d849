"""The `t5vae` command: one entry point for the grid, one run, a checkpoint's metrics and text.

    t5vae reproduce [options]            the grid (what ./reproduce.sh runs after its setup)
    t5vae train --profile P --dataset D --stage S --name N [--seed K] [--set key=value]
    t5vae evaluate CHECKPOINT --sentences FILE [--iw-samples K]
    t5vae generate CHECKPOINT (--sentence S | --prior N | --interpolate A B)
    t5vae generate CHECKPOINT --sentence S --shift sentiment=positive [--alpha 2]
    t5vae explore CHECKPOINT [--port P]  a local page: reconstruct, interpolate, sample, shift
    t5vae study NAME                     a study table (params/studies/NAME.yaml)
    t5vae push PROFILE DATASET STAGE NAME REPO_ID [--seed K]   a trained run to the Hub

CHECKPOINT is a folder written by training (runs/.../best) or `hub.export_run`, or a Hub id.
"""

from __future__ import annotations

import argparse
import json
import sys


def _evaluate(args) -> int:
    from t5vae import hub
    from t5vae.data.corpora import read_lines
    from t5vae.evaluation.metrics import evaluate

    model, tokenizer = hub.load(args.checkpoint, args.tokenizer)
    sentences, _, _ = read_lines(args.sentences)
    metrics = evaluate(model, tokenizer, sentences, iw_samples=args.iw_samples, batch_size=args.batch_size,
                       seed=args.seed, max_length=args.max_length, progress=False)  # fmt: skip
    print(json.dumps(metrics, indent=2))
    return 0


def _generate(args) -> int:
    import torch

    from t5vae import hub
    from t5vae.evaluation import generation as gen

    model, tokenizer = hub.load(args.checkpoint, args.tokenizer)
    kw = {"max_new_tokens": args.max_new_tokens, "strategy": args.strategy, "top_p": args.top_p,
          "generator": torch.Generator().manual_seed(args.seed)}  # fmt: skip
    if args.shift:
        return _shift(args, model, tokenizer, kw)
    if args.sentence:
        lines = gen.reconstruct(model, tokenizer, args.sentence, **kw)
    elif args.prior:
        lines = gen.sample_prior(model, tokenizer, args.prior, seed=args.seed, **kw)
    else:
        lines = gen.interpolate(model, tokenizer, *args.interpolate, steps=args.steps, **kw)
    print("\n".join(lines))
    return 0


def _shift(args, model, tokenizer, kw) -> int:
    """--shift FACTOR=VALUE: each sentence decoded from mu + alpha * v (evaluation.control); the
    scores against the built-in grammar on stderr when the sentences are of it."""
    from t5vae.data.builtin import parse
    from t5vae.evaluation import control

    factor, _, value = args.shift.partition("=")
    vector = control.builtin_attribute_vector(model, tokenizer, factor, value,
                                              n=args.attribute_sentences, seed=args.seed)  # fmt: skip
    lines = control.shift(model, tokenizer, args.sentence, vector, args.alpha, **kw)
    print("\n".join(lines))
    if all(parse(s) is not None for s in args.sentence):
        scores = control.transfer_scores(args.sentence, lines, factor, value)
        print(json.dumps({"alpha": args.alpha, **scores}), file=sys.stderr)
    return 0


def _explore(args) -> int:
    from t5vae.explorer import main as serve

    return serve(args)


def _push(args) -> int:
    from t5vae import hub
    from t5vae.config.run import make_spec

    spec = make_spec(args.profile, args.dataset, args.stage, args.name, seed=args.seed)
    print(hub.push_run(spec, args.repo_id, private=args.private))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="t5vae", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in (("reproduce", "run the grid (./reproduce.sh --help for its options)"),
                        ("train", "train one run (python -m t5vae.grid.train_run --help)"),
                        ("study", "a study table (python -m t5vae.grid.study --help)")):  # fmt: skip
        sub.add_parser(name, help=help_, add_help=False)  # its own parser reads the rest
    for name in ("evaluate", "generate"):
        p = sub.add_parser(name, help=f"{name} with a checkpoint folder or Hub id")
        p.add_argument("checkpoint")
        p.add_argument("--tokenizer", help="default: the one saved with the checkpoint")
        p.add_argument("--seed", type=int, default=0)
    ev = sub.choices["evaluate"]
    ev.add_argument("--sentences", required=True, help="a text file, one sentence per line")
    ev.add_argument(
        "--iw-samples", type=int, default=500, help="K importance samples (default 500)"
    )
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument(
        "--max-length", type=int, default=None, help="tokens per sentence (default: all)"
    )
    gen = sub.choices["generate"]
    what = gen.add_mutually_exclusive_group(required=True)
    what.add_argument("--sentence", nargs="+", help="reconstruct these sentences (from mu)")
    what.add_argument("--prior", type=int, metavar="N", help="decode N samples z ~ N(0, I)")
    what.add_argument(
        "--interpolate", nargs=2, metavar=("A", "B"), help="decode between mu_A and mu_B"
    )
    gen.add_argument("--shift", metavar="FACTOR=VALUE",
                     help="with --sentence: decode mu + alpha * v, v the difference of class means "
                     "of mu over sentences of the built-in grammar (topic, sentiment, tense, length)")  # fmt: skip
    gen.add_argument("--alpha", type=float, default=1.0, help="--shift's strength (default 1)")
    gen.add_argument("--attribute-sentences", type=int, default=1000,
                     help="--shift: grammar sentences the class means come from (default 1000)")  # fmt: skip
    gen.add_argument("--steps", type=int, default=5, help="interpolation points (default 5)")
    gen.add_argument("--strategy", choices=("greedy", "sample"), default="greedy")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--max-new-tokens", type=int, default=64)
    explore = sub.add_parser("explore", help="a local web page to use a checkpoint's latent space")
    explore.add_argument("checkpoint")
    explore.add_argument("--tokenizer", help="default: the one saved with the checkpoint")
    explore.add_argument("--host", default="127.0.0.1")
    explore.add_argument("--port", type=int, default=8765, help="default 8765 (0: a free port)")
    explore.add_argument("--attributes", choices=("builtin", "none"), default="builtin",
                         help="attribute vectors for the shift panel from the built-in grammar's "
                         "sentences (builtin, the default), or no shift panel (none: a model of "
                         "other text)")  # fmt: skip
    push = sub.add_parser(
        "push", help="upload a trained run (model, tokenizer, model card) to the Hub"
    )
    for arg in ("profile", "dataset", "stage", "name", "repo_id"):
        push.add_argument(arg)
    push.add_argument("--seed", type=int, default=None)
    push.add_argument("--private", action="store_true")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args, rest = ap.parse_known_args(argv)
    if getattr(args, "shift", None):  # checked before the checkpoint is loaded
        from t5vae.evaluation.control import check_attribute

        if not args.sentence:
            ap.error("--shift needs --sentence")
        try:
            check_attribute(*args.shift.partition("=")[::2])
        except ValueError as e:
            ap.error(f"--shift: {e}")
    if rest and args.command not in ("reproduce", "train", "study"):
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "reproduce":
        from t5vae.grid.reproduce import main as run
    elif args.command == "train":
        from t5vae.grid.train_run import main as run
    elif args.command == "study":
        from t5vae.grid.study import main as run
    else:
        return {"evaluate": _evaluate, "generate": _generate, "push": _push,
                "explore": _explore}[args.command](args)  # fmt: skip
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
