"""Glow on dequantised 8x8 digits: shapes, exact log-density, ActNorm data-dependent init."""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import load_dataset, prepare
from genjax_models.flows.actnorm import ActNorm
from genjax_models.flows.models.base import layer_params, standard_normal_log_prob
from genjax_models.flows.squeeze import squeeze
from genjax_models.model import get_model
from tests.x64 import float64

DIGITS = prepare(load_dataset("digits"), dequantize="uniform")


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


@pytest.fixture(scope="module")
def glow():
    with float64():
        model = get_model("glow", DIGITS.spec, steps_per_scale=2, hidden_channels=8)
        batch = jnp.asarray(DIGITS.test[:32], jnp.float64)
        params = model.init(jax.random.key(0), batch)
    return model, params, batch


def test_from_spec_defaults_for_digits(glow):
    model, _, _ = glow
    assert model.event_shape == (8, 8, 1) and model.num_scales == 2
    assert model.preprocess == "logit"
    assert model.level_shapes() == [(4, 4, 4), (2, 2, 8)]
    assert model.describe_log_prob().kind == "exact"
    assert model.default_run.data == "digits" and model.default_run.dequantize == "uniform"


def test_actnorm_init_whitens_the_first_layer_on_the_init_batch(glow):
    model, params, batch = glow
    y, _ = model.preprocess_batch(batch)
    first = squeeze(y)  # level 0's input; its ScanChain runs step L-1 first on data
    actnorm = ActNorm.from_params(layer_params(params["levels"][0]["actnorm"], -1), 3)
    out = actnorm.inverse(first)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-8)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


@pytest.mark.slow
def test_log_prob_is_exact_gradients_finite_and_samples_in_range(glow):
    """log p(x) = log N(T^{-1} x) + slogdet(jacfwd(T^{-1})) on the whole 64-D multi-scale map,
    with perturbed (non-identity) couplings; finite gradients, and a small gradient step lowers
    the loss; samples have the data's shape and lie in the data range [0, 1] (one compilation)."""
    model, params, batch = glow
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params = jax.tree_util.tree_unflatten(
        tree,
        [
            v + 0.05 * jax.random.normal(k, v.shape, v.dtype)
            for k, v in zip(keys, leaves, strict=True)
        ],
    )

    @jax.jit
    def run(params, batch):
        x = batch[:3]
        inverse = model.transform(params).inverse
        jac = jax.vmap(jax.jacfwd(lambda v: inverse(v[None])[0].reshape(-1)))(x)
        expected = (
            standard_normal_log_prob(inverse(x)) + jnp.linalg.slogdet(jac.reshape(3, 64, 64))[1]
        )
        loss_fn = jax.value_and_grad(
            lambda p: model.loss(p, batch, jax.random.key(0)), has_aux=True
        )
        (loss, metrics), grads = loss_fn(params)
        stepped = jax.tree_util.tree_map(lambda p, g: p - 1e-4 * g, params, grads)
        loss_after = model.loss(stepped, batch, jax.random.key(0))[0]
        samples = model.sample(params, jax.random.key(3), 4)
        return model.log_prob(params, x, None), expected, loss, metrics, grads, loss_after, samples

    log_p, expected, loss, metrics, grads, loss_after, samples = run(params, batch)
    assert log_p.shape == (3,) and bool(jnp.all(jnp.isfinite(log_p)))
    np.testing.assert_allclose(log_p, expected, rtol=1e-8, atol=1e-7)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    np.testing.assert_allclose(
        DIGITS.spec.bits_per_dim(metrics["nll"]), (loss + 64 * math.log(17)) / (64 * math.log(2)),
        rtol=1e-10,
    )
    assert float(loss_after) < float(loss)
    assert samples.shape == (4, 8, 8, 1) and bool(jnp.all(jnp.isfinite(samples)))
    assert float(samples.max()) <= 1.0 and float(samples.min()) >= 0.0  # the data range
