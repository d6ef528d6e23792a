"""The discrete VAEs against exact enumeration of their tiny latent spaces.

Tiny models (categorical: N = 2 variables x K = 3 classes, 9 latents; Bernoulli: N = 3, 8
latents; D = 4 binary pixels) in float64:

- for every estimator, the mean of many loss draws equals the enumerated negative ELBO (or the
  negative enumerated E[L_k] for VIMCO) within 4 standard errors, and for the unbiased
  estimators the mean gradient equals the exact gradient of that objective;
- the IWAE-k ``log_prob`` lies below the enumerated log p(x) and tightens with k = 1, 10, 100.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import DataSpec
from genjax_models.discrete import (
    ESTIMATORS,
    categorical_kl_uniform,
    categorical_log_prob,
    categorical_log_weights,
    enumerate_one_hot,
    iwae_objective,
)
from genjax_models.errors import ConfigError, UnknownNameError
from genjax_models.model import get_model
from tests.x64 import float64

SPEC = DataSpec((4,), "binary", 2)
X = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])  # float64
DRAWS = 4000


def _model(name: str = "categorical-vae", **overrides):
    sizes = {"num_latents": 2, "num_classes": 3} if name == "categorical-vae" else {}
    sizes = {"num_latents": 3} if name == "bernoulli-vae" else sizes
    return get_model(name, SPEC, hidden=(8,), baseline_hidden=(4,), **sizes, **overrides)


@functools.cache
def _base_params(name: str):
    with float64():
        params = jax.jit(_model(name).init)(jax.random.key(0), X)
        # A sharper decoder than at initialisation, so that the posterior is far from q; the
        # encoder stays as initialised (a near-deterministic q would make REINFORCE's rare
        # large terms unobservable in a few thousand draws, and the standard errors unreliable).
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        return {**params, "decoder": jax.tree.map(lambda p: 3.0 * p, params["decoder"])}


def _params(model):
    """The same encoder / decoder for every estimator (+ the learned baseline's network)."""
    params = dict(_base_params(model.name))
    if model.estimator == "reinforce-learned":
        net = model.baseline_net().init(jax.random.key(5), model.flatten(X))["params"]
        params["baseline"] = jax.tree.map(lambda p: p.astype(jnp.float64), net)
    return params


def _exact_iwae(model, params, k: int) -> jax.Array:
    """E[L_k] by enumerating every k-tuple of latents, mean over the batch."""
    x = model.flatten(X)
    configs = enumerate_one_hot(model.num_latents, model.num_classes)
    log_q = categorical_log_prob(model.encode(params, x)[:, None], configs[None])  # [B, S]
    z = jnp.broadcast_to(configs[:, None], (configs.shape[0], x.shape[0], *configs.shape[1:]))
    log_joint = jax.vmap(lambda zz: model.log_joint(params, x, zz))(z).T  # [B, S]
    tuples = jnp.asarray(list(itertools.product(range(configs.shape[0]), repeat=k)))
    log_w = (log_joint - log_q)[:, tuples]  # [B, T, k]
    prob = jnp.exp(jnp.sum(log_q[:, tuples], axis=-1))
    return jnp.mean(jnp.sum(prob * iwae_objective(log_w, axis=-1), axis=-1))


@functools.cache
def _exact_objective(vimco: bool) -> tuple[float, dict]:
    """The enumerated objective (-ELBO, or -E[L_2] for VIMCO) and its exact gradient."""
    with float64():
        model = _model()
        params = _params(model)
        if vimco:
            objective = lambda p: -_exact_iwae(model, p, 2)  # noqa: E731
        else:
            objective = lambda p: -jnp.mean(model.exact_elbo(p, X))  # noqa: E731
        return jax.jit(jax.value_and_grad(objective))(params)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_loss_expectation_and_gradient_match_enumeration(estimator):
    with float64():
        extra = {"num_importance": 2} if ESTIMATORS[estimator].multi_sample else {}
        model = _model(estimator=estimator, temperature=0.5, **extra)
        params = _params(model)
        exact_value, exact_grad = _exact_objective(estimator == "vimco")

        def one(key):
            (loss, metrics), grad = jax.value_and_grad(model.loss, has_aux=True)(params, X, key)
            return loss, metrics, grad

        keys = jax.random.split(jax.random.key(1), DRAWS)
        losses, metrics, grads = jax.jit(jax.vmap(one))(keys)
        # The analytic KL term is exact.
        kl = categorical_kl_uniform(model.encode(params, model.flatten(X)))
        np.testing.assert_allclose(metrics["kl"][0], jnp.mean(kl), rtol=1e-12)
        # The loss (the relaxed objective for gumbel-softmax: use its discrete elbo metric)
        # has the enumerated objective as its expectation.
        value = -metrics["elbo"] if estimator == "gumbel-softmax" else losses
        se = float(value.std()) / math.sqrt(DRAWS)
        assert abs(float(value.mean()) - float(exact_value)) < 4 * se + 1e-12
        assert se < 0.05  # the check has power: measured 0.015-0.023 nats
        if ESTIMATORS[estimator].unbiased:
            for part in ("encoder", "decoder"):
                g = np.concatenate([a.reshape(DRAWS, -1) for a in jax.tree.leaves(grads[part])], 1)
                e = np.concatenate([a.ravel() for a in jax.tree.leaves(exact_grad[part])])
                se_g = g.std(0, ddof=1) / math.sqrt(DRAWS)
                assert np.all(np.abs(g.mean(0) - e) < 4.5 * se_g + 1e-10), part
        else:  # biased: the encoder's mean gradient is measurably off
            g = np.concatenate([a.reshape(DRAWS, -1) for a in jax.tree.leaves(grads["encoder"])], 1)
            e = np.concatenate([a.ravel() for a in jax.tree.leaves(exact_grad["encoder"])])
            se_g = g.std(0, ddof=1) / math.sqrt(DRAWS)
            assert np.max(np.abs(g.mean(0) - e) / (se_g + 1e-12)) > 6  # measured: 25 to 55


@pytest.mark.parametrize("name", ["categorical-vae", "bernoulli-vae"])
def test_iwae_bounds_the_enumerated_log_marginal_and_tightens_with_k(name):
    with float64():
        model = _model(name)
        params = _params(model)
        exact = np.asarray(jax.jit(model.exact_log_marginal)(params, X))  # [B]
        elbo = np.asarray(jax.jit(model.exact_elbo)(params, X))
        assert np.all(elbo < exact - 0.5)  # q is far from the posterior: gaps 0.96 to 5.1
        x = model.flatten(X)

        def bounds(key):
            # Sample i uses fold_in(key, i) in log_prob too, so L_1 and L_10 are its prefixes.
            log_w = categorical_log_weights(
                key, x, model.encode(params, x), lambda xx, z: model.log_joint(params, xx, z), 100
            )
            return jnp.stack([iwae_objective(log_w[:k]) for k in (1, 10, 100)])

        keys = jax.random.split(jax.random.key(2), 2000)
        est = np.asarray(jax.jit(jax.vmap(bounds))(keys))  # [2000, 3, B]
        if name == "categorical-vae":  # log_prob, chunked, draws the same samples
            log_p = jax.jit(lambda k: model.log_prob(params, X, k, num_samples=100, chunk_size=30))
            np.testing.assert_allclose(log_p(keys[0]), est[0, 2], rtol=1e-10)
        means, ses = est.mean(0), est.std(0) / math.sqrt(est.shape[0])  # [3, B]
        # k = 1 is the ELBO in expectation; every bound sits below log p(x); tighter with k
        # (paired differences over the same draws; measured per example: L_10 - L_1 = 0.8 to
        # 5.0 nats, L_100 - L_10 = 0.08 to 0.18 nats, both models).
        assert np.all(np.abs(means[0] - elbo) < 4 * ses[0])
        assert np.all(means < exact + 4 * ses)
        for lo, hi in ((0, 1), (1, 2)):
            diff = est[:, hi] - est[:, lo]
            assert np.all(diff.mean(0) > 4 * diff.std(0) / math.sqrt(diff.shape[0]))
        assert np.all(exact - means[2] < 0.05)  # measured: at most 0.014 nats
        info = model.describe_log_prob(num_samples=100)
        assert (info.kind, info.estimator) == ("lower-bound", "iwae-100")
        assert model.describe_log_prob(num_samples=1).estimator == "elbo"


def test_configuration_errors_name_the_fix():
    with pytest.raises(UnknownNameError, match="unknown estimator 'sf'; choose one of"):
        _model(estimator="sf")
    with pytest.raises(ConfigError, match="num_importance >= 2"):
        _model(estimator="vimco", num_importance=1)
    assert _model(estimator="vimco").train_samples == 5
    with pytest.raises(ConfigError, match="not binary"):
        get_model("categorical-vae", DataSpec((4,), "continuous"))
    with pytest.raises(ConfigError, match="too many"):
        get_model("categorical-vae", SPEC).exact_elbo(None, X)
    assert get_model("categorical-vae", SPEC, estimator="st-gumbel").estimator == "st-gumbel"


def test_annealed_temperature_follows_the_trainer_step():
    """tau(step) = max(min, tau0 exp(-r step)) reaches the loss through the trainer, and resumes."""
    import optax

    from genjax_models.discrete import temperature_schedule
    from genjax_models.train.state import TrainState
    from genjax_models.train.step import make_train_step, make_update

    model = _model(temperature=2.0, temperature_min=0.5, anneal_rate=0.3)
    x = np.tile(X, (4, 1)).astype(np.float32)
    optimizer = optax.adam(1e-3)
    state = TrainState.create(model.init(jax.random.key(0), x), optimizer)
    step = make_train_step(make_update(model, optimizer, batch_size=4), 3, batch_size=4)
    expected = [float(temperature_schedule(t, 2.0, 0.5, 0.3)) for t in range(6)]
    state, first = step(state, x, jax.random.key(1))
    _, second = step(state, x, jax.random.key(1))
    got = np.concatenate([first["temperature"], second["temperature"]])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert expected[-1] == 0.5 and expected[1] > 1.0  # the floor is reached at step 5
    assert float(model.temperature_at(None)) == 0.5  # no step: the schedule's end point
    fixed = _model(temperature=0.7)  # no floor: tau stays fixed
    _, metrics = fixed.loss(fixed.init(jax.random.key(0), x), x, jax.random.key(0), step=9)
    assert float(metrics["temperature"]) == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="temperature_min must lie in"):
        _model(temperature=1.0, temperature_min=2.0)
    with pytest.raises(ConfigError, match="anneal_rate"):
        _model(temperature_min=0.5, anneal_rate=-1.0)
