"""Variational bounds on log p(x): analytic KL, the IWAE-k bound and chunked importance sampling.

These estimators are model-agnostic. They take two per-example functions:

- ``encode(x) -> (mean, log_std)``, each ``[B, K]``: the Gaussian encoder
  q(z | x) = N(z; mean, diag(exp(log_std)^2));
- ``log_likelihood(x, z) -> [B]`` with ``z`` of shape ``[B, K]``: the decoder
  log p(x | z) summed over data dimensions. The estimators ``jax.vmap`` it over the
  importance samples, so the decoder sees one ``[B, K]`` batch per sample and XLA batches
  the matmuls; there is no Python loop over samples.

The prior is p(z) = N(0, I) unless a ``log_prior(z [..., K]) -> [...]`` is passed (e.g. the
GMVAE's learned mixture, :mod:`genjax_models.latent.gmvae`). With z_i ~ q(z | x), i = 1..k,
the log importance weights are

    log w_i = log p(x | z_i) + log N(z_i; 0, I) - log q(z_i | x)

and the IWAE-k bound (Burda et al., 2016) is

    L_k(x) = logsumexp_i(log w_i) - log k  <=  log p(x),

with L_1 the (Monte Carlo) ELBO, L_k non-decreasing in k in expectation and L_k -> log p(x).

Randomness: sample i uses the noise ``normal(fold_in(key, i), [B, K])``. Sample i therefore
gets the same noise whether the k samples are drawn at once (:func:`iwae_bound`) or in chunks
(:func:`importance_log_prob`), so both functions return the same number for the same key,
whatever the chunk size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError

Encoder = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
LogLikelihood = Callable[[jax.Array, jax.Array], jax.Array]
LogPrior = Callable[[jax.Array], jax.Array]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_kl_standard(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Compute KL(N(mean, diag(std^2)) || N(0, I)) analytically, summed over the last axis.

    KL = 1/2 sum_k (mean_k^2 + std_k^2 - 1 - 2 log std_k).

    Args:
      mean: ``[B, K]``.
      log_std: ``[B, K]``.

    Returns:
      ``[B]``, nats.
    """
    return jnp.sum(gaussian_kl_standard_per_dim(mean, log_std), axis=-1)


def gaussian_kl_standard_per_dim(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Compute KL(N(mean_k, std_k^2) || N(0, 1)) for each dimension k (no sum).

    KL_k = 1/2 (mean_k^2 + std_k^2 - 1) - log std_k; shapes as the inputs, nats.
    """
    return 0.5 * (jnp.square(mean) + jnp.exp(2.0 * log_std) - 1.0) - log_std


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive Python int, got {value!r}")
    return int(value)


def _sample_noise(key: jax.Array, indices: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Draw eps_i ~ N(0, I) of ``shape`` for each sample index i: ``[len(indices), *shape]``."""
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), shape))(indices)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """Return log N(z; 0, I) summed over the last axis: ``[..., K] -> [...]``."""
    return jnp.sum(-0.5 * jnp.square(z) - _HALF_LOG_2PI, axis=-1)


def _log_weights_from_noise(
    x: jax.Array,
    mean: jax.Array,
    log_std: jax.Array,
    eps: jax.Array,
    log_likelihood: LogLikelihood,
    log_prior: LogPrior | None = None,
) -> jax.Array:
    """Compute log w for z = mean + std * eps; eps ``[n, B, K]`` -> ``[n, B]``.

    ``log_prior`` maps ``z [n, B, K] -> [n, B]``; ``None`` is the standard normal.
    """
    eps = eps.astype(mean.dtype)
    z = mean + jnp.exp(log_std) * eps  # [n, B, K]
    log_q = jnp.sum(-0.5 * jnp.square(eps) - log_std - _HALF_LOG_2PI, axis=-1)
    log_prior = (standard_normal_log_prob if log_prior is None else log_prior)(z)
    log_lik = jax.vmap(log_likelihood, in_axes=(None, 0))(x, z)  # [n, B]
    return log_lik + log_prior - log_q


def log_importance_weights(
    key: jax.Array,
    x: jax.Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: int,
    log_prior: LogPrior | None = None,
) -> jax.Array:
    """Draw k samples z_i ~ q(z | x) and return log w_i = log p(x, z_i) - log q(z_i | x).

    Args:
      key: PRNG key; sample i uses ``fold_in(key, i)``.
      x: ``[B, ...]``, passed unchanged to ``encode`` and ``log_likelihood``.
      encode: ``x -> (mean, log_std)``, each ``[B, K]``.
      log_likelihood: ``(x, z[B, K]) -> [B]``.
      num_samples: k, a static Python int.
      log_prior: ``z [..., K] -> [...]``, log p(z); ``None`` (default) is N(0, I).

    Returns:
      ``[k, B]`` log importance weights (nats). Their mean over samples is a Monte Carlo
      ELBO; their ``logsumexp - log k`` is the IWAE-k bound.
    """
    k = _check_count("num_samples", num_samples)
    mean, log_std = encode(x)
    eps = _sample_noise(key, jnp.arange(k), mean.shape)
    return _log_weights_from_noise(x, mean, log_std, eps, log_likelihood, log_prior)


def iwae_bound(
    key: jax.Array,
    x: jax.Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: int,
    log_prior: LogPrior | None = None,
) -> jax.Array:
    """Compute the IWAE-k lower bound L_k(x) = logsumexp_i log w_i - log k per example.

    ``num_samples=1`` gives the single-sample Monte Carlo ELBO log p(x, z) - log q(z | x).
    Memory is O(k B D) for the decoder outputs; for large k use :func:`importance_log_prob`.

    Args:
      key: PRNG key; sample i uses ``fold_in(key, i)``.
      x: ``[B, ...]``.
      encode: ``x -> (mean, log_std)``, each ``[B, K]``.
      log_likelihood: ``(x, z[B, K]) -> [B]``.
      num_samples: k, a static Python int.
      log_prior: ``z [..., K] -> [...]``, log p(z); ``None`` (default) is N(0, I).

    Returns:
      ``[B]``, nats.
    """
    log_w = log_importance_weights(key, x, encode, log_likelihood, num_samples, log_prior)
    return jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)


def importance_log_prob(
    key: jax.Array,
    x: jax.Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: int,
    chunk_size: int | None = None,
    log_prior: LogPrior | None = None,
) -> jax.Array:
    """Estimate log p(x) by importance sampling with k samples, drawn chunk by chunk.

    Returns the same quantity as :func:`iwae_bound` (the IWAE-k estimate, a stochastic lower
    bound on log p(x) that tightens as k grows) with the same samples for the same key, but
    computes it with a ``lax.scan`` over ceil(k / c) chunks of c samples that carries a
    running log-sum-exp (max m, sum of exp(log w - m)). Memory is O(B c D), not O(B k D).
    If c does not divide k, the surplus samples of the last chunk are masked out (weight 0).

    Args:
      key: PRNG key; sample i uses ``fold_in(key, i)``, as in :func:`iwae_bound`.
      x: ``[B, ...]``.
      encode: ``x -> (mean, log_std)``, each ``[B, K]``; called once.
      log_likelihood: ``(x, z[B, K]) -> [B]``.
      num_samples: k, a static Python int (e.g. 1000 for the standard IWAE-1000 estimate).
      chunk_size: c, a static Python int; ``None`` or c > k means one chunk of k.
      log_prior: ``z [..., K] -> [...]``, log p(z); ``None`` (default) is N(0, I).

    Returns:
      ``[B]``, nats.
    """
    k = _check_count("num_samples", num_samples)
    c = k if chunk_size is None else min(_check_count("chunk_size", chunk_size), k)
    num_chunks = -(-k // c)
    mean, log_std = encode(x)

    def step(
        carry: tuple[jax.Array, jax.Array], chunk: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], None]:
        idx = chunk * c + jnp.arange(c)
        eps = _sample_noise(key, idx, mean.shape)
        log_w = _log_weights_from_noise(x, mean, log_std, eps, log_likelihood, log_prior)
        log_w = jnp.where((idx < k)[:, None], log_w, -jnp.inf)
        return running_logsumexp_update(carry, log_w), None

    init = running_logsumexp_init(mean.shape[:-1], mean.dtype)
    carry, _ = jax.lax.scan(step, init, jnp.arange(num_chunks))
    return running_logsumexp_value(carry) - math.log(k)


def running_logsumexp_init(
    batch_shape: tuple[int, ...], dtype: jnp.dtype
) -> tuple[jax.Array, jax.Array]:
    """Return the empty accumulator ``(max = -inf, sum = 0)`` of a chunked log-sum-exp."""
    return jnp.full(batch_shape, -jnp.inf, dtype), jnp.zeros(batch_shape, dtype)


def running_logsumexp_update(
    carry: tuple[jax.Array, jax.Array], log_w: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Fold a chunk ``log_w [c, B]`` into ``(m, s)`` with s = sum_i exp(log w_i - m).

    Entries of -inf contribute nothing (masked samples); an all -inf prefix keeps m = -inf.
    """
    run_max, run_sum = carry
    new_max = jnp.maximum(run_max, jnp.max(log_w, axis=0))
    safe_max = jnp.where(jnp.isfinite(new_max), new_max, 0.0)
    rescale = jnp.where(jnp.isfinite(run_max), jnp.exp(run_max - safe_max), 0.0)
    new_sum = run_sum * rescale + jnp.sum(jnp.exp(log_w - safe_max), axis=0)
    return new_max.astype(run_max.dtype), new_sum.astype(run_sum.dtype)


def running_logsumexp_value(carry: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Return log sum_i exp(log w_i) of everything folded into ``carry``."""
    run_max, run_sum = carry
    return jnp.where(jnp.isfinite(run_max), run_max, 0.0) + jnp.log(run_sum)
