"""Training throughput of the diffusion models as a fraction of this process's matmul FLOP/s.

What it measures: the jitted training call that ``fit`` runs (``make_update`` +
``make_train_step``: batch gather, uniform dequantisation where the data need it, the model's
loss, gradients, Adam and an EMA update, ``lax.scan`` over K steps per call). Model FLOP/s =
(XLA cost-analysis FLOPs of one step x K) / wall time of the K-step call, divided by the FLOP/s of
a jitted 1024x1024 float32 matmul measured in the same process. As in ``latent_speed.py`` the two
are measured in interleaved rounds (matmul best-of-3, then the model's best call) because the 2
cores are shared and load drifts; the summary is the median over rounds of the per-round ratio.

Cases:

- MLP on 2-D (eight-gaussians): score-sde (VP, DSM), edm and ddpm with the default ScoreMLP
  (256, 256, 256) at batch 256, and score-sde at batch 2048 (larger matmuls);
- U-Net on digits (8x8x1, dequantised): edm and ddpm with the default U-Net (base width 32,
  mults (1, 2)) at batch 64 (the models' default training batch), and edm at batch 256;
- reference point: a plain Flax MLP regression step of the same widths (2 -> 256 x 3 -> 2,
  MSE, Adam) at batch 256, run the same way.

Run (from the repo root):
    python experiments/bench/diffusion_speed.py           # experiments/results/diffusion_speed.json
    python experiments/bench/diffusion_speed.py --quick   # smoke run, diffusion_speed_quick.json
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from common import compiled_flops, measure_matmul_flops, parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare
from genjax_models.data.batching import batch_indices_from_orders, epoch_orders, epochs_spanned  # noqa: E402
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import (  # noqa: E402
    TrainConfig,
    init_state,
    make_optimizer,
    make_train_step,
    make_update,
)
from genjax_models.train.fit import run_key  # noqa: E402

# (label, model, data, model kwargs, batch, steps per call)
CASES = [
    ("score-sde_vp_mlp_2d_b256", "score-sde", "eight-gaussians", {"sde": "vp"}, 256, 50),
    ("edm_mlp_2d_b256", "edm", "eight-gaussians", {}, 256, 50),
    ("ddpm_mlp_2d_b256", "ddpm", "eight-gaussians", {}, 256, 50),
    ("score-sde_vp_mlp_2d_b2048", "score-sde", "eight-gaussians", {"sde": "vp"}, 2048, 10),
    ("edm_unet_digits_b64", "edm", "digits", {}, 64, 5),
    ("ddpm_unet_digits_b64", "ddpm", "digits", {}, 64, 5),
    ("edm_unet_digits_b256", "edm", "digits", {}, 256, 2),
]
QUICK_CASES = ["score-sde_vp_mlp_2d_b256", "edm_unet_digits_b64"]


def _prepared(data_name: str):
    dataset = load_dataset(data_name)
    return (
        prepare(dataset) if dataset.num_levels is None else prepare(dataset, dequantize="uniform")
    )


def _time_donating(step, state, data, key, calls: int) -> tuple[Any, list[float]]:
    """Time ``calls`` chained calls of a state-donating step; return (state, seconds per call)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        state, metrics = step(state, data, key)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    return state, times


def _paired(
    step, state, data, key, rounds: int, calls: int, flops_per_call: float
) -> dict[str, Any]:
    """Interleave matmul and model timings; return times, per-round matmul FLOP/s and fractions."""
    state, _ = _time_donating(step, state, data, key, 2)  # compile + warm up
    times, matmuls, fractions = [], [], []
    for _ in range(rounds):
        mm = measure_matmul_flops(repeats=3)["flops_per_s_best"]
        state, t = _time_donating(step, state, data, key, calls)
        times += t
        matmuls.append(mm)
        fractions.append(flops_per_call / min(t) / mm)
    return {"times": times, "matmuls": matmuls, "fractions": fractions}


def _summarise(
    label: str, step_flops: float, steps_per_call: int, batch: int, paired: dict[str, Any]
) -> dict[str, Any]:
    best, median = min(paired["times"]), float(np.median(paired["times"]))
    flops_call = step_flops * steps_per_call
    return {
        "case": label,
        "batch_size": batch,
        "steps_per_call": steps_per_call,
        "flops_per_step": step_flops,
        "seconds_per_call_best": best,
        "steps_per_s_best": steps_per_call / best,
        "steps_per_s_median": steps_per_call / median,
        "examples_per_s_best": batch * steps_per_call / best,
        "model_flops_per_s_best": flops_call / best,
        "fraction_paired_median": float(np.median(paired["fractions"])),
        "fraction_paired_max": float(np.max(paired["fractions"])),
        "fraction_paired_rounds": paired["fractions"],
        "matmul_flops_per_s_rounds": paired["matmuls"],
    }


def model_case(
    label, model_name, data_name, kwargs, batch, steps_per_call, rounds, calls
) -> dict[str, Any]:
    """One diffusion model's training call, as ``fit`` runs it."""
    prepared = _prepared(data_name)
    model = get_model(model_name, prepared.spec, **kwargs)
    config = TrainConfig(batch_size=batch, lr=1e-3, ema_decay=0.999)
    update = make_update(
        model,
        make_optimizer(config),
        batch_size=batch,
        train_transform=prepared.train_transform,
        ema_decay=config.ema_decay,
    )
    state = init_state(model, prepared, config)
    data = jnp.asarray(prepared.train)
    key = run_key(config)
    step_flops = compiled_flops(jax.jit(update), state, data, key)
    step = make_train_step(update, steps_per_call, batch_size=batch)
    paired = _paired(step, state, data, key, rounds, calls, step_flops * steps_per_call)
    out = _summarise(label, step_flops, steps_per_call, batch, paired)
    out["model"] = {
        "name": model.name,
        "process": model.process,
        "objective": model.objective,
        "network": "unet" if len(model.event_shape) == 3 else "mlp",
        "hidden": list(model.hidden),
        "channels": model.channels,
        "channel_mult": list(model.channel_mult),
        "num_params": int(sum(x.size for x in jax.tree.leaves(state.params))),
    }
    out["data"] = {"dataset": data_name, "preprocessing": prepared.preprocessing}
    return out


class _RegressionMLP(nn.Module):
    widths: tuple[int, ...]
    out_dim: int

    @nn.compact
    def __call__(self, x):
        for w in self.widths:
            x = nn.silu(nn.Dense(w)(x))
        return nn.Dense(self.out_dim)(x)


def plain_mlp_case(batch: int, steps_per_call: int, rounds: int, calls: int) -> dict[str, Any]:
    """A plain Flax MLP regression step (2 -> 256 x 3 -> 2, MSE, Adam).

    Gathered and scanned alike.
    """
    prepared = _prepared("eight-gaussians")
    net = _RegressionMLP((256, 256, 256), 2)
    optimizer = optax.adam(1e-3)
    data = jnp.asarray(prepared.train)
    params = net.init(jax.random.key(0), data[:batch])
    state = (jnp.zeros((), jnp.int32), params, optimizer.init(params))
    key = jax.random.key(1)

    def update(state, data, key, orders):
        step, params, opt_state = state
        x = data[batch_indices_from_orders(orders[1], orders[0], step, batch)]
        noisy = x + 0.1 * jax.random.normal(jax.random.fold_in(key, step), x.shape, x.dtype)

        def loss_fn(p):
            return jnp.mean((net.apply(p, noisy) - x) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (step + 1, optax.apply_updates(params, updates), opt_state), {"loss": loss}

    # As the trainer does: the permutations of the epochs this call spans are drawn once per
    # call (one sort of N per epoch), not once per step.
    spanned = epochs_spanned(steps_per_call, data.shape[0], batch)

    def many(state, data, key):
        first_epoch = state[0] // (data.shape[0] // batch)
        orders = (first_epoch, epoch_orders(key, first_epoch, spanned, data.shape[0]))
        return jax.lax.scan(
            lambda c, _: update(c, data, key, orders), state, None, length=steps_per_call
        )

    step = jax.jit(many, donate_argnums=0)
    step_flops = compiled_flops(
        jax.jit(update), state, data, key, (0, epoch_orders(key, 0, spanned, data.shape[0]))
    )
    paired = _paired(step, state, data, key, rounds, calls, step_flops * steps_per_call)
    out = _summarise("plain_flax_mlp_regression_2d_b256", step_flops, steps_per_call, batch, paired)
    out["model"] = {
        "widths": [2, 256, 256, 256, 2],
        "activation": "silu",
        "loss": "mse",
        "optimizer": "adam",
    }
    return out


def main() -> None:
    args = parse_args(__doc__)
    quick = args.quick
    t0 = time.perf_counter()
    matmul_start = measure_matmul_flops(repeats=3 if quick else 10)
    print(f"matmul 1024 f32: {matmul_start['flops_per_s_best'] / 1e9:.1f} GFLOP/s", flush=True)
    rounds, calls = (2, 2) if quick else (5, 3)
    cases = []
    for label, model_name, data_name, kwargs, batch, k in CASES:
        if quick and label not in QUICK_CASES:
            continue
        cases.append(
            model_case(
                label, model_name, data_name, kwargs, batch, 2 if quick else k, rounds, calls
            )
        )
        c = cases[-1]
        print(
            f"{label:28s} {c['steps_per_s_median']:8.1f} steps/s  "
            f"{c['model_flops_per_s_best'] / 1e9:6.2f} GFLOP/s  "
            f"{100 * c['fraction_paired_median']:5.1f}% of matmul (paired median)",
            flush=True,
        )
    cases.append(plain_mlp_case(256, 2 if quick else 50, rounds, calls))
    c = cases[-1]
    print(
        f"{'plain Flax MLP (reference)':28s} {c['steps_per_s_median']:8.1f} steps/s  "
        f"{c['model_flops_per_s_best'] / 1e9:6.2f} GFLOP/s  "
        f"{100 * c['fraction_paired_median']:5.1f}% of matmul",
        flush=True,
    )
    summary = {
        c["case"]: {
            "fraction_of_matmul_paired_median": c["fraction_paired_median"],
            "steps_per_s_median": c["steps_per_s_median"],
            "examples_per_s_best": c["examples_per_s_best"],
            "flops_per_step": c["flops_per_step"],
        }
        for c in cases
    }
    payload = {
        "description": (
            "diffusion training step (loss + grad + Adam + EMA) FLOP/s "
            "as a fraction of matmul FLOP/s"
        ),
        "quick": quick,
        "fraction_definition": (
            "model FLOP/s (cost-analysis FLOPs per step x steps per call / "
            "best wall time of the call) / "
            "jitted 1024x1024 f32 matmul FLOP/s, measured in interleaved rounds; median over rounds"
        ),
        "matmul_start": matmul_start,
        "summary": summary,
        "cases": cases,
        "wall_time_s": time.perf_counter() - t0,
    }
    path = write_result("diffusion_speed_quick" if quick else "diffusion_speed", payload)
    print(f"total {payload['wall_time_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
