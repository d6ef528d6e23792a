"""Trained diffusion models: likelihood against a known density, bits/dim and classifier FD.

What it measures (every model trained with ``fit``, evaluated with its EMA parameters):

1. **eight-gaussians** (2-D mixture with an exact density and entropy H, ``dataset.entropy``):
   score-sde (VP), edm and ddpm with the default ScoreMLP (256, 256, 256), batch 256, Adam
   1e-3, 6000 steps, EMA 0.995. Test NLL by the probability-flow ODE with the exact divergence
   (RK4), and NLL - H = KL(p || model) >= 0 (up to the ODE error, the t_min perturbation, see
   ``diffusion/models.py``, and the test sample's own deviation from H, recorded as the exact
   density's test NLL - H); for ddpm also DDPM's variational bound (all 1000 terms). As a check
   of the estimator, the same PF-ODE NLL with the exact mixture denoiser (``oracle``) on VP and
   EDM must match the exact density's test NLL. Sample quality: sliced W2
   between 5000 samples (dpm-solver++ 2M, 50 NFE) and the test split, with the train split as the
   floor.
2. **digits** (8x8, 17 levels) and **mnist5k** (28x28, 256 levels), uniformly dequantised:
   bits/dim of the test split by the PF-ODE with Hutchinson's trace (one Rademacher probe, RK4),
   and, for ddpm, DDPM's variational bound (``ddpm_vlb`` with ``num_samples_t`` sampled steps, an
   unbiased estimate of the full 1000-term bound); both include the dequantisation and [0, 1] ->
   [-1, 1] Jacobians (``eval.nll_in_data_space`` and the model's D log 2). Sample quality: the
   squared Fréchet distance (FID's formula, ``eval.squared_frechet_distance``) between features of
   model samples and of the test split, features = the 128-wide penultimate layer of an MLP
   classifier (D -> 256 -> 128 -> 10, ReLU) trained here on the same data's training split
   (dequantised once; no downloaded weights, nothing cached). The floor is the FD between the
   training split (as many images as samples) and the test split.

EMA note: ``fit``'s EMA starts at the initial parameters without bias correction, so after T
steps the zero-initialised network keeps weight decay^T; 0.999 over 2000 steps (e^-2 = 14%)
visibly biased eps-prediction models (PF-ODE samples off by several units), hence the decays
here are chosen with decay^T < e^-6.

Budget (2 shared CPU cores): U-Nets are small (base width 16, mults (1, 2)) and short runs; on
mnist5k only ``edm`` is trained (batch 32, a few hundred steps) and bits/dim uses a test subset
and few ODE steps: the CPU cannot afford more within ~30 minutes. The settings of each run are
stored with it; these are smoke-scale models, not tuned results.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/diffusion_quality.py           # diffusion_quality.json
    python experiments/bench/diffusion_quality.py --quick   # smoke run (< 1 minute), *_quick.json
"""

from __future__ import annotations

import functools
import math
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
from common import parse_args, write_result  # noqa: E402

from genjax_models.data import (  # noqa: E402
    EIGHT_GAUSSIANS_CENTRES,
    EIGHT_GAUSSIANS_STD,
    load_dataset,
    prepare,
)
from genjax_models.diffusion import get_process, oracle  # noqa: E402
from genjax_models.diffusion.likelihood import ddpm_vlb, pf_ode_log_prob  # noqa: E402
from genjax_models.eval import bits_per_dim, log_prob_batched, nll_in_data_space  # noqa: E402
from genjax_models.eval.sample_metrics import sliced_wasserstein_distance, squared_frechet_distance  # noqa: E402
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import TrainConfig, fit  # noqa: E402

FULL = {
    "toy": {
        "models": [("score-sde", {"sde": "vp"}), ("edm", {}), ("ddpm", {})],
        "steps": 6000,
        "batch": 256,
        "lr": 1e-3,
        "ema": 0.995,
        "num_test": 5000,
        "ode_steps": 100,
        "num_samples": 5000,
        "vlb_steps_sampled": None,
    },
    "digits": {
        "models": [("edm", {}), ("score-sde", {"sde": "vp"}), ("ddpm", {})],
        "network": {"channels": 16, "channel_mult": (1, 2)},
        "steps": 2000,
        "batch": 64,
        "lr": 2e-3,
        "ema": 0.995,
        "num_test": None,
        "ode_steps": 50,
        "num_probes": 1,
        "vlb_steps_sampled": 100,
        "num_samples": None,
        "samplers": [("dpm-solver++", 25, {}), ("heun", 35, {})],
        "classifier_steps": 3000,
    },
    "mnist5k": {
        "models": [("edm", {})],
        "network": {"channels": 16, "channel_mult": (1, 2)},
        "steps": 600,
        "batch": 32,
        "lr": 2e-3,
        "ema": 0.99,
        "num_test": 100,
        "ode_steps": 20,
        "num_probes": 1,
        "vlb_steps_sampled": 50,
        "num_samples": 1000,
        "samplers": [("dpm-solver++", 20, {})],
        "classifier_steps": 3000,
    },
}
QUICK = {
    "toy": {
        **FULL["toy"],
        "models": [("ddpm", {})],
        "steps": 50,
        "ema": 0.9,
        "num_test": 200,
        "ode_steps": 5,
        "num_samples": 200,
        "vlb_steps_sampled": 10,
    },
    "digits": {
        **FULL["digits"],
        "models": [("edm", {})],
        "network": {"network": "mlp", "hidden": (64, 64)},
        "steps": 20,
        "ema": 0.9,
        "num_test": 32,
        "ode_steps": 3,
        "num_samples": 200,
        "samplers": [("dpm-solver++", 10, {})],
        "classifier_steps": 100,
    },
}


# ------------------------------------------------------------------------ training
def train(model, prepared, cfg: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Fit ``model`` and return (EMA params, training record)."""
    config = TrainConfig(
        steps=cfg["steps"],
        batch_size=cfg["batch"],
        lr=cfg["lr"],
        ema_decay=cfg["ema"],
        log_every=max(1, cfg["steps"] // 10),
        checkpoint_every=10**9,
        steps_per_call=min(50, cfg["steps"]),
    )
    t0 = time.perf_counter()
    result = fit(model, prepared, config, progress=False)
    jax.block_until_ready(result.state.params)
    wall = time.perf_counter() - t0
    return result.state.eval_params, {
        "train_config": config.to_dict(),
        "train_wall_s": wall,
        "steps_per_s": cfg["steps"] / wall,
        "final_loss": result.history[-1]["loss"],
        "loss_curve": [(r["step"], r["loss"]) for r in result.history],
    }


def _subset(array: np.ndarray, num: int | None) -> np.ndarray:
    return array if num is None else array[:num]


def nll_report(
    model, params, prepared, data: np.ndarray, key, batch_size: int, **options
) -> dict[str, Any]:
    """Mean NLL (nats), its standard error and bits/dim of ``data`` with ``model.log_prob``."""
    t0 = time.perf_counter()
    log_p = log_prob_batched(model, params, data, key, batch_size=batch_size, **options)
    nll = np.asarray(nll_in_data_space(jnp.asarray(log_p), prepared.spec), np.float64)
    return _summarise_nll(nll, prepared, time.perf_counter() - t0)


def _summarise_nll(nll: np.ndarray, prepared, wall: float) -> dict[str, Any]:
    mean = float(nll.mean())
    return {
        "num_examples": int(nll.size),
        "nll_nats": mean,
        "nll_stderr": float(nll.std(ddof=1) / math.sqrt(nll.size)),
        "bits_per_dim": float(bits_per_dim(mean, prepared.spec)),
        "finite": bool(np.all(np.isfinite(nll))),
        "eval_wall_s": wall,
    }


def vlb_report(
    model, params, prepared, data: np.ndarray, key, batch_size: int, num_samples_t: int | None
):
    """DDPM's bound (``ddpm_vlb``) in data space, with ``num_samples_t`` sampled steps per example.

    Same as ``model.log_prob(..., estimator="vlb")`` (which sums all N steps) but with the unbiased
    sampled-steps estimate of the diffusion term, for speed: log p_x = bound(2 x - 1) + D log 2
    on images (the model's rescaling), plus the dequantisation Jacobian added by the evaluator.
    """
    jacobian = model.num_dims * math.log(2.0) if model.scales_images else 0.0

    @jax.jit
    def bound(params, batch, key):
        y = model.to_model_space(batch)
        return (
            ddpm_vlb(
                model.denoiser(params), model.forward_process, y, key, num_samples_t=num_samples_t
            )[0]
            + jacobian
        )

    t0 = time.perf_counter()
    values = []
    for i, start in enumerate(range(0, data.shape[0], batch_size)):
        chunk = data[start : start + batch_size]
        valid = chunk.shape[0]
        if valid < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - valid, axis=0)])
        values.append(
            np.asarray(bound(params, jnp.asarray(chunk), jax.random.fold_in(key, i)), np.float64)[
                :valid
            ]
        )
    nll = np.asarray(
        nll_in_data_space(jnp.asarray(np.concatenate(values)), prepared.spec), np.float64
    )
    out = _summarise_nll(nll, prepared, time.perf_counter() - t0)
    out["num_samples_t"] = num_samples_t
    return out


def draw_samples(
    model, params, num: int, sampler: str, nfe: int, key, chunk: int = 500, **options
) -> np.ndarray:
    """``num`` samples (data space) in jitted chunks of ``chunk``."""
    fn = jax.jit(
        functools.partial(model.sample, num=min(chunk, num), sampler=sampler, nfe=nfe, **options)
    )
    out, i = [], 0
    while sum(o.shape[0] for o in out) < num:
        out.append(np.asarray(fn(params, jax.random.fold_in(key, i))))
        i += 1
    return np.concatenate(out)[:num]


# ---------------------------------------------------------------------- classifier
class _Classifier(nn.Module):
    """MLP D -> 256 -> 128 -> 10 (ReLU); ``features`` is the 128-wide penultimate layer."""

    @nn.compact
    def __call__(self, x: jax.Array, features: bool = False) -> jax.Array:
        h = x.reshape(x.shape[0], -1)
        h = nn.relu(nn.Dense(256)(h))
        h = nn.relu(nn.Dense(128)(h))
        return h if features else nn.Dense(10)(h)


def train_classifier(train_x, train_y, test_x, test_y, steps: int, seed: int = 0):
    """Train the feature classifier (Adam 1e-3, batch 128); return (feature fn, record)."""
    net = _Classifier()
    params = net.init(jax.random.key(seed), jnp.asarray(train_x[:2]))
    opt = optax.adam(1e-3)
    state = opt.init(params)
    xs, ys = jnp.asarray(train_x), jnp.asarray(train_y)

    @jax.jit
    def step(carry, key):
        params, state = carry
        idx = jax.random.randint(key, (128,), 0, xs.shape[0])

        def loss_fn(p):
            logits = net.apply(p, xs[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, ys[idx]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.key(seed + 1), steps)
    (params, state), losses = jax.lax.scan(step, (params, state), keys)
    predict = jax.jit(lambda x: jnp.argmax(net.apply(params, x), -1))
    accuracy = float(jnp.mean(predict(jnp.asarray(test_x)) == jnp.asarray(test_y)))
    features = jax.jit(lambda x: net.apply(params, x, features=True))
    record = {
        "architecture": "MLP D-256-128-10 ReLU; features: 128-wide penultimate layer",
        "steps": steps,
        "batch": 128,
        "optimizer": "adam 1e-3",
        "final_train_loss": float(losses[-1]),
        "test_accuracy": accuracy,
        "train_wall_s": time.perf_counter() - t0,
    }
    return lambda x: np.asarray(features(jnp.asarray(x, jnp.float32)), np.float64), record


def fd(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FD (squared, FID's formula) between two feature sets."""
    return float(
        squared_frechet_distance(
            jnp.asarray(feats_a, jnp.float32), jnp.asarray(feats_b, jnp.float32)
        )
    )


# --------------------------------------------------------------------------- runs
def _eight_gaussians_mixture() -> oracle.GaussianMixture:
    """eight-gaussians as an oracle mixture (equal weights, isotropic std)."""
    centres = jnp.asarray(EIGHT_GAUSSIANS_CENTRES, jnp.float32)
    num = centres.shape[0]
    covs = jnp.broadcast_to(EIGHT_GAUSSIANS_STD**2 * jnp.eye(2, dtype=jnp.float32), (num, 2, 2))
    return oracle.GaussianMixture(jnp.full((num,), 1.0 / num, jnp.float32), centres, covs)


def toy_runs(cfg: dict[str, Any]) -> dict[str, Any]:
    """eight-gaussians: PF-ODE test NLL - entropy for each model, and sliced W2 of samples."""
    dataset = load_dataset("eight-gaussians")
    prepared = prepare(dataset)
    test = _subset(prepared.test, cfg["num_test"])
    entropy = float(dataset.entropy)
    exact_nll = float(-np.mean(np.asarray(dataset.log_prob(jnp.asarray(test)), np.float64)))
    reference = {
        "exact_density_test_nll": exact_nll,
        "exact_density_test_nll_minus_entropy": exact_nll - entropy,
    }
    mixture = _eight_gaussians_mixture()
    for process_name in ("vp", "edm"):
        process = get_process(process_name)
        denoise = functools.partial(oracle.denoiser, mixture, process)
        solve = jax.jit(
            lambda x, k, denoise=denoise, process=process: pf_ode_log_prob(
                denoise, process, x, k, num_steps=cfg["ode_steps"], method="rk4", divergence="exact"
            )
        )
        # batches of <= 1000: with the oracle denoiser this jit hangs at batch >= 4096
        # (jax 0.10.2 CPU)
        log_p = np.concatenate(
            [
                np.asarray(solve(jnp.asarray(test[i : i + 1000]), jax.random.key(0)))
                for i in range(0, test.shape[0], 1000)
            ]
        )
        reference[f"pf_ode_exact_denoiser_{process_name}_test_nll"] = float(-np.mean(log_p))
    print(
        f"eight-gaussians: H = {entropy:.4f}; exact density test NLL {exact_nll:.4f}; "
        "PF-ODE with the exact denoiser: "
        f"vp {reference['pf_ode_exact_denoiser_vp_test_nll']:.4f}, "
        f"edm {reference['pf_ode_exact_denoiser_edm_test_nll']:.4f}",
        flush=True,
    )
    directions_key = jax.random.key(7)
    floor_sw2 = float(
        sliced_wasserstein_distance(
            prepared.train[: cfg["num_samples"]], test, key=directions_key, num_projections=256
        )
    )
    runs = {}
    for name, extra in cfg["models"]:
        model = get_model(name, prepared.spec, **extra)
        params, record = train(model, prepared, cfg)
        nll = nll_report(
            model,
            params,
            prepared,
            test,
            jax.random.key(11),
            1000,
            trace="exact",
            num_steps=cfg["ode_steps"],
        )
        record["test_nll_pf_ode_exact_trace"] = nll
        record["nll_minus_entropy"] = nll["nll_nats"] - entropy
        record["nll_minus_exact_density_nll"] = nll["nll_nats"] - exact_nll
        if name == "ddpm":
            vlb = vlb_report(
                model, params, prepared, test, jax.random.key(12), 1000, cfg["vlb_steps_sampled"]
            )
            record["test_nll_vlb"] = vlb
            record["vlb_minus_entropy"] = vlb["nll_nats"] - entropy
        samples = draw_samples(
            model,
            params,
            cfg["num_samples"],
            "dpm-solver++",
            50,
            jax.random.key(13),
            chunk=cfg["num_samples"],
        )
        record["sliced_w2_dpm50_vs_test"] = float(
            sliced_wasserstein_distance(samples, test, key=directions_key, num_projections=256)
        )
        record["model_config"] = {
            "name": name,
            **extra,
            "hidden": list(model.hidden),
            "process": model.process,
        }
        runs[name] = record
        print(
            f"eight-gaussians {name:9s} train {record['train_wall_s']:5.1f}s "
            f"loss {record['final_loss']:.3f} | "
            f"NLL {nll['nll_nats']:.4f}+-{nll['nll_stderr']:.4f} - H {entropy:.4f} "
            f"= {record['nll_minus_entropy']:.4f}"
            + (f" | vlb - H = {record['vlb_minus_entropy']:.4f}" if name == "ddpm" else "")
            + f" | SW2 {record['sliced_w2_dpm50_vs_test']:.4f} (floor {floor_sw2:.4f})",
            flush=True,
        )
    return {
        "data": "eight-gaussians",
        "entropy_nats": entropy,
        "num_test": int(test.shape[0]),
        "reference": reference,
        "ode": {"method": "rk4", "steps": cfg["ode_steps"], "trace": "exact"},
        "sliced_w2_floor_train_vs_test": floor_sw2,
        "runs": runs,
    }


def image_runs(data_name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """digits / mnist5k: bits/dim (pf-ode Hutchinson; ddpm vlb) and classifier FD of samples."""
    dataset = load_dataset(data_name)
    prepared = prepare(dataset, dequantize="uniform")
    train_x, test_x = np.asarray(prepared.train_eval), np.asarray(prepared.test)
    feature_fn, classifier = train_classifier(
        train_x, dataset.train_labels, test_x, dataset.test_labels, cfg["classifier_steps"]
    )
    num_samples = cfg["num_samples"] or train_x.shape[0]
    test_feats = feature_fn(test_x)
    floor_idx = np.random.RandomState(0).permutation(train_x.shape[0])[:num_samples]
    floor = fd(feature_fn(train_x[floor_idx]), test_feats)
    print(
        f"{data_name}: classifier test accuracy {classifier['test_accuracy']:.3f}; "
        f"FD floor (train {num_samples} vs test {test_x.shape[0]}) {floor:.3f}",
        flush=True,
    )
    eval_x = _subset(test_x, cfg["num_test"])
    runs = {}
    for name, extra in cfg["models"]:
        model = get_model(name, prepared.spec, **cfg["network"], **extra)
        params, record = train(model, prepared, cfg)
        batch = 50 if data_name == "mnist5k" else 100
        record["test_pf_ode_hutchinson"] = nll_report(
            model,
            params,
            prepared,
            eval_x,
            jax.random.key(21),
            batch,
            trace="hutchinson",
            num_steps=cfg["ode_steps"],
            num_probes=cfg["num_probes"],
        )
        if name == "ddpm":
            record["test_vlb"] = vlb_report(
                model, params, prepared, eval_x, jax.random.key(22), batch, cfg["vlb_steps_sampled"]
            )
        record["fd"] = {}
        for sampler, nfe, options in cfg["samplers"]:
            t0 = time.perf_counter()
            samples = draw_samples(
                model, params, num_samples, sampler, nfe, jax.random.key(23), chunk=250, **options
            )
            value = fd(feature_fn(samples), test_feats)
            record["fd"][f"{sampler}@{nfe}"] = {
                "fd": value,
                "num_samples": num_samples,
                "sample_wall_s": time.perf_counter() - t0,
            }
        record["model_config"] = {
            "name": name,
            **extra,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in cfg["network"].items()},
            "process": model.process,
        }
        runs[name] = record
        nll = record["test_pf_ode_hutchinson"]
        line = (
            f"{data_name} {name:9s} train {record['train_wall_s']:6.1f}s "
            f"loss {record['final_loss']:.4f} | "
            f"pf-ode {nll['bits_per_dim']:.3f} bits/dim ({nll['eval_wall_s']:.0f}s)"
        )
        if name == "ddpm":
            line += f" | vlb {record['test_vlb']['bits_per_dim']:.3f} bits/dim"
        line += (
            " | FD "
            + ", ".join(f"{k} {v['fd']:.2f}" for k, v in record["fd"].items())
            + f" (floor {floor:.2f})"
        )
        print(line, flush=True)
    return {
        "data": data_name,
        "preprocessing": prepared.preprocessing,
        "num_train": int(train_x.shape[0]),
        "num_test": int(test_x.shape[0]),
        "num_test_evaluated": int(eval_x.shape[0]),
        "likelihood_settings": {
            "ode_method": "rk4",
            "ode_steps": cfg["ode_steps"],
            "trace": "hutchinson",
            "num_probes": cfg["num_probes"],
            "vlb_num_samples_t": cfg["vlb_steps_sampled"],
        },
        "classifier": classifier,
        "fd_floor_train_vs_test": floor,
        "fd_num_samples": int(num_samples),
        "runs": runs,
    }


def main() -> None:
    args = parse_args(__doc__)
    plan = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    results = {"eight-gaussians": toy_runs(plan["toy"])}
    for data_name in ("digits", "mnist5k"):
        if data_name in plan:
            results[data_name] = image_runs(data_name, plan[data_name])
    summary: dict[str, Any] = {
        "eight_gaussians_nll_minus_entropy": {
            n: r["nll_minus_entropy"] for n, r in results["eight-gaussians"]["runs"].items()
        },
        "eight_gaussians_nll_minus_exact_density_nll": {
            n: r["nll_minus_exact_density_nll"]
            for n, r in results["eight-gaussians"]["runs"].items()
        },
        "eight_gaussians_reference": results["eight-gaussians"]["reference"],
    }
    for data_name in ("digits", "mnist5k"):
        if data_name not in results:
            continue
        res = results[data_name]
        summary[data_name] = {
            "fd_floor": res["fd_floor_train_vs_test"],
            "classifier_test_accuracy": res["classifier"]["test_accuracy"],
            **{
                n: {
                    "pf_ode_bits_per_dim": r["test_pf_ode_hutchinson"]["bits_per_dim"],
                    **(
                        {"vlb_bits_per_dim": r["test_vlb"]["bits_per_dim"]}
                        if "test_vlb" in r
                        else {}
                    ),
                    "fd": {k: v["fd"] for k, v in r["fd"].items()},
                    "train_steps": r["train_config"]["steps"],
                }
                for n, r in res["runs"].items()
            },
        }
    payload = {
        "description": (
            "diffusion models: PF-ODE NLL - entropy on eight-gaussians; "
            "bits/dim and classifier FD on digits / mnist5k"
        ),
        "quick": args.quick,
        "note": (
            "small networks and short CPU runs (see the settings of each run); not tuned results"
        ),
        "summary": summary,
        "results": results,
        "total_wall_s": time.perf_counter() - t0,
    }
    path = write_result("diffusion_quality_quick" if args.quick else "diffusion_quality", payload)
    print(f"total {payload['total_wall_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
