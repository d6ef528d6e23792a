"""The ``genjax`` command.

    genjax list [--verbose]
    genjax describe MODEL
    genjax train MODEL [--data NAME] [--steps N] [--batch-size B] [--lr LR] [--seed S]
                       [--workdir DIR] [--config FILE] [--set KEY=VALUE ...] [--eval]
                       [--no-progress]
    genjax eval --workdir DIR [--split test] [--k K] [--estimator NAME] [--option KEY=VALUE ...]
                [--batch-size B] [--seed S] [--no-progress]
    genjax sample --workdir DIR [--num N] [--seed S] [--out FILE] [--sampler NAME] [--nfe N]
                  [--labels K[,K...]] [--guidance W] [--option KEY=VALUE ...]
                  [--batch-size B] [--no-progress]
    genjax complete --workdir DIR --mask NAME|FILE.npy [--input FILE.npy] [--num N] ...

The CLI knows nothing of any family: it asks the model (its declared fields and options, see
:mod:`genjax_models.model`). A user's mistake (unknown name, bad value, bad shape or data,
missing or mismatched checkpoint, config conflict) prints one line ``genjax: error: ...`` on
stderr and exits with status 2, without a traceback. ``eval`` prints one JSON object on stdout.
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
# CLI flags that stand for a conventional model option (genjax_models.model's docstring).
_FLAG_OPTIONS = {
    "--k": "num_samples",
    "--estimator": "estimator",
    "--sampler": "sampler",
    "--nfe": "nfe",
    "--guidance": "guidance",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: same format, exit 2
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(message))


def _fail(message: str) -> int:
    print(f"genjax: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    """Return the ``genjax`` argument parser (every option has help text and shows defaults)."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(
        prog="genjax", description="Deep generative models in JAX.", formatter_class=fmt
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = sub.add_parser("list", help="list models and datasets", formatter_class=fmt)
    listing.add_argument(
        "--verbose",
        action="store_true",
        help="also list every model's hyper-parameters and options",
    )

    describe = sub.add_parser(
        "describe",
        formatter_class=fmt,
        help="a model's hyper-parameters, sample options and estimators",
    )
    describe.add_argument("model", help="model name (see `genjax list`)")

    train = sub.add_parser(
        "train", formatter_class=fmt, help="train a model (resumes if WORKDIR holds the same run)"
    )
    train.add_argument("model", help="model name (see `genjax list`)")
    train.add_argument("--data", help="dataset name or .npz path (default: the model's usual one)")
    train.add_argument("--steps", type=int, help="total optimiser steps (default: the model's)")
    train.add_argument("--batch-size", type=int, help="global batch size (default: the model's)")
    train.add_argument("--lr", type=float, help="peak learning rate (default: the model's)")
    train.add_argument("--seed", type=int, help="random seed (default: 0)")
    train.add_argument("--workdir", help="run directory (default: runs/MODEL_DATA[_FIELD=VALUE])")
    train.add_argument("--config", help="ml_collections config file (experiments/configs/*.py)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. model.latent_dim=16 (see `genjax describe`)",
    )
    train.add_argument("--eval", action="store_true", help="evaluate the test NLL at the end")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    multi = train.add_argument_group(
        "multi-process (one command per process; all other flags the same)"
    )
    multi.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    multi.add_argument("--num-processes", type=int, metavar="N", help="processes in the run")
    multi.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")
    multi.add_argument(
        "--distributed",
        action="store_true",
        help="let jax.distributed.initialize() detect the above (TPU pods, SLURM, Open MPI)",
    )

    ev = sub.add_parser(
        "eval",
        formatter_class=fmt,
        help="estimate the NLL of a trained run; prints one JSON object",
    )
    ev.add_argument("--workdir", required=True, help="a run directory written by `genjax train`")
    ev.add_argument("--split", default="test", choices=("test", "train"), help="data split")
    ev.add_argument("--k", type=int, help="importance samples (models with an IWAE estimate)")
    ev.add_argument("--estimator", help="estimator, where a model has several (`genjax describe`)")
    ev.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="log-prob option, e.g. trace=hutchinson (see `genjax describe`)",
    )
    ev.add_argument("--batch-size", type=int, default=100, help="examples per log_prob call")
    ev.add_argument("--seed", type=int, default=0, help="seed of stochastic estimators")
    ev.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sample = sub.add_parser("sample", formatter_class=fmt, help="draw samples from a trained run")
    sample.add_argument(
        "--workdir", required=True, help="a run directory written by `genjax train`"
    )
    sample.add_argument("--num", type=int, default=64, help="number of samples")
    sample.add_argument("--seed", type=int, default=0, help="random seed")
    sample.add_argument(
        "--out", help="output .png (grid) or .npy (array); default WORKDIR/samples_seedS.png"
    )
    sample.add_argument("--sampler", help="sampler, where a model has several (diffusion)")
    sample.add_argument("--nfe", type=int, help="sampler budget in network evaluations (diffusion)")
    sample.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="sample option, e.g. mean=true (see `genjax describe`)",
    )
    sample.add_argument(
        "--guidance",
        type=float,
        metavar="W",
        help="classifier-free guidance weight w >= 0 with --labels (conditional diffusion)",
    )
    sample.add_argument(
        "--label",
        "--labels",
        dest="label",
        metavar="K[,K...]",
        help="class label(s) for a conditional model (pixelcnn with model.num_classes, "
        "diffusion with model.conditional=true, cvae, m2): "
        "one class for every sample, or a comma list repeated over the samples (0,1,...,9 "
        "gives rows of classes in a 10-column grid)",
    )
    sample.add_argument("--batch-size", type=int, default=256, help="samples per call")
    sample.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    complete = sub.add_parser(
        "complete",
        formatter_class=fmt,
        help="fill in the missing part of partly observed examples with a trained run",
    )
    complete.add_argument(
        "--workdir", required=True, help="a run directory written by `genjax train`"
    )
    complete.add_argument(
        "--mask",
        required=True,
        help="observed entries: top-half, bottom-half, left-half, right-half, random(P) "
        "(each entry seen with probability P) or FILE.npy (bools, [*event] or [N, *event])",
    )
    complete.add_argument(
        "--input", help="examples FILE.npy [N, *event]; default: the first test examples"
    )
    complete.add_argument(
        "--examples", type=int, default=8, help="test examples to complete (without --input)"
    )
    complete.add_argument("--num", type=int, default=4, help="completions per example")
    complete.add_argument("--seed", type=int, default=0, help="random seed")
    complete.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="completion option, e.g. num_particles=64 (see `genjax describe`)",
    )
    complete.add_argument(
        "--out",
        help="output .png (rows: original, masked input, completions) or .npy "
        "(completions [num, N, *event]); default WORKDIR/completions_seedS.png",
    )
    return parser


def _cmd_list(args: argparse.Namespace) -> int:
    from genjax_models.data import list_datasets
    from genjax_models.model import list_models

    print("models:")
    for name, text in list_models().items():
        print(f"  {name:<16} {text}")
    print("datasets:")
    for name, text in list_datasets().items():
        print(f"  {name:<16} {text}")
    if args.verbose:
        for name in list_models():
            print()
            _describe(name)
    else:
        print("details of a model: genjax describe MODEL")
    return 0


def _describe(name: str) -> None:
    from genjax_models.fields import type_name
    from genjax_models.model import describe_fields, list_models, model_class

    cls = model_class(name)
    recipe = cls.default_run
    print(f"{name}: {list_models()[name]}")
    print(
        f"  labels: {cls.labels}; default run: data={recipe.data}"
        + (f", binarize={recipe.binarize}" if recipe.binarize else "")
        + (f", dequantize={recipe.dequantize}" if recipe.dequantize else "")
        + "".join(f", train.{k}={v}" for k, v in recipe.train.items())
    )
    if recipe.expected:
        print(f"  expected: {recipe.expected}")
    print("  hyper-parameters (--set model.NAME=VALUE):")
    for field in describe_fields(name):
        print(f"    {field.name:<16} {field.type:<22} default {field.default!r:<18} {field.help}")
    for title, options in (
        ("sample options (genjax sample --option NAME=VALUE)", cls.sample_options),
        ("log-prob options (genjax eval --option NAME=VALUE)", cls.log_prob_options),
        ("completion options (genjax complete --option NAME=VALUE)", cls.complete_options),
    ):
        if title.startswith("completion") and not cls.can_complete:
            print("  completion (genjax complete): not supported")
            continue
        print(f"  {title}:" + ("" if options else " none"))
        for option in options:
            print(
                f"    {option.name:<16} {type_name(option.type):<22} "
                f"default {option.default!r:<18} {option.help}"
            )


def _cmd_describe(args: argparse.Namespace) -> int:
    _describe(args.model)
    return 0


def _quiet(*args: Any, **kwargs: Any) -> None:
    """``print`` for the processes other than 0 of a multi-process run: says nothing."""


def _cmd_train(args: argparse.Namespace) -> int:
    from genjax_models.experiment import train_and_evaluate
    from genjax_models.model import model_class
    from genjax_models.train.run import default_workdir, resolve_config

    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value is not None and value < (0 if flag == "--steps" else 1):
            raise GenjaxError(f"{flag} must be >= {0 if flag == '--steps' else 1}, got {value}")
    report = print
    multi = (args.coordinator, args.num_processes, args.process_id)
    if args.distributed or any(value is not None for value in multi):
        from genjax_models.train import distributed

        distributed.initialize(*multi, auto=args.distributed)
        if not distributed.is_writer():  # process 0 reports; the others train quietly
            report = _quiet
    flags: dict[str, Any] = {}
    if args.data:
        flags["data"] = args.data
    train = {
        key: value
        for key, value in (
            ("steps", args.steps),
            ("batch_size", args.batch_size),
            ("lr", args.lr),
            ("seed", args.seed),
        )
        if value is not None
    }
    if train:
        flags["train"] = train
    config = resolve_config(args.model, config_file=args.config, flags=flags, overrides=args.set)
    # model_config holds only what a config file or --set changed: name the workdir after it.
    workdir = args.workdir or default_workdir(config, config["model_config"])
    recipe = model_class(args.model).default_run
    if recipe.expected and args.steps is None and not args.config:
        report(f"default run of {args.model}: {recipe.expected}", file=sys.stderr)
    result = train_and_evaluate(
        config, workdir, progress=not args.no_progress, eval_split="test" if args.eval else None
    )
    last = result.history[-1] if result.history else {}
    step = int(last.get("step", result.resumed_from or 0))
    if result.resumed_from is not None:
        report(f"resumed from step {result.resumed_from}")
        if result.resumed_from >= config["train"]["steps"]:
            report(
                f"the checkpoint is already at step {result.resumed_from} >= train.steps="
                f"{config['train']['steps']}: nothing to train (raise --steps to continue)"
            )
            step = result.resumed_from
    summary = ", ".join(
        f"{k}={last[k]:.4g}"
        for k in ("loss", "nll", "bits_per_dim")
        if isinstance(last.get(k), float)
    )
    report(
        f"trained {config['model']} on {config['data']} to step {step}"
        + (f": {summary}" if summary else "")
    )
    root = os.path.abspath(workdir)
    report(f"workdir:  {root}")
    for name in ("config.json", "metrics.jsonl", "samples.png", "loss.png"):
        if os.path.exists(os.path.join(root, name)):
            report(f"  {name:<14} {os.path.join(root, name)}")
    report(f"next: genjax eval --workdir {workdir}")
    return 0


def _model_options(model: Any, kind: str, raw: dict[str, Any], flags: dict[str, Any]) -> dict:
    """Typed options for ``model``'s ``sample`` / ``log_prob`` from ``--option`` and flags.

    A flag (``--k``, ``--estimator``, ``--sampler``, ``--nfe``) that the model has no option
    for is an error naming the flag and the model's own options.
    """
    declared = model.sample_options if kind == "sample" else model.log_prob_options
    names = [option.name for option in declared]
    listed = ", ".join(names) if names else "none"
    options = dict(raw)
    for flag, value in flags.items():
        if value is None:
            continue
        option = _FLAG_OPTIONS[flag]
        if option not in names:
            extra = ""
            if kind == "log_prob":
                extra = f"; its estimator is {model.describe_log_prob().estimator!r}"
            raise GenjaxError(
                f"{flag} does not apply to {model.name}{extra} (its {kind} options: {listed})"
            )
        options[option] = value
    resolve = model.resolve_sample_options if kind == "sample" else model.resolve_log_prob_options
    typed = resolve(options)
    return {name: typed[name] for name in options}


def _cmd_eval(args: argparse.Namespace) -> int:
    import jax

    from genjax_models.eval import evaluate
    from genjax_models.train.run import load_run
    from genjax_models.workdir import write_eval

    if args.k is not None and args.k < 1:
        raise GenjaxError(f"--k must be >= 1, got {args.k}")
    if args.batch_size < 1:
        raise GenjaxError(f"--batch-size must be >= 1, got {args.batch_size}")
    raw = _parse_options(args.option)
    run = load_run(args.workdir)
    options = _model_options(
        run.model, "log_prob", raw, {"--k": args.k, "--estimator": args.estimator}
    )
    report = evaluate(
        run.model,
        run.params,
        run.data,
        split=args.split,
        key=jax.random.key(args.seed),
        batch_size=args.batch_size,
        progress=not args.no_progress,
        **options,
    )
    record = write_eval(args.workdir, report, run.config)
    print(json.dumps(record))
    return 0


def _output_path(out: str | None, workdir: str, default: str) -> str:
    """Return ``--out`` (or ``WORKDIR/default``), which must be a ``.png`` or ``.npy`` path."""
    out = out or os.path.join(workdir, default)
    if not out.endswith((".png", ".npy")):
        raise GenjaxError(f"--out must end in .png or .npy, got {out}")
    return out


def _save_array(path: str, array: Any) -> None:
    """Write ``array`` to ``path`` (.npy) atomically: a failed write leaves no partial file."""
    import numpy as np

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def _sample_labels(model: Any, spec: str | None, num: int) -> Any:
    """Return the ``[num]`` int labels ``--label`` asks for (None without it), checked eagerly.

    ``spec`` is one integer or a comma list repeated cyclically over the ``num`` samples.
    """
    import numpy as np

    if spec is None:
        if model.labels == "needs":
            raise GenjaxError(f"{model.name} is conditional: pass --label K (or K1,K2,...)")
        return None
    try:
        classes = [int(part) for part in spec.split(",")]
    except ValueError:
        raise GenjaxError(
            f"--label must be an integer or a comma list of integers, got {spec!r}"
        ) from None
    labels = np.resize(np.asarray(classes, np.int32), num)
    model.check_sample_labels(labels, num)  # unconditional models and out-of-range classes
    return labels


def _cmd_sample(args: argparse.Namespace) -> int:
    import jax
    import numpy as np
    from tqdm.auto import tqdm

    from genjax_models import viz
    from genjax_models.train.run import load_run

    if args.num < 1:
        raise GenjaxError(f"--num must be >= 1, got {args.num}")
    if args.batch_size < 1:
        raise GenjaxError(f"--batch-size must be >= 1, got {args.batch_size}")
    out = _output_path(args.out, args.workdir, f"samples_seed{args.seed}.png")
    if args.nfe is not None and args.nfe < 1:
        raise GenjaxError(f"--nfe must be >= 1, got {args.nfe}")
    raw = _parse_options(args.option)
    run = load_run(args.workdir)
    options = _model_options(
        run.model, "sample", raw,
        {"--sampler": args.sampler, "--nfe": args.nfe, "--guidance": args.guidance},
    )
    resolved = run.model.resolve_sample_options(options)
    shown = ", ".join(f"{k}={v}" for k, v in resolved.items() if v is not None) or "none"
    print(f"sampling {args.num} from {run.config['model']} (options: {shown})", file=sys.stderr)
    labels = _sample_labels(run.model, args.label, args.num)
    key = jax.random.key(args.seed)
    starts = list(range(0, args.num, args.batch_size))
    chunks = []
    for i, start in enumerate(tqdm(starts, disable=args.no_progress, unit="batch", leave=False)):
        size = min(args.batch_size, args.num - start)
        chunk_key = key if len(starts) == 1 else jax.random.fold_in(key, i)
        chunk_labels = None if labels is None else labels[start : start + size]
        chunks.append(np.asarray(
            run.model.sample(run.params, chunk_key, size, labels=chunk_labels, **options)
        ))
    samples = np.concatenate(chunks)
    if out.endswith(".npy"):
        _save_array(out, samples)
    else:
        viz.save_samples(samples, out, title=f"{run.config['model']} samples (seed {args.seed})")
    print(os.path.abspath(out))
    return 0


def _cmd_complete(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from genjax_models import viz
    from genjax_models.completion import make_mask
    from genjax_models.data import Batch
    from genjax_models.model import cannot_complete
    from genjax_models.train.run import load_run

    if args.num < 1:
        raise GenjaxError(f"--num must be >= 1, got {args.num}")
    if args.examples < 1:
        raise GenjaxError(f"--examples must be >= 1, got {args.examples}")
    out = _output_path(args.out, args.workdir, f"completions_seed{args.seed}.png")
    raw = _parse_options(args.option)
    run = load_run(args.workdir)
    model = run.model
    if not model.can_complete:
        raise cannot_complete(model.name)
    options = model.resolve_complete_options(raw)
    labels = None
    if args.input:
        if not os.path.isfile(args.input):
            raise GenjaxError(f"--input {args.input!r} does not exist")
        examples = np.asarray(np.load(args.input, allow_pickle=False), np.float32)
    else:
        examples = np.asarray(run.data.split("test")[: args.examples], np.float32)
        test_labels = run.data.split_labels("test")
        if test_labels is not None and model.labels != "ignores":
            labels = np.asarray(test_labels[: len(examples)])
    if examples.shape[1:] != tuple(model.event_shape):
        raise GenjaxError(
            f"--input must hold examples [N, {', '.join(map(str, model.event_shape))}], "
            f"got {list(examples.shape)}"
        )
    key = jax.random.key(args.seed)
    mask_key, complete_key = jax.random.split(key)
    observed = make_mask(args.mask, model.event_shape, len(examples), mask_key)
    batch = examples if labels is None else Batch(examples, labels)
    result = model.complete(run.params, complete_key, batch, observed, args.num, **options)
    samples = np.asarray(result.samples)
    for i, (log_p, exact) in enumerate(zip(result.log_p_observed, result.exact, strict=True)):
        computed = bool(np.isfinite(log_p)) or float(log_p) == -np.inf
        record = {
            "example": i,
            "observed": int(observed[i].sum()),
            "log_p_observed_nats": float(log_p) if computed else None,
            "kind": ("exact" if bool(exact) else "estimate") if computed else "not-computed",
        }
        print(json.dumps(record))
    if out.endswith(".npy"):
        _save_array(out, samples)
    else:
        viz.save_completions(
            examples,
            observed,
            samples,
            out,
            title=f"{run.config['model']}: original | observed ({args.mask}) | completions",
        )
    print(os.path.abspath(out))
    return 0


def _parse_options(items: Sequence[str]) -> dict[str, str]:
    """Split repeated ``KEY=VALUE`` strings; values stay text, typed by the model's options."""
    options: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise GenjaxError(f"--option expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        options[key.strip()] = value.strip()
    return options


COMMANDS = {
    "list": _cmd_list,
    "describe": _cmd_describe,
    "train": _cmd_train,
    "eval": _cmd_eval,
    "sample": _cmd_sample,
    "complete": _cmd_complete,
}


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
