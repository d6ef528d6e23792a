"""Estimating log p(x) of a latent-variable model: prior sampling, the ELBO and IWAE-k.

p(x) = E_{p(z)}[p(x | z)] = E_{q(z | x)}[w],  w = p(x, z) / q(z | x). Three Monte Carlo
estimates with k samples, side by side (the lesson of the VAE lecture):

- ``prior``: log (1/k sum_i p(x | z_i)), z_i ~ p(z) = N(0, I). Its inner mean is an
  unbiased estimate of p(x), its log a biased-low estimate of log p(x) (Jensen); most prior
  draws explain x badly, so the variance of p(x | z) is enormous and k must be very large;
- ``elbo``: 1/k sum_i log w_i, z_i ~ q(z | x): an unbiased estimate of the ELBO, whose gap to
  log p(x) is KL(q || p(z | x)) whatever k is (k only lowers the noise);
- ``iwae``: log (1/k sum_i w_i), z_i ~ q(z | x): the IWAE-k bound, biased low by a gap that
  shrinks with k (the same Jensen argument as ``prior``, but with a proposal close to the
  posterior the weights vary little).

With the exact posterior as q every w_i equals p(x), so ``elbo`` and ``iwae`` are exact for
every k and draw (tested against the PPCA oracle). Sample i of a draw uses
``normal(fold_in(key, i))`` for both proposals, as in :mod:`genjax_models.latent.bounds`, so
``iwae`` equals :func:`~genjax_models.latent.bounds.importance_log_prob` for the same key.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ConfigError
from genjax_models.latent.bounds import (
    Encoder,
    LogLikelihood,
    _check_count,
    _log_weights_from_noise,
    _sample_noise,
    running_logsumexp_init,
    running_logsumexp_update,
    running_logsumexp_value,
)

ESTIMATES = ("prior", "elbo", "iwae")


def log_marginal_estimates(
    key: jax.Array,
    x: jax.Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: int,
    chunk_size: int | None = None,
) -> dict[str, jax.Array]:
    """Draw the three estimates of log p(x) with k samples each (module docstring).

    The q samples are shared by ``elbo`` and ``iwae``; the prior samples use the same noise
    (z_i = eps_i). Samples are drawn ``chunk_size`` at a time in a ``lax.scan`` (memory
    O(B c D)); the result does not depend on the chunk size.

    Args:
      key: PRNG key; sample i uses ``fold_in(key, i)``.
      x: ``[B, ...]``.
      encode: ``x -> (mean, log_std)``, each ``[B, K]`` (q(z | x)).
      log_likelihood: ``(x, z [B, K]) -> [B]`` (log p(x | z)).
      num_samples: k, a static Python int.
      chunk_size: c, a static Python int; ``None`` or c > k means one chunk.

    Returns:
      ``{"prior": [B], "elbo": [B], "iwae": [B]}``, nats.
    """
    k = _check_count("num_samples", num_samples)
    c = k if chunk_size is None else min(_check_count("chunk_size", chunk_size), k)
    mean, log_std = encode(x)
    zeros = jnp.zeros_like(mean)

    def step(carry, chunk):
        prior_acc, iwae_acc, elbo_sum = carry
        idx = chunk * c + jnp.arange(c)
        valid = (idx < k)[:, None]
        eps = _sample_noise(key, idx, mean.shape)
        log_w_q = _log_weights_from_noise(x, mean, log_std, eps, log_likelihood)
        log_w_prior = _log_weights_from_noise(x, zeros, zeros, eps, log_likelihood)  # log p(x|z)
        prior_acc = running_logsumexp_update(prior_acc, jnp.where(valid, log_w_prior, -jnp.inf))
        iwae_acc = running_logsumexp_update(iwae_acc, jnp.where(valid, log_w_q, -jnp.inf))
        elbo_sum = elbo_sum + jnp.sum(jnp.where(valid, log_w_q, 0.0), axis=0)
        return (prior_acc, iwae_acc, elbo_sum), None

    batch_shape, dtype = mean.shape[:-1], mean.dtype
    init = (
        running_logsumexp_init(batch_shape, dtype),
        running_logsumexp_init(batch_shape, dtype),
        jnp.zeros(batch_shape, dtype),
    )
    (prior_acc, iwae_acc, elbo_sum), _ = jax.lax.scan(step, init, jnp.arange(-(-k // c)))
    return {
        "prior": running_logsumexp_value(prior_acc) - math.log(k),
        "elbo": elbo_sum / k,
        "iwae": running_logsumexp_value(iwae_acc) - math.log(k),
    }


def estimator_table(
    key: jax.Array,
    x: jax.Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: tuple[int, ...] = (1, 10, 100, 1000),
    num_repeats: int = 5,
    exact: jax.Array | np.ndarray | None = None,
    chunk_size: int | None = 100,
) -> list[dict[str, Any]]:
    """Tabulate the three estimates of log p(x) for each k, with their errors.

    Each k gets ``num_repeats`` independent draws (keys ``fold_in(fold_in(key, k), r)``) of
    :func:`log_marginal_estimates` on the B examples of ``x``.

    Args:
      key, x, encode, log_likelihood, chunk_size: as in :func:`log_marginal_estimates`.
      num_samples: the k to tabulate.
      num_repeats: R >= 2 independent draws per k.
      exact: ``[B]`` exact log p(x) where known (e.g. PPCA, or an enumeration); adds the bias.

    Returns:
      one row per (k, estimate) with ``estimate``, ``k``, ``mean`` (mean over examples and
      draws of the estimate, nats per example), ``stderr`` (its standard error over the B
      examples), ``draw_std`` (the Monte Carlo noise of one draw: the std over the R draws,
      averaged over examples) and, with ``exact``, ``bias`` (mean - mean exact) with
      ``bias_stderr`` (the standard error of the per-example error over the examples).
    """
    repeats = _check_count("num_repeats", num_repeats)
    if repeats < 2:
        raise ConfigError("num_repeats must be >= 2 (the draw-to-draw spread needs two draws)")
    rows = []
    for k in num_samples:

        @jax.jit
        def draw(key: jax.Array, k: int = k) -> dict[str, jax.Array]:
            return log_marginal_estimates(key, x, encode, log_likelihood, k, chunk_size)

        draws = [draw(jax.random.fold_in(jax.random.fold_in(key, k), r)) for r in range(repeats)]
        for name in ESTIMATES:
            values = np.stack([np.asarray(d[name], np.float64) for d in draws])  # [R, B]
            per_example = values.mean(axis=0)
            num = per_example.shape[0]
            row = {
                "estimate": name,
                "k": int(k),
                "mean": float(per_example.mean()),
                "stderr": float(per_example.std(ddof=1) / math.sqrt(num)) if num > 1 else 0.0,
                "draw_std": float(values.std(axis=0, ddof=1).mean()),
            }
            if exact is not None:
                error = per_example - np.asarray(exact, np.float64)
                row["bias"] = float(error.mean())
                row["bias_stderr"] = float(error.std(ddof=1) / math.sqrt(num)) if num > 1 else 0.0
            rows.append(row)
    return rows


def model_estimator_table(
    model: Any, params: Any, batch: Any, key: jax.Array, **kwargs: Any
) -> list[dict[str, Any]]:
    """:func:`estimator_table` for a VAE-family model (``vae``, ``iwae``, ``cvae``).

    ``model.bound_pieces(params, batch)`` supplies x, the encoder and the decoder likelihood
    (with the labels of a conditional model); ``kwargs`` go to :func:`estimator_table`.
    """
    x, encode, log_likelihood = model.bound_pieces(params, batch)
    return estimator_table(key, x, encode, log_likelihood, **kwargs)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Render :func:`estimator_table` rows as a fixed-width text table (one line per row)."""
    has_bias = "bias" in rows[0] if rows else False
    head = f"{'estimate':>8} {'k':>6} {'mean':>10} {'stderr':>8} {'draw std':>9}"
    lines = [head + (f" {'bias':>9} {'+-':>6}" if has_bias else "")]
    for r in rows:
        line = (
            f"{r['estimate']:>8} {r['k']:>6} {r['mean']:>10.3f} {r['stderr']:>8.3f} "
            f"{r['draw_std']:>9.3f}"
        )
        if has_bias:
            line += f" {r['bias']:>9.3f} {r['bias_stderr']:>6.3f}"
        lines.append(line)
    return "\n".join(lines)
