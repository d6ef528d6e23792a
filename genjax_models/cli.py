"""The ``genjax`` command.

    genjax list
    genjax train MODEL [--data NAME] [--steps N] [--batch-size B] [--lr LR] [--seed S]
                       [--workdir DIR] [--config FILE] [--set KEY=VALUE ...]
    genjax eval --workdir DIR [--split test] [--k K] [--estimator NAME] [--batch-size B] [--seed S]
                [--option KEY=VALUE ...]
    genjax sample --workdir DIR [--num N] [--seed S] [--out FILE] [--sampler NAME] [--nfe N]
                  [--option KEY=VALUE ...]

A user's mistake (unknown name, bad shape or data, missing or mismatched checkpoint,
config conflict) prints one line ``genjax: error: ...`` on stderr and exits with status 2,
without a traceback. ``eval`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from genjax_models.errors import GenjaxError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: same format, exit 2
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(message))


def _fail(message: str) -> int:
    print(f"genjax: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genjax", description="Deep generative models in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list models and datasets")

    train = sub.add_parser("train", help="train a model (resumes if WORKDIR holds the same run)")
    train.add_argument("model", help="model name (see `genjax list`)")
    train.add_argument("--data", help="dataset name or .npz path (default: the model's usual dataset)")
    train.add_argument("--steps", type=int, help="total optimiser steps")
    train.add_argument("--batch-size", type=int, help="global batch size")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--workdir", help="run directory (default: runs/MODEL_DATA)")
    train.add_argument("--config", help="ml_collections config file (experiments/configs/*.py)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any field, e.g. model.latent_dim=16")
    train.add_argument("--eval", action="store_true", help="evaluate the test NLL at the end")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    ev = sub.add_parser("eval", help="estimate NLL of a trained run; prints one JSON object")
    ev.add_argument("--workdir", required=True)
    ev.add_argument("--split", default="test", choices=("test", "train"))
    ev.add_argument("--k", type=int, help="importance samples (latent-variable models)")
    ev.add_argument("--estimator", help="log-likelihood estimator where a model has several (diffusion: pf-ode, vlb)")
    ev.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="estimator option, e.g. trace=hutchinson")
    ev.add_argument("--batch-size", type=int, default=100)
    ev.add_argument("--seed", type=int, default=0)

    sample = sub.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("--workdir", required=True)
    sample.add_argument("--num", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", help="output .png (grid) or .npy (array); default WORKDIR/samples_seedS.png")
    sample.add_argument("--sampler", help="sampler name where a model has several (diffusion: ddim, heun, dpm-solver++, ...)")
    sample.add_argument("--nfe", type=int, help="sampler budget in network evaluations (diffusion)")
    sample.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="sampler option, e.g. mean=True")
    return parser


def _cmd_list(_: argparse.Namespace) -> int:
    from genjax_models.data import list_datasets
    from genjax_models.model import list_models

    print("models:")
    for name, text in list_models().items():
        print(f"  {name:<16} {text}")
    print("datasets:")
    for name, text in list_datasets().items():
        print(f"  {name:<16} {text}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from genjax_models.train.run import resolve_config, train_and_evaluate

    flags: dict[str, Any] = {}
    if args.data:
        flags["data"] = args.data
    train = {
        key: value
        for key, value in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr), ("seed", args.seed))
        if value is not None
    }
    if train:
        flags["train"] = train
    config = resolve_config(args.model, config_file=args.config, flags=flags, overrides=args.set)
    workdir = args.workdir or os.path.join("runs", f"{config['model']}_{config['data']}".replace(os.sep, "_"))
    result = train_and_evaluate(config, workdir, progress=not args.no_progress, eval_split="test" if args.eval else None)
    last = result.history[-1] if result.history else {}
    if result.resumed_from is not None:
        print(f"resumed from step {result.resumed_from}")
    summary = ", ".join(f"{k}={last[k]:.4g}" for k in ("loss", "elbo", "kl") if isinstance(last.get(k), float))
    print(f"trained {config['model']} on {config['data']} to step {last.get('step', result.resumed_from)}: {summary}")
    print(f"workdir:  {os.path.abspath(workdir)}")
    for name in ("config.json", "metrics.jsonl", "samples.png", "loss.png"):
        print(f"  {name:<14} {os.path.join(os.path.abspath(workdir), name)}")
    print(f"next: genjax eval --workdir {workdir}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import jax

    from genjax_models.eval import evaluate, write_eval
    from genjax_models.train.run import load_run

    if args.k is not None and args.k < 1:
        raise GenjaxError(f"--k must be >= 1, got {args.k}")
    options = _parse_options(args.option)
    if args.k is not None:
        options["num_samples"] = args.k
    if args.estimator is not None:
        options["estimator"] = args.estimator
    run = load_run(args.workdir)
    _check_options(run.model.log_prob, options, f"estimator option for {run.config['model']}", skip=3)
    report = evaluate(run.model, run.params, run.data, split=args.split, key=jax.random.key(args.seed), batch_size=args.batch_size, **options)
    record = write_eval(args.workdir, report, run.config)
    print(json.dumps(record))
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from genjax_models import viz
    from genjax_models.train.run import load_run

    if args.num < 1:
        raise GenjaxError(f"--num must be >= 1, got {args.num}")
    out = args.out or os.path.join(args.workdir, f"samples_seed{args.seed}.png")
    if not out.endswith((".png", ".npy")):
        raise GenjaxError(f"--out must end in .png or .npy, got {out}")
    if args.nfe is not None and args.nfe < 1:
        raise GenjaxError(f"--nfe must be >= 1, got {args.nfe}")
    options = _parse_options(args.option)
    if args.sampler is not None:
        options["sampler"] = args.sampler
    if args.nfe is not None:
        options["nfe"] = args.nfe
    run = load_run(args.workdir)
    _check_options(run.model.sample, options, f"sampler option for {run.config['model']}", skip=3)
    try:
        samples = run.model.sample(run.params, jax.random.key(args.seed), args.num, **options)
    except TypeError as err:
        raise GenjaxError(f"bad sampler option for {run.config['model']}: {err}") from err
    samples = np.asarray(samples)
    if out.endswith(".npy"):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        tmp = out + ".tmp.npy"
        np.save(tmp, samples)
        os.replace(tmp, out)
    else:
        viz.save_samples(samples, out, title=f"{run.config['model']} samples (seed {args.seed})")
    print(os.path.abspath(out))
    return 0


def _parse_options(items: Sequence[str]) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` strings (values as Python literals where they parse)."""
    from genjax_models.train.run import parse_value

    options: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise GenjaxError(f"--option expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        options[key.strip()] = parse_value(value)
    return options


def _check_options(fn: Any, options: dict[str, Any], what: str, skip: int) -> None:
    """Raise a GenjaxError naming the valid keywords if ``options`` has ones ``fn`` does not take.

    ``skip`` positional parameters (params, key/batch, ...) are not options.
    """
    import inspect

    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    valid = [p.name for p in params[skip:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    bad = sorted(set(options) - set(valid))
    if bad:
        choices = ", ".join(valid) if valid else "none"
        raise GenjaxError(f"unknown {what}: {', '.join(bad)}; valid: {choices}")


COMMANDS = {"list": _cmd_list, "train": _cmd_train, "eval": _cmd_eval, "sample": _cmd_sample}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genjax`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GenjaxError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return _fail("interrupted; the last checkpoint in the workdir is intact")


if __name__ == "__main__":
    sys.exit(main())
