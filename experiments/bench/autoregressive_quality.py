"""Exact test NLL of every autoregressive model on digits, next to the README's anchors.

What it measures: each run resolves its config file from experiments/configs/ (exactly what
``genjax train MODEL --config FILE`` runs, plus the overrides listed in RUNS), trains it with
``fit`` and evaluates the exact test log-likelihood with ``evaluate`` (nats per image and
bits/dim, with the standard error over test examples). Recorded per run: the resolved
config, steps, training wall time, test NLL, and samples/s of ``model.sample`` (100 samples,
after compilation).

Parts:
- ``binary``: sklearn digits thresholded at 8 (1438/359 stratified split), every model;
- ``grey``: digits with its 17 grey levels kept (``data.binarize=none data.dequantize=none``),
  categorical conditionals (FVSBN, NADE) and PixelCNN with categorical and logistic-mixture
  outputs; bits/dim is on the 17-level scale.

Anchors (shared/REFERENCE.md; test NLL in nats, digits threshold(8)): independent Bernoulli
25.2, mixture of 32 Bernoullis 18.8, FVSBN 18.05, VAE IWAE-1000 16.49, IWAE 16.16. Goals:
NADE and MADE below FVSBN; gated PixelCNN and the Transformer below the IWAE.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/autoregressive_quality.py                # both parts
    python experiments/bench/autoregressive_quality.py --part binary  # one part
    python experiments/bench/autoregressive_quality.py --quick        # smoke run (20 steps)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from common import parse_args, write_result  # noqa: E402

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
GREY = ["data.binarize=none", "data.dequantize=none"]
RUNS: dict[str, list[tuple[str, str, list[str]]]] = {  # part -> (label, config file, overrides)
    "binary": [
        ("fvsbn", "fvsbn_digits.py", []),
        ("nade", "nade_digits.py", []),
        ("made", "made_digits.py", []),
        ("pixelcnn", "pixelcnn_digits.py", []),
        ("ar-transformer", "ar_transformer_digits.py", []),
        ("rnn", "rnn_digits.py", []),
    ],
    "grey": [
        ("fvsbn-categorical", "fvsbn_digits.py", GREY),
        ("nade-categorical", "nade_digits.py", GREY),
        ("pixelcnn-categorical", "pixelcnn_digits.py", GREY),
        ("pixelcnn-logistic-mixture", "pixelcnn_digits.py",
         [*GREY, "model.likelihood=logistic-mixture"]),
    ],
}


def run_one(label: str, config_file: str, overrides: list[str], quick: bool) -> dict[str, Any]:
    """Train and evaluate one configured run; return its record."""
    path = os.path.join(CONFIGS, config_file)
    extra = ["train.steps=20", "train.log_every=10", "train.steps_per_call=10"] if quick else []
    name = load_config_file(path)["model"]
    config = resolve_config(name, config_file=path, overrides=[*overrides, *extra])
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
        "beats_fvsbn_reference": report["nll_nats"] < ANCHORS["fvsbn_reference"],
        "beats_iwae": report["nll_nats"] < ANCHORS["iwae"],
    }
    print(
        f"{label:26s} steps={record['steps']:5d} train {train_s:6.1f}s  test NLL "
        f"{report['nll_nats']:.3f}+-{report['nll_stderr']:.3f} nats "
        f"({report['bits_per_dim']:.4f} bits/dim)  sample {record['samples_per_s']:.0f}/s",
        flush=True,
    )
    return record


def main() -> None:
    args = parse_args(__doc__, parts=tuple(RUNS))
    parts = list(RUNS) if args.part == "all" else [args.part]
    t0 = time.perf_counter()
    runs = []
    for part in parts:
        for label, config_file, overrides in RUNS[part]:
            if not os.path.exists(os.path.join(CONFIGS, config_file)):
                print(f"skipping {label}: no {config_file}", flush=True)
                continue
            runs.append({"part": part, **run_one(label, config_file, overrides, args.quick)})
    payload = {
        "description": "exact test NLL of the autoregressive models on digits vs anchors",
        "quick": args.quick,
        "anchors_nats_digits_threshold8": ANCHORS,
        "summary": {
            f"{r['part']}/{r['label']}": {
                "test_nll_nats": r["test"]["nll_nats"],
                "test_nll_stderr": r["test"]["nll_stderr"],
                "bits_per_dim": r["test"]["bits_per_dim"],
                "kind": r["test"]["log_prob_kind"],
                "train_wall_s": r["train_wall_s"],
                "samples_per_s": r["samples_per_s"],
            }
            for r in runs
        },
        "runs": runs,
        "total_wall_s": time.perf_counter() - t0,
    }
    name = "autoregressive_quality" + ("" if args.part == "all" else f"_{args.part}")
    path = write_result(name + ("_quick" if args.quick else ""), payload)
    print(f"total {payload['total_wall_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
