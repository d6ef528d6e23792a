"""Controlling the KL term of a VAE: beta weighting, linear warm-up, free bits, active units.

The ELBO is E_q[log p(x | z)] - KL(q(z | x) || p(z)). The variants here change only the weight
or the shape of the KL term in the *training* objective; the ELBO itself (``beta = 1``, no floor)
stays the reported bound on log p(x):

- **beta-VAE** (Higgins et al., 2017): minimise -E_q log p(x | z) + beta * KL. beta > 1 trades
  reconstruction for a more factorised posterior; the loss is then no bound on -log p(x).
- **KL warm-up** (Bowman et al., 2016; Sønderby et al., 2016): the weight rises linearly from 0
  to beta over ``warmup_steps`` optimiser steps, so the decoder learns to use z before the KL
  pulls q to the prior (a cure for posterior collapse).
- **Free bits** (Kingma et al., 2016): each latent dimension's KL, averaged over the minibatch,
  is floored at lambda nats: sum_k max(lambda, mean_b KL_bk). A dimension below the floor gets
  no gradient to shrink further. lambda = 0 gives back the batch-mean KL exactly.
- **Active units** (Burda et al., 2016): unit u is active when A_u = Cov_x(E_q[z_u | x]) exceeds
  a threshold (0.01): a collapsed unit's posterior mean does not move with x.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError, ShapeError

ACTIVE_UNIT_THRESHOLD = 1e-2


def kl_weight(step: int | jax.Array | None, beta: float, warmup_steps: int) -> jax.Array:
    """Return the KL weight at ``step``: beta * min(1, step / warmup_steps).

    Args:
      step: optimiser steps taken so far (a traced int is fine); ``None`` means no schedule,
        the end point beta.
      beta: the final weight, >= 0.
      warmup_steps: length of the linear ramp; 0 disables it (beta from step 0).

    Returns:
      a float scalar.
    """
    if beta < 0:
        raise ConfigError(f"beta must be >= 0, got {beta!r}")
    if warmup_steps < 0:
        raise ConfigError(f"kl_warmup_steps must be >= 0, got {warmup_steps!r}")
    beta_array = jnp.asarray(beta, jnp.result_type(float))
    if step is None or warmup_steps == 0:
        return beta_array
    ramp = jnp.asarray(step, beta_array.dtype) / warmup_steps
    return beta_array * jnp.clip(ramp, 0.0, 1.0)


def free_bits_kl(kl_per_dim: Float[Array, "b k"], free_bits: float) -> jax.Array:
    """Return the free-bits KL term sum_k max(lambda, mean_b KL_bk) (a scalar, nats).

    Args:
      kl_per_dim: ``[B, K]``, KL(q(z_k | x_b) || p(z_k)) for each example and latent dimension.
      free_bits: lambda >= 0, nats per latent dimension; 0 gives mean_b sum_k KL_bk.
    """
    if free_bits < 0:
        raise ConfigError(f"free_bits must be >= 0 nats, got {free_bits!r}")
    if kl_per_dim.ndim != 2:
        raise ShapeError(f"kl_per_dim must be [B, K], got shape {kl_per_dim.shape}")
    per_dim = jnp.mean(kl_per_dim, axis=0)
    if free_bits == 0:
        return jnp.sum(per_dim)
    return jnp.sum(jnp.maximum(per_dim, free_bits))


def unit_activity(posterior_means: Float[Array, "n k"]) -> Float[Array, " k"]:
    """Return A_u = Var_x(E_q[z_u | x]) per latent unit (the unbiased variance over examples).

    Args:
      posterior_means: ``[N, K]`` encoder means for N >= 2 examples.
    """
    if posterior_means.ndim != 2 or posterior_means.shape[0] < 2:
        raise ShapeError(
            f"posterior_means must be [N, K] with N >= 2, got shape {posterior_means.shape}"
        )
    return jnp.var(posterior_means, axis=0, ddof=1)


def active_units(
    posterior_means: Float[Array, "n k"], threshold: float = ACTIVE_UNIT_THRESHOLD
) -> jax.Array:
    """Return the number of units with activity A_u > ``threshold`` (an int scalar)."""
    return jnp.sum(unit_activity(posterior_means) > threshold)


KL_CONTROL_DEFAULTS = (("beta", 1.0), ("kl_warmup_steps", 0), ("free_bits", 0.0))


def reject_kl_controls(model: object, reason: str) -> None:
    """Raise a ConfigError if ``model`` sets a KL control away from its default.

    For the VAE subclasses whose objective has no separate, reweightable KL term (IWAE-k, the
    M2 bound); ``reason`` starts the message.
    """
    changed = [
        f"{name}={getattr(model, name)!r}"
        for name, default in KL_CONTROL_DEFAULTS
        if getattr(model, name) != default
    ]
    if changed:
        raise ConfigError(f"{reason}; {', '.join(changed)} apply to the vae and cvae models only")
