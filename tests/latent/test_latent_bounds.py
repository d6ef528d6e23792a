"""Analytic KL, the IWAE-k bound and the chunked importance-sampled estimate."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError
from genjax_models.latent import (
    gaussian_kl_standard,
    gaussian_log_likelihood,
    importance_log_prob,
    iwae_bound,
    log_importance_weights,
)

B, K, D = 4, 3, 5


def _toy_model():
    """A small non-linear decoder and an (imperfect) linear encoder."""
    rng = np.random.default_rng(0)
    w_dec = jnp.asarray(rng.normal(size=(K, D)), jnp.float32)
    w_enc = jnp.asarray(0.3 * rng.normal(size=(D, 2 * K)), jnp.float32)
    x = jnp.asarray(rng.normal(size=(B, D)), jnp.float32)

    def encode(x):
        h = x @ w_enc
        return h[:, :K], h[:, K:] - 0.5

    def log_likelihood(x, z):
        return gaussian_log_likelihood(x, jnp.tanh(z @ w_dec), jnp.asarray(-0.5))

    return x, encode, log_likelihood


def test_kl_matches_monte_carlo() -> None:
    mean = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.7]])
    log_std = jnp.array([[-0.3, 0.2, 0.0], [0.5, -1.0, 0.1]])
    n = 200_000
    eps = jax.random.normal(jax.random.key(0), (n, *mean.shape))
    z = mean + jnp.exp(log_std) * eps
    log_q = jnp.sum(-0.5 * eps**2 - log_std, -1)
    log_p = jnp.sum(-0.5 * z**2, -1)
    samples = log_q - log_p  # the log(2 pi) terms cancel
    mc, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    kl = gaussian_kl_standard(mean, log_std)
    assert kl.shape == (2,)
    assert np.all(np.abs(kl - mc) < 4 * se + 1e-4)
    np.testing.assert_allclose(gaussian_kl_standard(jnp.zeros((1, 3)), jnp.zeros((1, 3))), [0.0])


def test_iwae_bound_is_logsumexp_of_weights() -> None:
    x, encode, log_likelihood = _toy_model()
    key = jax.random.key(1)
    log_w = log_importance_weights(key, x, encode, log_likelihood, 7)
    assert log_w.shape == (7, B)
    bound = iwae_bound(key, x, encode, log_likelihood, 7)
    np.testing.assert_allclose(bound, jax.nn.logsumexp(log_w, 0) - math.log(7), rtol=1e-6)
    # Jensen: the k-sample bound is at least the mean of its log-weights, deterministically.
    assert np.all(bound >= log_w.mean(0) - 1e-5)


@pytest.mark.parametrize("chunk_size", [1, 5, 25, 7, 100, None])
def test_chunked_estimate_equals_unchunked(chunk_size: int | None) -> None:
    x, encode, log_likelihood = _toy_model()
    key = jax.random.key(2)
    full = iwae_bound(key, x, encode, log_likelihood, 50)
    chunked = jax.jit(
        lambda k, x: importance_log_prob(k, x, encode, log_likelihood, 50, chunk_size)
    )(key, x)
    assert chunked.shape == (B,)
    np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-5)


def test_iwae_bound_increases_with_k_on_average() -> None:
    x, encode, log_likelihood = _toy_model()
    keys = jax.random.split(jax.random.key(3), 400)
    means = {}
    for k in (1, 10):
        vals = jax.jit(jax.vmap(lambda kk, k=k: iwae_bound(kk, x, encode, log_likelihood, k)))(keys)
        means[k] = (vals.mean(0), vals.std(0) / math.sqrt(len(keys)))
    gap = means[10][0] - means[1][0]
    se = np.sqrt(means[10][1] ** 2 + means[1][1] ** 2)
    assert np.all(gap > -3 * se)
    assert float(gap.mean()) > 0.0


def test_bad_counts_raise_config_error() -> None:
    x, encode, log_likelihood = _toy_model()
    with pytest.raises(ConfigError, match="num_samples"):
        iwae_bound(jax.random.key(0), x, encode, log_likelihood, 0)
    with pytest.raises(ConfigError, match="chunk_size"):
        importance_log_prob(jax.random.key(0), x, encode, log_likelihood, 10, 0)
