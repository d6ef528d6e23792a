"""Decoder log-likelihoods log p(x | z), summed over data dimensions.

Every function takes arrays ``[..., D]`` (typically ``[B, D]``) and returns the
log-likelihood summed over the last axis, ``[...]`` (typically ``[B]``), in nats.
Parameters broadcast against ``x`` (e.g. a per-dimension ``log_scale`` of shape ``[D]``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def bernoulli_log_likelihood(x: jax.Array, logits: jax.Array) -> jax.Array:
    """Compute sum_d log Bernoulli(x_d; sigmoid(l_d)), stably.

    log p = x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))
          = -x softplus(-l) - (1 - x) softplus(l).
    For targets in [0, 1] this is the (unnormalised) binary cross-entropy.

    Args:
      x: targets in {0, 1}, ``[..., D]``.
      logits: ``[..., D]``.

    Returns:
      ``[...]``, nats.
    """
    ll = -x * jax.nn.softplus(-logits) - (1.0 - x) * jax.nn.softplus(logits)
    return jnp.sum(ll, axis=-1)


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """Compute sum_d log N(x_d; mean_d, exp(log_scale_d)^2).

    log N(x; m, s^2) = -((x - m) / s)^2 / 2 - log s - log(2 pi) / 2.

    Args:
      x: ``[..., D]``.
      mean: ``[..., D]``.
      log_scale: log standard deviation, broadcastable to ``x`` (e.g. ``[D]`` or scalar).

    Returns:
      ``[...]``, nats.
    """
    z = (x - mean) * jnp.exp(-log_scale)
    ll = -0.5 * jnp.square(z) - log_scale - _HALF_LOG_2PI
    return jnp.sum(ll, axis=-1)


def _log1mexp(d: jax.Array) -> jax.Array:
    """Compute log(1 - exp(d)) for d < 0 accurately (Maechler, 2012)."""
    return jnp.where(d > -math.log(2.0), jnp.log(-jnp.expm1(d)), jnp.log1p(-jnp.exp(d)))


def _log_sigmoid_diff(a: jax.Array, b: jax.Array) -> jax.Array:
    """Compute log(sigmoid(a) - sigmoid(b)) for a > b, stably in both tails.

    sigmoid(a) - sigmoid(b) = (e^a - e^b) / ((1 + e^a)(1 + e^b)), so
    log(...) = a + log(1 - e^(b - a)) - softplus(a) - softplus(b).
    """
    return a + _log1mexp(b - a) - jax.nn.softplus(a) - jax.nn.softplus(b)


def discretized_logistic_log_likelihood(
    x: jax.Array,
    mean: jax.Array,
    log_scale: jax.Array,
    num_levels: int,
) -> jax.Array:
    """Compute the discretised-logistic log-probability of grid data (PixelCNN++ style).

    Data lie on the grid x = level / (L - 1), level in {0, ..., L-1}. With F the logistic
    CDF F(t) = sigmoid((t - mean) / s) and bin half-width h = 0.5 / (L - 1):

        P(x) = F(x + h) - F(x - h)    for interior levels,
        P(0) = F(0 + h)               (open to -inf),
        P(1) = 1 - F(1 - h)           (open to +inf),

    so the L probabilities sum to one for any mean and scale. Differences of sigmoids are
    evaluated in log space without cancellation (no PixelCNN++ pdf fallback needed).

    Args:
      x: data on the grid, ``[..., D]``.
      mean: location of the logistic, ``[..., D]`` (not constrained to [0, 1]).
      log_scale: log scale s of the logistic, broadcastable to ``x``.
      num_levels: L >= 2.

    Returns:
      ``[...]``, nats.
    """
    half = 0.5 / (num_levels - 1)
    inv_s = jnp.exp(-log_scale)
    centered = x - mean
    plus_in = inv_s * (centered + half)
    min_in = inv_s * (centered - half)
    log_cdf_plus = -jax.nn.softplus(-plus_in)  # log F(x + h), first bin
    log_one_minus_cdf_min = -jax.nn.softplus(min_in)  # log(1 - F(x - h)), last bin
    log_mid = _log_sigmoid_diff(plus_in, min_in)
    level = jnp.round(x * (num_levels - 1))
    ll = jnp.where(
        level <= 0,
        log_cdf_plus,
        jnp.where(level >= num_levels - 1, log_one_minus_cdf_min, log_mid),
    )
    return jnp.sum(ll, axis=-1)
