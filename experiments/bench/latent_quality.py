"""Test-set likelihood of the VAE and IWAE (k = 10) on digits and mnist5k, against anchors.

What it measures: each model is trained with ``fit`` (settings of experiments/configs/
{vae,iwae}_{digits,mnist5k}.py: Adam lr 1e-3, batch 128, 3000 steps; digits: latent 8,
hidden (256, 128); mnist5k: latent 32, hidden (512, 256)) and evaluated on the test split
with ``evaluate``: the IWAE-1000 estimate of the NLL (``num_samples=1000``, with its
standard error over test examples) and the ELBO (``num_samples=1``). Recorded per run: steps,
training and evaluation wall time, final training loss, test NLL, test ELBO, and whether the
NLL beats the FVSBN anchor.

Data: sklearn digits thresholded at 8 (``binarize="threshold(8)"``, 1438/359 stratified
split) and mnist5k with dynamic binarisation (training sees a fresh binarisation each step;
the test split is one fixed binarisation, ``eval_seed=0``).

Anchors (shared/REFERENCE.md, test NLL in nats): digits -- independent Bernoulli 25.2,
mixture of 32 Bernoullis 18.8, FVSBN 18.05; mnist5k, one fixed stochastic binarisation --
FVSBN 111.3. Goal: both models below FVSBN on both datasets, IWAE at or below the VAE.
Budget: under ~25 minutes on a 2-core CPU (333 s measured here, shared machine).

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/latent_quality.py           # writes latent_quality.json
    python experiments/bench/latent_quality.py --quick   # smoke run (50 steps, k = 10)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from common import parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import TrainConfig, fit  # noqa: E402

ANCHORS = {
    "digits": {"independent_bernoulli": 25.2, "mixture_32_bernoullis": 18.8, "fvsbn": 18.05},
    "mnist5k": {"fvsbn_fixed_stochastic_binarisation": 111.3},
}
FVSBN = {"digits": 18.05, "mnist5k": 111.3}

DATA = {
    "digits": {"binarize": "threshold(8)"},
    "mnist5k": {"binarize": "dynamic", "eval_seed": 0},
}
MODELS = {
    "digits": {"latent_dim": 8, "hidden": (256, 128)},
    "mnist5k": {"latent_dim": 32, "hidden": (512, 256)},
}
RUNS = [  # (model, data, extra model kwargs, steps)
    ("vae", "digits", {}, 3000),
    ("iwae", "digits", {"num_importance": 10}, 3000),
    ("vae", "mnist5k", {}, 3000),
    ("iwae", "mnist5k", {"num_importance": 10}, 3000),
]
TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0}


def run_one(
    model_name: str, data_name: str, extra: dict[str, Any], steps: int, eval_k: int
) -> dict[str, Any]:
    prepared = prepare(load_dataset(data_name), **DATA[data_name])
    model_kwargs = {**MODELS[data_name], **extra}
    model = get_model(model_name, prepared.spec, **model_kwargs)
    config = TrainConfig(
        steps=steps,
        log_every=max(1, min(500, steps)),
        checkpoint_every=10**9,
        steps_per_call=50,
        **TRAIN,
    )
    t0 = time.perf_counter()
    result = fit(model, prepared, config, progress=False)
    jax.block_until_ready(result.state.params)
    train_s = time.perf_counter() - t0
    params = result.state.eval_params
    last = result.history[-1]

    t1 = time.perf_counter()
    nll = evaluate(
        model,
        params,
        prepared,
        split="test",
        key=jax.random.key(123),
        batch_size=100,
        num_samples=eval_k,
    )
    nll_s = time.perf_counter() - t1
    elbo = evaluate(
        model,
        params,
        prepared,
        split="test",
        key=jax.random.key(456),
        batch_size=100,
        num_samples=1,
    )
    eval_s = time.perf_counter() - t1
    anchor = FVSBN[data_name]
    record = {
        "model": model_name,
        "data": data_name,
        "preprocessing": prepared.preprocessing,
        "num_train": int(prepared.train.shape[0]),
        "num_test": int(prepared.test.shape[0]),
        "model_config": {
            k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()
        },
        "train_config": {"steps": steps, **TRAIN, "optimizer": "adam", "schedule": "constant"},
        "steps": int(jax.device_get(result.state.step)),
        "train_wall_s": train_s,
        "steps_per_s": steps / train_s,
        "final_train_loss": last["loss"],
        "final_train_metrics": {k: v for k, v in last.items() if isinstance(v, float)},
        "loss_curve": [(r["step"], r["loss"]) for r in result.history],
        "test_nll": {
            k: nll[k]
            for k in ("estimator", "nll_nats", "nll_stderr", "bits_per_dim", "num_examples")
        },
        "test_elbo": {k: elbo[k] for k in ("estimator", "nll_nats", "nll_stderr", "bits_per_dim")},
        "test_nll_eval_wall_s": nll_s,
        "eval_wall_s": eval_s,
        "fvsbn_anchor": anchor,
        "beats_fvsbn": nll["nll_nats"] < anchor,
        "beats_fvsbn_by_2_stderr": nll["nll_nats"] + 2 * nll["nll_stderr"] < anchor,
        "elbo_beats_fvsbn": elbo["nll_nats"] < anchor,
    }
    print(
        f"{model_name:5s} {data_name:8s} steps={record['steps']} train {train_s:6.1f}s "
        f"loss={last['loss']:.3f}  test {nll['estimator']} NLL={nll['nll_nats']:.3f}"
        f"+-{nll['nll_stderr']:.3f}  -ELBO={elbo['nll_nats']:.3f}  (FVSBN {anchor})  "
        f"eval {eval_s:.1f}s",
        flush=True,
    )
    return record


def main() -> None:
    args = parse_args(__doc__)
    eval_k = 10 if args.quick else 1000
    t0 = time.perf_counter()
    runs = []
    for model_name, data_name, extra, steps in RUNS:
        runs.append(run_one(model_name, data_name, extra, 50 if args.quick else steps, eval_k))
    summary = {
        f"{r['model']}_{r['data']}": {
            "test_nll_nats": r["test_nll"]["nll_nats"],
            "test_nll_stderr": r["test_nll"]["nll_stderr"],
            "estimator": r["test_nll"]["estimator"],
            "test_neg_elbo_nats": r["test_elbo"]["nll_nats"],
            "fvsbn_anchor": r["fvsbn_anchor"],
            "beats_fvsbn": r["beats_fvsbn"],
            "train_wall_s": r["train_wall_s"],
        }
        for r in runs
    }
    payload = {
        "description": (
            "test NLL (IWAE-k) and ELBO of VAE / IWAE-10 on digits and mnist5k vs anchors"
        ),
        "quick": args.quick,
        "anchors_nats": ANCHORS,
        "summary": summary,
        "runs": runs,
        "total_wall_s": time.perf_counter() - t0,
    }
    path = write_result("latent_quality_quick" if args.quick else "latent_quality", payload)
    print(f"total {payload['total_wall_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
