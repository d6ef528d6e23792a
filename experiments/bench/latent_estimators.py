"""Estimating log p(x) of a trained VAE: prior sampling vs the ELBO vs IWAE-k, side by side.

What it measures: the mnist5k VAE of experiments/configs/vae_mnist5k.py (3000 steps) is
trained once; then, on the first 100 test images (one fixed binarisation), each estimate of
:mod:`genjax_models.latent.marginal_estimators` is drawn R = 3 times for k = 1, 10, 100,
1000 and 10 000 samples: ``prior`` (log of the mean of p(x | z_i), z_i ~ N(0, I)), ``elbo``
(mean of log w_i, z_i ~ q) and ``iwae`` (log of the mean of w_i, z_i ~ q). Recorded per
(estimate, k): the mean over images (nats), its standard error over images, the draw-to-draw
std per image, and the gap to the best available estimate (IWAE-10000). There is no exact
log p(x) for a neural decoder; every figure is a stochastic lower bound (Jensen).

The lecture's point, measured: naive prior sampling needs orders of magnitude more samples
than importance sampling with q for the same accuracy.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/latent_estimators.py           # latent_estimators.json (~4 min)
    python experiments/bench/latent_estimators.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from common import parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.latent.marginal_estimators import (  # noqa: E402
    format_table,
    model_estimator_table,
)
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import TrainConfig, fit  # noqa: E402

MODEL = {"latent_dim": 32, "hidden": (512, 256)}
TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0}


def main() -> None:
    args = parse_args(__doc__)
    steps, ks, num_images = (50, (1, 10, 100), 20) if args.quick else (
        3000, (1, 10, 100, 1000, 10000), 100)
    t0 = time.perf_counter()
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    model = get_model("vae", prepared.spec, **MODEL)
    config = TrainConfig(steps=steps, log_every=steps, checkpoint_every=10**9,
                         steps_per_call=50, **TRAIN)
    params = fit(model, prepared, config, progress=False).state.eval_params
    train_s = time.perf_counter() - t0
    x = jnp.asarray(prepared.test[:num_images])
    t1 = time.perf_counter()
    rows = model_estimator_table(model, params, x, jax.random.key(7), num_samples=ks,
                                 num_repeats=3, chunk_size=100)
    table_s = time.perf_counter() - t1
    best = max(r["mean"] for r in rows if r["estimate"] == "iwae" and r["k"] == max(ks))
    for r in rows:
        r["gap_to_best_iwae"] = best - r["mean"]
    print(format_table(rows))
    payload = {
        "description": "log p(x) estimates of an mnist5k VAE: prior sampling, ELBO, IWAE-k",
        "quick": args.quick,
        "model": "vae",
        "model_config": {k: list(v) if isinstance(v, tuple) else v for k, v in MODEL.items()},
        "train_config": {"steps": steps, **TRAIN},
        "num_test_images": num_images,
        "num_repeats": 3,
        "reference": f"iwae-{max(ks)} (no exact log p(x) exists; all figures are lower bounds)",
        "rows": rows,
        "train_wall_s": train_s,
        "table_wall_s": table_s,
    }
    path = write_result("latent_estimators_quick" if args.quick else "latent_estimators", payload)
    print(f"train {train_s:.0f}s, table {table_s:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
