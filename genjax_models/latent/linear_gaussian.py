"""Probabilistic PCA: the linear-Gaussian latent-variable model with a closed-form posterior.

The model is

    p(z) = N(0, I_K),    p(x | z) = N(W z + b, s^2 I_D),    W: [D, K], b: [D], s > 0.

Everything is exact (Tipping & Bishop, 1999):

    p(x)     = N(x; b, C),            C = W W^T + s^2 I_D,
    p(z | x) = N(M^{-1} W^T (x - b), s^2 M^{-1}),   M = W^T W + s^2 I_K.

It is the oracle for the VAE machinery (see ORACLES.md): with the exact posterior as encoder
and a linear-Gaussian decoder, log w = log p(x, z) - log p(z | x) = log p(x) for every z, so
the ELBO, every IWAE-k bound and the importance-sampled estimate all equal log p(x).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def _precision_factor(w: jax.Array, s: jax.Array | float) -> tuple[jax.Array, jax.Array]:
    """Return (M, cholesky(M)) with M = W^T W + s^2 I_K."""
    k = w.shape[1]
    m = w.T @ w + jnp.square(s) * jnp.eye(k, dtype=w.dtype)
    return m, jnp.linalg.cholesky(m)


def ppca_log_prob(x: jax.Array, w: jax.Array, b: jax.Array, s: jax.Array | float) -> jax.Array:
    """Compute log p(x) = log N(x; b, W W^T + s^2 I) exactly, through K x K algebra.

    With r = x - b and M = W^T W + s^2 I_K (Woodbury and the matrix determinant lemma):

        r^T C^{-1} r = (|r|^2 - r^T W M^{-1} W^T r) / s^2,
        log|C|       = (D - K) log s^2 + log|M|,
        log p(x)     = -(D log 2 pi + log|C| + r^T C^{-1} r) / 2.

    Args:
      x: ``[B, D]``.
      w: ``[D, K]`` decoder weight.
      b: ``[D]`` decoder bias.
      s: observation noise standard deviation (scalar).

    Returns:
      ``[B]``, nats.
    """
    d, k = w.shape
    s2 = jnp.square(jnp.asarray(s, w.dtype))
    _, chol = _precision_factor(w, jnp.sqrt(s2))
    r = x - b
    proj = jax.scipy.linalg.solve_triangular(chol, (r @ w).T, lower=True)  # L^{-1} W^T r: [K, B]
    quad = (jnp.sum(jnp.square(r), axis=-1) - jnp.sum(jnp.square(proj), axis=0)) / s2
    log_det = (d - k) * jnp.log(s2) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (d * _LOG_2PI + log_det + quad)


def ppca_posterior(
    x: jax.Array, w: jax.Array, b: jax.Array, s: jax.Array | float
) -> tuple[jax.Array, jax.Array]:
    """Compute the exact posterior p(z | x) = N(M^{-1} W^T (x - b), s^2 M^{-1}).

    Args:
      x: ``[B, D]``.
      w: ``[D, K]``.
      b: ``[D]``.
      s: observation noise standard deviation (scalar).

    Returns:
      ``(mean [B, K], cov [K, K])``; the covariance does not depend on x.
    """
    s2 = jnp.square(jnp.asarray(s, w.dtype))
    m, chol = _precision_factor(w, jnp.sqrt(s2))
    m_inv = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(m.shape[0], dtype=m.dtype))
    mean = (x - b) @ w @ m_inv  # M symmetric: (M^{-1} W^T r)^T = r^T W M^{-1}
    return mean, s2 * m_inv
