"""Decoder log-likelihoods against direct formulas (numpy / scipy)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from genjax_models.latent import (
    bernoulli_log_likelihood,
    discretized_logistic_log_likelihood,
    gaussian_log_likelihood,
)
from tests.x64 import float64


def test_bernoulli_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(5, 7))
    x = (rng.uniform(size=(5, 7)) < 0.5).astype(np.float64)
    p = special.expit(logits)
    expected = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1)
    got = bernoulli_log_likelihood(jnp.asarray(x, jnp.float32), jnp.asarray(logits, jnp.float32))
    assert got.shape == (5,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_bernoulli_is_stable_for_extreme_logits() -> None:
    logits = jnp.array([[100.0, -100.0, 100.0, -100.0]])
    x = jnp.array([[1.0, 0.0, 0.0, 1.0]])
    ll = bernoulli_log_likelihood(x, logits)
    np.testing.assert_allclose(ll, [-200.0], rtol=1e-6)
    grad = jax.grad(lambda lg: bernoulli_log_likelihood(x, lg).sum())(logits)
    assert np.all(np.isfinite(grad))


def test_gaussian_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    x, mean = rng.normal(size=(2, 4, 6))
    log_scale = rng.normal(0.0, 0.5, size=(6,))
    expected = stats.norm.logpdf(x, mean, np.exp(log_scale)).sum(-1)
    got = gaussian_log_likelihood(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_scale))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_levels", [2, 17, 256])
def test_discretized_logistic_normalises(num_levels: int) -> None:
    rng = np.random.default_rng(num_levels)
    n = 64  # random (mean, scale) pairs, one per "dimension"
    mean = jnp.asarray(rng.uniform(-0.5, 1.5, size=n), jnp.float32)
    log_scale = jnp.asarray(rng.uniform(-6.0, 1.0, size=n), jnp.float32)
    grid = jnp.arange(num_levels, dtype=jnp.float32) / (num_levels - 1)
    # [L, n, 1]: every level for every (mean, scale); D = 1 so the sum over dims is trivial.
    x = jnp.broadcast_to(grid[:, None], (num_levels, n))[..., None]
    logp = discretized_logistic_log_likelihood(x, mean[:, None], log_scale[:, None], num_levels)
    total = jnp.sum(jnp.exp(logp), axis=0)
    np.testing.assert_allclose(total, np.ones(n), atol=1e-5)
    assert np.all(np.isfinite(logp))


def test_discretized_logistic_matches_cdf_differences() -> None:
    num_levels = 9
    rng = np.random.default_rng(3)
    mean = rng.uniform(0.0, 1.0, size=(3, 9))
    log_scale = rng.uniform(-3.0, 0.0, size=(9,))
    levels = rng.integers(0, num_levels, size=(3, 9))
    levels[0, 0], levels[0, 1] = 0, num_levels - 1  # make sure both edge bins are covered
    x = levels / (num_levels - 1)
    h = 0.5 / (num_levels - 1)
    s = np.exp(log_scale)
    upper = np.where(levels == num_levels - 1, 1.0, special.expit((x + h - mean) / s))
    lower = np.where(levels == 0, 0.0, special.expit((x - h - mean) / s))
    expected = np.log(upper - lower).sum(-1)
    with float64():
        got = discretized_logistic_log_likelihood(
            jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_scale), num_levels
        )
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_discretized_logistic_is_stable_far_from_the_mean() -> None:
    # Interior bins far in either tail: naive sigmoid differences would give log(0) = -inf.
    x = jnp.array([[0.5, 0.5]])
    mean = jnp.array([[30.0, -30.0]])
    log_scale = jnp.array([-1.0, -1.0])

    def f(m: jax.Array) -> jax.Array:
        return discretized_logistic_log_likelihood(x, m, log_scale, 256).sum()

    value, grad = jax.value_and_grad(f)(mean)
    assert np.isfinite(value) and value < -100.0
    assert np.all(np.isfinite(grad))
