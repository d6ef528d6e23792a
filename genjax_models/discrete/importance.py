"""Importance-sampled bounds on log p(x) with a factorised categorical proposal q(z | x).

With z_1..z_k ~ q(z | x) (one-hot ``[B, N, K]`` each) and a joint ``log_joint(x, z) -> [B]``
= log p(x | z) + log p(z), the log weights are log w_i = log p(x, z_i) - log q(z_i | x) and

    L_k(x) = logsumexp_i log w_i - log k  <=  log p(x)     (in expectation; IWAE-k),

with L_1 the Monte Carlo ELBO, E[L_k] non-decreasing in k and L_k -> log p(x). Sample i uses
``sample_one_hot(fold_in(key, i), logits)``, so the chunked estimate equals the one-shot one
for the same key, whatever the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.discrete.categorical import categorical_log_prob, sample_one_hot
from genjax_models.validation import positive_int

LogJoint = Callable[[jax.Array, jax.Array], jax.Array]


def _draw(key: jax.Array, indices: jax.Array, logits: jax.Array) -> jax.Array:
    return jax.vmap(lambda i: sample_one_hot(jax.random.fold_in(key, i), logits))(indices)


def categorical_log_weights(
    key: jax.Array,
    x: jax.Array,
    logits: Float[Array, "b n k"],
    log_joint: LogJoint,
    num_samples: int,
) -> Float[Array, "k b"]:
    """Draw k samples z_i ~ q and return log w_i = log p(x, z_i) - log q(z_i | x).

    Args:
      key: PRNG key; sample i uses ``fold_in(key, i)``.
      x: ``[B, ...]``, passed to ``log_joint``.
      logits: q's logits ``[B, N, K]``.
      log_joint: ``(x, z [B, N, K]) -> [B]``, vmapped over the samples.
      num_samples: k, a static Python int.

    Returns:
      ``[k, B]`` (differentiable in ``logits`` through -log q only; the samples carry no
      gradient).
    """
    k = positive_int("num_samples", num_samples)
    z = _draw(key, jnp.arange(k), logits)
    return jax.vmap(log_joint, in_axes=(None, 0))(x, z) - categorical_log_prob(logits, z)


def categorical_importance_log_prob(
    key: jax.Array,
    x: jax.Array,
    logits: Float[Array, "b n k"],
    log_joint: LogJoint,
    num_samples: int,
    chunk_size: int | None = None,
) -> Float[Array, " b"]:
    """Estimate log p(x) by the IWAE-k bound, drawing the k samples chunk by chunk.

    A ``lax.scan`` over ceil(k / c) chunks carries a running log-sum-exp, so memory is
    O(B c D); surplus samples of the last chunk are masked out.

    Args:
      key: PRNG key; sample i uses ``fold_in(key, i)`` as in :func:`categorical_log_weights`.
      x: ``[B, ...]``.
      logits: ``[B, N, K]``.
      log_joint: ``(x, z [B, N, K]) -> [B]``.
      num_samples: k (static).
      chunk_size: c (static); ``None`` or c > k means one chunk.

    Returns:
      ``[B]`` nats: a stochastic lower bound on log p(x), tightening with k.
    """
    k = positive_int("num_samples", num_samples)
    c = k if chunk_size is None else min(positive_int("chunk_size", chunk_size), k)
    num_chunks = -(-k // c)

    def step(carry, chunk):
        run_max, run_sum = carry
        idx = chunk * c + jnp.arange(c)
        z = _draw(key, idx, logits)
        log_w = jax.vmap(log_joint, in_axes=(None, 0))(x, z) - categorical_log_prob(logits, z)
        log_w = jnp.where((idx < k)[:, None], log_w, -jnp.inf)
        new_max = jnp.maximum(run_max, jnp.max(log_w, axis=0))
        safe = jnp.where(jnp.isfinite(new_max), new_max, 0.0)
        rescale = jnp.where(jnp.isfinite(run_max), jnp.exp(run_max - safe), 0.0)
        new_sum = run_sum * rescale + jnp.sum(jnp.exp(log_w - safe), axis=0)
        return (new_max.astype(run_max.dtype), new_sum.astype(run_sum.dtype)), None

    shape = logits.shape[:1]
    init = (jnp.full(shape, -jnp.inf, logits.dtype), jnp.zeros(shape, logits.dtype))
    (run_max, run_sum), _ = jax.lax.scan(step, init, jnp.arange(num_chunks))
    safe = jnp.where(jnp.isfinite(run_max), run_max, 0.0)
    return safe + jnp.log(run_sum) - math.log(k)
