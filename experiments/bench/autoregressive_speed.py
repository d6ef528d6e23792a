"""Sampling and training speed of the autoregressive models, as same-process ratios.

What it measures:

(a) ``transformer``: the causal Transformer's key/value-cached sampler (one ``lax.scan`` of
    single-position steps, O(t) work at step t) against naive sampling that reruns the full
    network at every position (the base class's default ``sample_step``: O(t^2) attention
    per step), both jitted, same model and params, at D = 64 (8x8) and D = 784 (28x28).
    Reported: seconds per batch of samples, the speed-up, and each sampler's time as a
    multiple of one full teacher-forced forward pass (``log_prob``) on the same batch.
(b) ``pixelcnn``: PixelCNN samples/s on 8x8 and 28x28 images (D network passes each).
(c) ``flops``: the training step (loss, gradients, Adam; jitted ``lax.scan`` of K steps on a
    fixed batch of 256 binary 28x28 images) of MADE, NADE and the Transformer as a fraction
    of this process's measured 1024x1024 float32 matmul FLOP/s (XLA cost analysis FLOPs /
    wall time; interleaved with the matmul timing so load affects both alike).

(d) ``nade``: NADE's training step (same scan, batch 256 binary 28x28, H = 256) with the
    blocked pass (``block_size`` 8, 16, 32) against the plain exclusive cumulative sum over all
    D positions followed by the heads (``head(pre_activations(x))``, the pass before the
    blocked one), interleaved in one process: steps/s and the speed-up. (The FLOP fraction
    of (c) counts the blocked pass's extra triangular-matmul FLOPs, so wall time is the
    measure here.)

Goals (from the issue): cached >= 10x faster than naive at D = 784; training step >= 0.6 of
matmul FLOP/s for MADE / NADE / Transformer (as the VAE does).

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/autoregressive_speed.py           # all parts
    python experiments/bench/autoregressive_speed.py --part transformer
    python experiments/bench/autoregressive_speed.py --quick   # smoke run
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from common import (  # noqa: E402
    compiled_flops,
    measure_matmul_flops,
    parse_args,
    time_fn,
    write_result,
)

from genjax_models.autoregressive.base import AutoregressiveModel  # noqa: E402
from genjax_models.data import DataSpec  # noqa: E402
from genjax_models.model import get_model, list_models  # noqa: E402

PARTS = ("transformer", "pixelcnn", "flops", "nade")


def _naive(model: AutoregressiveModel) -> AutoregressiveModel:
    """Return the same model with the base class's recompute-everything sampling step."""
    cls = type(model)
    naive_cls = type(
        f"Naive{cls.__name__}",
        (cls,),
        {
            "sample_state": AutoregressiveModel.sample_state,
            "sample_step": AutoregressiveModel.sample_step,
            "__module__": __name__,
        },
    )
    naive_cls = dataclasses.dataclass(frozen=True)(naive_cls)
    return naive_cls(**{f.name: getattr(model, f.name) for f in dataclasses.fields(model)})


def _plain_cumsum(model: Any) -> Any:
    """Return the same NADE whose ``conditional_outputs`` is the plain cumulative-sum pass."""
    cls = type(model)

    def conditional_outputs(self: Any, params: Any, x: jax.Array, y: Any) -> jax.Array:
        del y
        return self.head(params, self.pre_activations(params, x))

    plain_cls = dataclasses.dataclass(frozen=True)(type(
        f"Plain{cls.__name__}", (cls,),
        {"conditional_outputs": conditional_outputs, "__module__": __name__},
    ))
    return plain_cls(**{f.name: getattr(model, f.name) for f in dataclasses.fields(model)})


def nade_part(quick: bool) -> dict[str, Any]:
    spec = DataSpec((28, 28, 1), "binary", 2)
    x = _binary(28, 256)
    steps, rounds = (2, 1) if quick else (5, 3)
    variants = {"plain-cumsum": _plain_cumsum(get_model("nade", spec))}
    for size in (8, 16, 32):
        variants[f"blocked-{size}"] = get_model("nade", spec, block_size=size)
    runs = {name: _train_scan(model, x, steps) for name, model in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):  # interleaved, so machine load affects every variant alike
        for name, (run, _, params, opt_state) in runs.items():
            t = time_fn(run, params, opt_state, jax.random.key(r), repeats=1,
                        warmup=int(r == 0))["best_s"]
            times[name].append(t / steps)
    plain = statistics.median(times["plain-cumsum"])
    out = {name: {"step_s_median": statistics.median(ts), "steps_per_s":
                  1.0 / statistics.median(ts), "speedup_vs_plain":
                  plain / statistics.median(ts), "step_s_per_round": ts}
           for name, ts in times.items()}
    for name, row in out.items():
        print(f"nade {name}: {row['steps_per_s']:.2f} steps/s, "
              f"{row['speedup_vs_plain']:.2f}x the plain cumulative sum", flush=True)
    return {"batch": 256, "hidden": 256, "steps_per_timing": steps, "variants": out}


def _binary(side: int, num: int) -> jax.Array:
    key = jax.random.key(0)
    return jax.random.bernoulli(key, 0.3, (num, side, side, 1)).astype(jnp.float32)


def transformer_part(quick: bool) -> dict[str, Any]:
    if "ar-transformer" not in list_models():
        return {"skipped": "ar-transformer is not registered in this version"}
    out = {}
    for side in (8, 28):
        spec = DataSpec((side, side, 1), "binary", 2)
        model = get_model("ar-transformer", spec)
        num = 4 if side == 28 else 16
        x = _binary(side, num)
        params = model.init(jax.random.key(0), x)
        cached = jax.jit(lambda key, m=model, p=params, n=num: m.sample(p, key, n))
        naive_model = _naive(model)
        naive = jax.jit(lambda key, m=naive_model, p=params, n=num: m.sample(p, key, n))
        forward = jax.jit(lambda batch, m=model, p=params: m.log_prob(p, batch, None))
        repeats = 1 if quick else 3
        t_cached = time_fn(cached, jax.random.key(1), repeats=repeats)["median_s"]
        t_naive = time_fn(naive, jax.random.key(1), repeats=1 if side == 28 else repeats)
        t_forward = time_fn(forward, x, repeats=5)["median_s"]
        same = bool(jnp.all(cached(jax.random.key(3)) == naive(jax.random.key(3))))
        out[f"D{side * side}"] = {
            "model": {f.name: getattr(model, f.name) for f in dataclasses.fields(model)},
            "batch": num,
            "cached_s": t_cached,
            "naive_s": t_naive["median_s"],
            "speedup": t_naive["median_s"] / t_cached,
            "forward_pass_s": t_forward,
            "cached_over_forward": t_cached / t_forward,
            "naive_over_forward": t_naive["median_s"] / t_forward,
            "identical_samples_same_key": same,
        }
        print(f"transformer D={side * side}: {out[f'D{side * side}']}", flush=True)
    return out


def pixelcnn_part(quick: bool) -> dict[str, Any]:
    out = {}
    for side in (8, 28):
        spec = DataSpec((side, side, 1), "binary", 2)
        model = get_model("pixelcnn", spec)
        num = 16
        params = model.init(jax.random.key(0), _binary(side, num))
        sample = jax.jit(lambda key, m=model, p=params, n=num: m.sample(p, key, n))
        t = time_fn(sample, jax.random.key(1), repeats=1 if quick or side == 28 else 3)
        out[f"{side}x{side}"] = {"batch": num, "seconds": t["median_s"],
                                 "samples_per_s": num / t["median_s"]}
        print(f"pixelcnn {side}x{side}: {out[f'{side}x{side}']}", flush=True)
    return out


def _train_scan(model: Any, x: jax.Array, steps: int):
    params = model.init(jax.random.key(0), x)
    opt = optax.adam(1e-3)

    @jax.jit
    def run(params, opt_state, key):
        def step(carry, k):
            params, opt_state = carry
            grads, _ = jax.grad(model.loss, has_aux=True)(params, x, k)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(
            step, (params, opt_state), jax.random.split(key, steps)
        )
        return params, opt_state

    @jax.jit
    def one(params, opt_state, key):
        grads, _ = jax.grad(model.loss, has_aux=True)(params, x, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return run, one, params, opt.init(params)


def flops_part(quick: bool) -> dict[str, Any]:
    spec = DataSpec((28, 28, 1), "binary", 2)
    x = _binary(28, 256)
    steps = 2 if quick else 10
    rounds = 1 if quick else 3
    out = {}
    for name in ("made", "nade", "ar-transformer"):
        if name not in list_models():
            out[name] = {"skipped": "not registered in this version"}
            continue
        model = get_model(name, spec)
        run, one, params, opt_state = _train_scan(model, x, steps)
        step_flops = compiled_flops(one, params, opt_state, jax.random.key(0))
        ratios, fractions = [], []
        for r in range(rounds):
            matmul = measure_matmul_flops(repeats=3)["flops_per_s_best"]
            t = time_fn(run, params, opt_state, jax.random.key(r), repeats=2)["best_s"]
            model_flops = step_flops * steps / t
            ratios.append(model_flops / matmul)
            fractions.append(model_flops)
        out[name] = {
            "model": {f.name: getattr(model, f.name) for f in dataclasses.fields(model)},
            "batch": 256,
            "flops_per_step": step_flops,
            "model_flops_per_s_median": statistics.median(fractions),
            "fraction_of_matmul_median": statistics.median(ratios),
            "fractions_per_round": ratios,
        }
        print(f"{name}: fraction of matmul FLOP/s {statistics.median(ratios):.2f}", flush=True)
    return out


def main() -> None:
    args = parse_args(__doc__, parts=PARTS)
    parts = PARTS if args.part == "all" else (args.part,)
    t0 = time.perf_counter()
    payload: dict[str, Any] = {"description": __doc__.strip().splitlines()[0],
                               "quick": args.quick}
    for part in parts:
        payload[part] = globals()[f"{part}_part"](args.quick)
    payload["total_wall_s"] = time.perf_counter() - t0
    name = "autoregressive_speed" + ("" if args.part == "all" else f"_{args.part}")
    path = write_result(name + ("_quick" if args.quick else ""), payload)
    print(f"total {payload['total_wall_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
