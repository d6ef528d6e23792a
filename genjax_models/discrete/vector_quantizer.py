"""Vector quantisation (van den Oord et al., 2017): nearest codes, the straight-through
estimator, EMA codebook updates with Laplace smoothing, dead-code restart and usage figures.

A codebook ``e [K, D]`` maps each encoder output ``z [D]`` to its nearest code
k(z) = argmin_k ||z - e_k||^2 and to ``z_q = e_k(z)``. The decoder sees
``z + stop_gradient(z_q - z)``: the value z_q, the gradient of z (straight-through), so the
reconstruction gradient at z_q reaches the encoder unchanged.

The codebook is not learned by gradient. With n_k(t) the number of batch vectors assigned to
code k and s_k(t) their sum, exponential moving averages with decay gamma,

    N_k <- gamma N_k + (1 - gamma) n_k,       m_k <- gamma m_k + (1 - gamma) s_k,

and Laplace-smoothed counts N~_k = (N_k + eps) / (n + K eps) n with n = sum_k N_k give the new
codes e_k = m_k / N~_k (a code with N~_k = 0, possible only with eps = 0, keeps its value).
With gamma = 0 and eps = 0 this is exactly one k-means (Lloyd) step on the batch. A code
whose EMA count N_k falls below a threshold is *dead*: a restart replaces it by a randomly
chosen encoder output of the batch and resets its statistics to (N_k, m_k) = (1, z), as if
that one vector had just been assigned to it.

Usage on a batch: ``codes_used`` = the number of codes assigned at least once and the
perplexity exp(-sum_k p_k log p_k) of the assignment frequencies p_k (K when all codes are
used equally, 1 when one code takes everything).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


class Codebook(NamedTuple):
    """A codebook and its EMA statistics (a pytree, stored with the model's params).

    Attributes:
      embedding: the codes e, ``[K, D]``.
      ema_count: N, the EMA of the per-batch assignment counts, ``[K]``.
      ema_sum: m, the EMA of the per-batch sums of assigned vectors, ``[K, D]``.
    """

    embedding: Float[Array, "k d"]
    ema_count: Float[Array, " k"]
    ema_sum: Float[Array, "k d"]


def init_codebook(key: jax.Array, vectors: Float[Array, "n d"], num_codes: int) -> Codebook:
    """Start the K codes at randomly chosen ``vectors`` (the encoder's outputs on a batch).

    Codes are drawn without replacement when there are at least K vectors; otherwise with
    replacement and a small jitter (1e-3 of the vectors' scale) so that no two start equal.
    Statistics start as if each code had been assigned its own vector once: N = 1, m = e.
    """
    num = vectors.shape[0]
    pick_key, jitter_key = jax.random.split(key)
    idx = jax.random.choice(pick_key, num, (num_codes,), replace=num < num_codes)
    embedding = vectors[idx]
    if num < num_codes:
        scale = 1e-3 * (jnp.std(vectors) + 1e-6)
        embedding = embedding + scale * jax.random.normal(jitter_key, embedding.shape)
    embedding = jax.lax.stop_gradient(embedding)
    # ema_sum is its own buffer: the trainer donates the state, and no buffer may appear twice
    return Codebook(embedding, jnp.ones((num_codes,), embedding.dtype), jnp.copy(embedding))


def squared_distances(
    z: Float[Array, "n d"], embedding: Float[Array, "k d"]
) -> Float[Array, "n k"]:
    """Return ``||z_i - e_k||^2`` for every pair, ``[N, K]`` (expanded as one matmul)."""
    return (
        jnp.sum(z * z, axis=-1, keepdims=True)
        - 2.0 * z @ embedding.T
        + jnp.sum(embedding * embedding, axis=-1)
    )


def nearest_codes(z: Float[Array, "n d"], embedding: Float[Array, "k d"]) -> Int[Array, " n"]:
    """Return k(z_i) = argmin_k ||z_i - e_k||^2, ``[N]`` int32 (the lowest index on ties)."""
    return jnp.argmin(squared_distances(z, embedding), axis=-1).astype(jnp.int32)


def straight_through(z: Float[Array, "... d"], z_q: Float[Array, "... d"]) -> Float[Array, "... d"]:
    """Return z_q in value with the gradient of z: ``z + stop_gradient(z_q - z)``."""
    return z + jax.lax.stop_gradient(z_q - z)


def assignment_statistics(
    z: Float[Array, "n d"], codes: Int[Array, " n"], num_codes: int
) -> tuple[Float[Array, " k"], Float[Array, "k d"]]:
    """Return the batch counts n_k ``[K]`` and sums s_k = sum_{i: k(i)=k} z_i ``[K, D]``."""
    one_hot = jax.nn.one_hot(codes, num_codes, dtype=z.dtype)
    return one_hot.sum(axis=0), one_hot.T @ z


def ema_update(
    book: Codebook,
    z: Float[Array, "n d"],
    codes: Int[Array, " n"],
    decay: float,
    epsilon: float,
) -> Codebook:
    """One EMA codebook update with Laplace smoothing (module docstring), no gradient."""
    z = jax.lax.stop_gradient(z)
    counts, sums = assignment_statistics(z, codes, book.embedding.shape[0])
    ema_count = decay * book.ema_count + (1.0 - decay) * counts
    ema_sum = decay * book.ema_sum + (1.0 - decay) * sums
    total = jnp.sum(ema_count)
    num_codes = ema_count.shape[0]
    smoothed = (ema_count + epsilon) / (total + num_codes * epsilon) * total
    safe = jnp.where(smoothed > 0, smoothed, 1.0)
    embedding = jnp.where((smoothed > 0)[:, None], ema_sum / safe[:, None], book.embedding)
    return Codebook(embedding, ema_count, ema_sum)


def dead_codes(book: Codebook, threshold: float) -> jax.Array:
    """Return the bool mask ``[K]`` of codes whose EMA count N_k is below ``threshold``."""
    return book.ema_count < threshold


def restart_dead_codes(
    book: Codebook, key: jax.Array, z: Float[Array, "n d"], dead: jax.Array
) -> Codebook:
    """Replace every code flagged in ``dead [K]`` by a random row of ``z``; keep the others.

    A restarted code gets N_k = 1 and m_k = e_k (its new value); live codes are untouched.
    """
    z = jax.lax.stop_gradient(z)
    idx = jax.random.randint(key, dead.shape, 0, z.shape[0])
    fresh = z[idx]
    embedding = jnp.where(dead[:, None], fresh, book.embedding)
    ema_count = jnp.where(dead, jnp.ones_like(book.ema_count), book.ema_count)
    ema_sum = jnp.where(dead[:, None], fresh, book.ema_sum)
    return Codebook(embedding, ema_count, ema_sum)


def codebook_usage(codes: Int[Array, " n"], num_codes: int) -> dict[str, jax.Array]:
    """Return ``codes_used`` (codes assigned at least once) and ``perplexity`` of ``codes``."""
    counts = jnp.bincount(codes.reshape(-1), length=num_codes).astype(jnp.float32)
    p = counts / jnp.maximum(counts.sum(), 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return {"codes_used": jnp.sum(counts > 0).astype(jnp.float32), "perplexity": jnp.exp(entropy)}
