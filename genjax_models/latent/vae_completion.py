"""Completing partly observed data with a latent-variable model: a bound on log p(x_observed)
by importance sampling, and completions by sampling-importance-resampling.

With a factorised decoder the missing dimensions drop out of the likelihood,
p(x_o | z) = prod_{d observed} p(x_d | z). Any proposal q with full support gives, with
z_i ~ q, i = 1..k,

    log w_i = log p(x_o | z_i) + log p(z_i) - log q(z_i),
    L_k(x_o) = logsumexp_i log w_i - log k,

a stochastic lower bound on log p(x_o) (E L_k <= log p(x_o) by Jensen) that tightens to it as
k grows. The VAE's proposal is its encoder applied to x with the missing entries set to a
fill value (the encoder never saw masks in training; the bound stays valid, only looser).

A completion draws an index i with probability w_i / sum_j w_j, so that z_i is approximately a
draw from p(z | x_o) (exactly as k -> infinity: sampling-importance-resampling), then
x_missing ~ p(x_missing | z_i); the observed entries are copied from the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def resample_indices(key: jax.Array, log_w: Float[Array, "k b"], num: int) -> jax.Array:
    """Draw ``num`` indices i per column b with probability proportional to exp(log_w[i, b]).

    Inverse-CDF sampling (a search of ``num`` uniforms in the cumulative weights): O(k + num
    log k) memory and work per column, where ``jax.random.categorical`` with a sample shape
    would draw a Gumbel variate for every (draw, index) pair.

    Returns:
      ``[num, B]`` ints in 0..k-1.
    """
    cdf = jnp.cumsum(jax.nn.softmax(log_w, axis=0), axis=0)  # [k, B]
    u = jax.random.uniform(key, (num, log_w.shape[1]), cdf.dtype) * cdf[-1]
    index = jax.vmap(jnp.searchsorted, in_axes=(1, 1), out_axes=1)(cdf, u)
    return jnp.minimum(index, log_w.shape[0] - 1)


def importance_samples(
    key: jax.Array,
    mean: Float[Array, "b k"],
    log_std: Float[Array, "b k"],
    observed_log_likelihood: Callable[[jax.Array], jax.Array],
    log_prior: Callable[[jax.Array], jax.Array],
    num_samples: int,
    chunk_size: int = 100,
) -> tuple[Float[Array, "n b k"], Float[Array, "n b"]]:
    """Draw z_i ~ q = N(mean, diag(exp(log_std)^2)) and their log weights (module docstring).

    Args:
      key: PRNG key.
      mean, log_std: the Gaussian proposal per example, ``[B, K]`` each.
      observed_log_likelihood: ``z [B, K] -> [B]``, log p(x_o | z).
      log_prior: ``z [..., K] -> [...]``, log p(z).
      num_samples: k (static).
      chunk_size: samples per likelihood call (memory O(chunk B D)).

    Returns:
      ``(z [k, B, K], log_w [k, B])`` with log w = log p(x_o | z) + log p(z) - log q(z).
    """
    eps = jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
    z = mean + jnp.exp(log_std) * eps  # [k, B, K]
    log_q = jnp.sum(-0.5 * jnp.square(eps) - log_std - _HALF_LOG_2PI, axis=-1)  # [k, B]
    log_lik = jax.lax.map(observed_log_likelihood, z, batch_size=min(chunk_size, num_samples))
    return z, log_lik + log_prior(z) - log_q


def masked_sum(observed: Bool[Array, "b d"], terms: Float[Array, "b d"]) -> Float[Array, " b"]:
    """Sum per-dimension log-likelihood terms over the observed dimensions only: ``[B]``.

    ``where`` rather than a product, so that a non-finite term at a missing entry (the data
    there may hold anything) cannot leak into the sum.
    """
    return jnp.sum(jnp.where(observed, terms, 0.0), axis=-1)


def importance_completion(
    key: jax.Array,
    x: Float[Array, "b d"],
    observed: Bool[Array, "b d"],
    mean: Float[Array, "b k"],
    log_std: Float[Array, "b k"],
    log_likelihood_terms: Callable[[jax.Array], jax.Array],
    log_prior: Callable[[jax.Array], jax.Array],
    draw: Callable[[jax.Array, jax.Array], jax.Array],
    num_samples: int,
    num_completions: int,
    chunk_size: int = 100,
) -> tuple[Float[Array, "n b d"], Float[Array, " b"]]:
    """Return completions and the IWAE-k bound on log p(x_observed) (module docstring).

    Args:
      key: PRNG key.
      x: flat examples ``[B, D]`` (missing entries may hold anything finite).
      observed: ``[B, D]`` bools, True where x is seen.
      mean, log_std: the Gaussian proposal q(z) per example, ``[B, K]`` each.
      log_likelihood_terms: ``z [B, K] -> [B, D]``, log p(x_d | z) per dimension.
      log_prior: ``z [..., K] -> [...]``, log p(z).
      draw: ``(key, z [B, K]) -> [B, D]``, a draw of x ~ p(x | z).
      num_samples: k, importance samples per example (static).
      num_completions: n, completions per example (static).
      chunk_size: importance samples evaluated per decoder call (memory O(chunk B D)).

    Returns:
      ``(samples [n, B, D], log_p_observed [B])``: completions (observed entries equal x) and
      the bound L_k(x_o) in nats.
    """
    weight_key, index_key, draw_key = jax.random.split(key, 3)
    z, log_w = importance_samples(
        weight_key, mean, log_std, lambda z_i: masked_sum(observed, log_likelihood_terms(z_i)),
        log_prior, num_samples, chunk_size,
    )
    bound = jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)
    index = resample_indices(index_key, log_w, num_completions)  # [n, B]
    chosen = z[index, jnp.arange(x.shape[0])]  # [n, B, K]
    drawn = jax.vmap(draw)(jax.random.split(draw_key, num_completions), chosen)
    return jnp.where(observed[None], x[None], drawn), bound
