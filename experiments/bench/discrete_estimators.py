"""Gradient estimators for discrete latents, in the style of Jang et al. (2017), on mnist5k.

What it measures: the categorical VAE of experiments/configs/categorical_vae_mnist5k.py (20
latents x 10 classes, uniform prior, MLP 784-512-256 encoder and its mirror decoder, Bernoulli
likelihood, dynamic binarisation, Adam 1e-3, batch 100, 3000 steps, seed 0) trained once per
estimator: ``reinforce`` (SF), ``reinforce-moving-average`` (SF + batch-mean baseline),
``reinforce-learned`` (SF + NVIL-style learned baseline), ``reinforce-loo`` (k = 5,
leave-one-out baselines), ``vimco`` (k = 5, trains the IWAE-5 bound), ``straight-through``,
``gumbel-softmax`` and ``st-gumbel`` (tau = 1). Each is evaluated on the 1000 test images (one
fixed binarisation): the negative ELBO (k = 1) and the IWAE-1000 bound on -log p(x).

Then, at fixed parameters (the gumbel-softmax model after training; for ``reinforce-learned``
its baseline network is first fitted for 500 steps at those parameters, nothing else moving)
and on one fixed batch of 100 training images, each estimator's gradient of its loss with
respect to the encoder's parameters is drawn with 500 independent keys. Reported: the total
variance tr Cov(g) (summed over the encoder's parameters), the norm of the mean gradient, and
the mean gradient's cosine with and relative distance from a reference: the ELBO gradient
estimated by ``reinforce-loo`` with 4000 keys (unbiased). The relaxed and straight-through
estimators differentiate another objective or a biased surrogate; ``vimco`` the IWAE-5 bound,
not the ELBO: their distance from the reference is bias plus noise (the noise floor, the
distance expected from noise alone, is reported beside it).

Published reference (Jang et al. 2017, binarised full MNIST, as quoted in shared/REFERENCE.md):
-ELBO 101.5 for Gumbel-softmax against 110.6 for the score function. mnist5k has 4000
training images and this run 3000 steps, so the figures here compare with those in their
order and gap, not in absolute value.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/discrete_estimators.py           # discrete_estimators.json (~12 min)
    python experiments/bench/discrete_estimators.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from common import fit_timed, parse_args, write_result  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

ESTIMATORS = (
    "reinforce",
    "reinforce-moving-average",
    "reinforce-learned",
    "reinforce-loo",
    "vimco",
    "straight-through",
    "gumbel-softmax",
    "st-gumbel",
)
REFERENCE = "reinforce-loo"
TARGET = {"vimco": "IWAE-5 bound", "gumbel-softmax": "relaxed ELBO"}


def encoder_gradient_moments(model, params, batch, key, draws: int, chunk: int = 100):
    """Return the mean ``[P]`` and the total variance tr Cov of the flattened encoder gradient
    of ``model.loss`` over ``draws`` keys, accumulated chunk by chunk in float64 (the draws of
    a ~6e5-parameter encoder do not fit in memory at once)."""

    def one(k):
        grads = jax.grad(lambda p: model.loss(p, batch, k)[0])(params)
        return ravel_pytree(grads["encoder"])[0]

    batched = jax.jit(jax.vmap(one))
    keys = jax.random.split(key, draws)
    total = total_sq = 0.0
    for start in range(0, draws, chunk):
        g = np.asarray(batched(keys[start:start + chunk]), dtype=np.float64)
        total = total + g.sum(0)
        total_sq = total_sq + np.square(g).sum(0)
    mean = total / draws
    variance = (total_sq - draws * np.square(mean)) / (draws - 1)
    return mean, float(np.sum(variance))


def fit_baseline(model, params, batch, key, steps: int):
    """Fit only ``params["baseline"]`` of a reinforce-learned model (Adam 1e-3) at fixed
    encoder / decoder; returns the parameters and the final regression loss."""
    opt = optax.adam(1e-3)

    def loss_of_baseline(baseline, k):
        return model.loss({**params, "baseline": baseline}, batch, k)

    @jax.jit
    def step(carry, k):
        baseline, state = carry
        grads, metrics = jax.grad(loss_of_baseline, has_aux=True)(baseline, k)
        updates, state = opt.update(grads, state)
        return (optax.apply_updates(baseline, updates), state), metrics["baseline_loss"]

    carry = (params["baseline"], opt.init(params["baseline"]))
    carry, losses = jax.lax.scan(step, carry, jax.random.split(key, steps))
    return {**params, "baseline": carry[0]}, float(losses[-1])


def main() -> None:
    args = parse_args(__doc__)
    steps, k_eval, draws, ref_draws, baseline_steps = (
        (30, 10, 20, 40, 20) if args.quick else (3000, 1000, 500, 4000, 500)
    )
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    runs, trained = {}, {}
    for name in ESTIMATORS:
        model = get_model("categorical-vae", prepared.spec, estimator=name)
        _, params, train_s = fit_timed(model, prepared, steps, batch_size=100)
        trained[name] = (model, params)
        iwae = evaluate(model, params, prepared, key=jax.random.key(123), num_samples=k_eval)
        elbo = evaluate(model, params, prepared, key=jax.random.key(124), num_samples=1)
        runs[name] = {
            "train_samples": model.train_samples,
            "test_neg_elbo_nats": elbo["nll_nats"],
            "test_nll_iwae_nats": iwae["nll_nats"],
            "test_nll_iwae_stderr": iwae["nll_stderr"],
            "estimator_eval": iwae["estimator"],
            "train_wall_s": train_s,
            "steps_per_sec": steps / train_s,
        }
        print(f"{name:25s} -ELBO {elbo['nll_nats']:7.2f}  IWAE-{k_eval} {iwae['nll_nats']:7.2f}"
              f" +- {iwae['nll_stderr']:.2f}  train {train_s:.0f}s", flush=True)

    # gradient variance at fixed parameters: the trained gumbel-softmax model
    _, fixed = trained["gumbel-softmax"]
    rng = np.random.default_rng(0)
    rows = rng.choice(prepared.train.shape[0], 100, replace=False)
    batch = jax.random.bernoulli(jax.random.key(5), jnp.asarray(prepared.train[rows])).astype(
        jnp.float32)
    ref_model = get_model("categorical-vae", prepared.spec, estimator=REFERENCE)
    ref, _ = encoder_gradient_moments(ref_model, fixed, batch, jax.random.key(9), ref_draws)
    ref_norm = float(np.linalg.norm(ref))
    variance = {}
    for name in ESTIMATORS:
        model = get_model("categorical-vae", prepared.spec, estimator=name)
        params = {k: v for k, v in fixed.items() if k in ("encoder", "decoder")}
        extra = {}
        if name == "reinforce-learned":
            init = model.init(jax.random.key(0), batch)
            params, extra["baseline_final_regression_loss"] = fit_baseline(
                model, {**params, "baseline": init["baseline"]}, batch, jax.random.key(3),
                baseline_steps)
        mean, total_var = encoder_gradient_moments(model, params, batch, jax.random.key(11),
                                                   draws)
        variance[name] = {
            "draws": draws,
            "total_variance": total_var,
            "log10_total_variance": float(np.log10(total_var)),
            "mean_gradient_norm": float(np.linalg.norm(mean)),
            "cosine_to_reference": float(mean @ ref / (np.linalg.norm(mean) * ref_norm)),
            "relative_distance_to_reference": float(np.linalg.norm(mean - ref) / ref_norm),
            "noise_floor_relative_distance": float(np.sqrt(total_var / draws) / ref_norm),
            "objective": TARGET.get(name, "ELBO"),
            **extra,
        }
        v = variance[name]
        print(f"{name:25s} log10 tr Cov {v['log10_total_variance']:6.2f}  cos(ref) "
              f"{v['cosine_to_reference']:.3f}  |mean-ref|/|ref| "
              f"{v['relative_distance_to_reference']:.3f} "
              f"(noise {v['noise_floor_relative_distance']:.3f})", flush=True)

    payload = {
        "description": "categorical VAE on mnist5k: test -ELBO / IWAE per gradient estimator, "
                       "and the estimators' gradient variance at fixed parameters",
        "quick": args.quick,
        "train_config": {"steps": steps, "batch_size": 100, "lr": 1e-3, "seed": 0},
        "eval_num_samples": k_eval,
        "runs": runs,
        "gradient_variance": {
            "parameters": "gumbel-softmax model after training",
            "batch": "100 training images, one fixed binarisation",
            "wrt": "encoder parameters (flattened)",
            "reference": f"{REFERENCE} mean over {ref_draws} keys (unbiased ELBO gradient)",
            "reference_norm": ref_norm,
            "estimators": variance,
        },
        "published_full_mnist_neg_elbo": {"gumbel-softmax": 101.5, "score-function": 110.6,
                                          "source": "Jang et al. 2017 (shared/REFERENCE.md)"},
    }
    print("wrote", write_result("discrete_estimators_quick" if args.quick
                                else "discrete_estimators", payload))


if __name__ == "__main__":
    main()
