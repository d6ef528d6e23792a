"""Training throughput of the flow models as a fraction of this process's matmul FLOP/s.

What it measures: the jitted training call that ``fit`` runs (``make_update`` +
``make_train_step``: batch gather, uniform dequantisation, exact-NLL loss, grads, Adam, K
steps per call in a ``lax.scan``) on uniformly dequantised ``digits`` (8x8, D = 64):

* realnvp: 8 affine couplings + ActNorm, MLP conditioners 256-256, batch 256, on flattened
  pixels after the logit;
* maf: 5 MADE layers 256-256, batch 256 (the density direction is one pass per layer);
* nsf: 8 RQ-spline couplings (K = 8) with LU mixing, MLP conditioners 256-256, batch 256;
* glow: 2 scales x 4 steps (ActNorm, 1x1 conv, affine coupling), 64-channel conv
  conditioners, batch 64 on [8, 8, 1] images.

Model FLOP/s = (XLA cost-analysis FLOPs of one step x steps per call) / wall time of the
K-step call; it is divided by the FLOP/s of a jitted 1024x1024 float32 matmul measured in
the same process, in interleaved rounds (matmul best-of-3, then the best of 2 model calls;
the reported fraction is the median over rounds of the per-round ratio), so load from other
processes on the shared cores affects both alike. This is the method of
``latent_speed.py``; small layers (64-wide inputs, 2-D toys) cannot approach a 1024^2
matmul's rate, so these fractions are a hardware-efficiency diagnostic, not a goal.

Run (from the repo root):
    python experiments/bench/flows_speed.py           # writes experiments/results/flows_speed.json
    python experiments/bench/flows_speed.py --quick   # smoke run, writes flows_speed_quick.json
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from common import compiled_flops, measure_matmul_flops, parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import (  # noqa: E402
    TrainConfig,
    init_state,
    make_optimizer,
    make_train_step,
    make_update,
)
from genjax_models.train.fit import run_key  # noqa: E402

# (case, model, model kwargs, batch size, steps per call)
CASES: list[tuple[str, str, dict[str, Any], int, int]] = [
    ("realnvp", "realnvp", {"num_layers": 8, "hidden": (256, 256)}, 256, 20),
    ("maf", "maf", {"num_layers": 5, "hidden": (256, 256)}, 256, 20),
    ("nsf", "nsf", {"num_layers": 8, "hidden": (256, 256), "num_bins": 8}, 256, 20),
    ("glow", "glow", {"num_scales": 2, "steps_per_scale": 4, "hidden_channels": 64}, 64, 10),
]


def _timed_calls(step, state, data, key, calls: int) -> tuple[Any, list[float]]:
    """Run ``calls`` chained calls of the state-donating step; return (state, seconds each)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        state, metrics = step(state, data, key)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    return state, times


def run_case(
    label: str, name: str, kwargs: dict[str, Any], batch: int, k: int, prepared, rounds: int
) -> dict[str, Any]:
    """Compile one model's K-step training call and time it against the matmul in rounds."""
    model = get_model(name, prepared.spec, **kwargs)
    config = TrainConfig(batch_size=batch, lr=1e-4)
    update = make_update(
        model, make_optimizer(config), batch_size=batch, train_transform=prepared.train_transform
    )
    state = init_state(model, prepared, config)
    data = jnp.asarray(prepared.train)
    key = run_key(config)
    step_flops = compiled_flops(jax.jit(update), state, data, key)
    step = make_train_step(update, k, batch_size=batch)
    t0 = time.perf_counter()
    state, _ = _timed_calls(step, state, data, key, 2)  # compile + warm-up
    warm_s = time.perf_counter() - t0
    times, matmuls, fractions = [], [], []
    for _ in range(rounds):
        mm = measure_matmul_flops(repeats=3)["flops_per_s_best"]
        state, t = _timed_calls(step, state, data, key, 2)
        times += t
        matmuls.append(mm)
        fractions.append(step_flops * k / min(t) / mm)
    best, median = min(times), statistics.median(times)
    record = {
        "case": label,
        "model": name,
        "model_config": {a: list(b) if isinstance(b, tuple) else b for a, b in kwargs.items()},
        "num_params": int(sum(x.size for x in jax.tree.leaves(state.params))),
        "batch_size": batch,
        "steps_per_call": k,
        "flops_per_step": step_flops,
        "compile_and_warmup_s": warm_s,
        "seconds_per_call_best": best,
        "seconds_per_call_median": median,
        "steps_per_s_median": k / median,
        "ms_per_step_median": 1e3 * median / k,
        "model_flops_per_s_best": step_flops * k / best,
        "fraction_paired_median": statistics.median(fractions),
        "fraction_paired_max": max(fractions),
        "fraction_paired_rounds": fractions,
        "matmul_flops_per_s_rounds": matmuls,
    }
    print(
        f"{label:8s} {record['steps_per_s_median']:8.1f} steps/s  "
        f"{step_flops / 1e6:8.1f} MFLOP/step  "
        f"{record['model_flops_per_s_best'] / 1e9:6.1f} GFLOP/s  "
        f"{100 * record['fraction_paired_median']:5.1f}% of matmul (paired median)",
        flush=True,
    )
    return record


def main() -> None:
    args = parse_args(__doc__)
    t0 = time.perf_counter()
    prepared = prepare(load_dataset("digits"), dequantize="uniform")
    start_mm = measure_matmul_flops(repeats=3 if args.quick else 10)
    print(f"matmul 1024 f32: {start_mm['flops_per_s_best'] / 1e9:.1f} GFLOP/s", flush=True)
    cases = []
    for label, name, kwargs, batch, k in CASES:
        if args.quick:
            k = 2
        cases.append(run_case(label, name, kwargs, batch, k, prepared, 2 if args.quick else 7))
    summary = {
        c["case"]: {
            "fraction_of_matmul_paired_median": c["fraction_paired_median"],
            "steps_per_s_median": c["steps_per_s_median"],
            "ms_per_step_median": c["ms_per_step_median"],
            "gflop_per_step": c["flops_per_step"] / 1e9,
        }
        for c in cases
    }
    payload = {
        "description": (
            "flow training-step FLOP/s as a fraction of matmul FLOP/s (digits, dequantised)"
        ),
        "quick": args.quick,
        "data": {"dataset": "digits", "dequantize": "uniform"},
        "fraction_definition": (
            "model FLOP/s (cost-analysis FLOPs per step x steps per call / best wall time of "
            "the call in a round) / jitted 1024x1024 f32 matmul FLOP/s (best of 3) of the same "
            "round; the summary is the median over rounds"
        ),
        "matmul_at_start": start_mm,
        "summary": summary,
        "cases": cases,
        "wall_time_s": time.perf_counter() - t0,
    }
    path = write_result("flows_speed_quick" if args.quick else "flows_speed", payload)
    print(f"wall {payload['wall_time_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
