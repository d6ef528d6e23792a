"""Continuous relaxations and straight-through estimators for categorical latents.

With g_nk ~ Gumbel(0, 1) i.i.d., argmax_k(logits_nk + g_nk) is an exact sample of z_n ~ q (the
Gumbel-max trick). The Gumbel-softmax / Concrete relaxation (Jang et al., 2017; Maddison et
al., 2017) replaces the argmax by a softmax at temperature tau > 0,

    y_n = softmax((logits_n + g_n) / tau)  in the simplex,

which is reparameterised: grad_phi f(y) is an unbiased estimate of grad E[f(y)], a *relaxed*
objective. As an estimator of grad E_q[f(z)] for one-hot z it is biased; the bias vanishes as
tau -> 0 while the variance grows (roughly as 1/tau). Straight-through estimators use a hard
one-hot z in the forward pass and a surrogate gradient backward:

- ST (Bengio et al., 2013): z = h + p - sg(p), h ~ q one-hot, p = softmax(logits): the gradient
  of f at h, passed through the probabilities p;
- ST-Gumbel (Jang et al., 2017): z = h + y - sg(y), h = one_hot(argmax y): the Gumbel-softmax
  gradient with a hard forward pass.

Both are biased (the tests measure by how much). All functions take ``logits [..., N, K]``
and return ``[..., N, K]``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.discrete.categorical import sample_one_hot
from genjax_models.errors import ConfigError

_sg = jax.lax.stop_gradient


def _check_temperature(temperature: float) -> None:
    concrete = isinstance(temperature, int | float)
    if concrete and not (temperature > 0 and math.isfinite(temperature)):
        raise ConfigError(f"temperature must be positive and finite, got {temperature!r}")


def gumbel_softmax_sample(
    key: jax.Array, logits: Float[Array, "... n k"], temperature: float | jax.Array
) -> Float[Array, "... n k"]:
    """Draw a relaxed sample y = softmax((logits + g) / tau), g ~ Gumbel(0, 1).

    Reparameterised: differentiable in ``logits`` (and ``temperature``). Its argmax equals
    :func:`~genjax_models.discrete.categorical.sample_one_hot` with the same key.

    Args:
      key: PRNG key.
      logits: ``[..., N, K]``.
      temperature: tau > 0 (a Python float, or a traced scalar, e.g. from a schedule).

    Returns:
      ``[..., N, K]``, rows in the open simplex.
    """
    _check_temperature(temperature)
    g = jax.random.gumbel(key, logits.shape, logits.dtype)
    return jax.nn.softmax((logits + g) / temperature, axis=-1)


def straight_through_sample(
    key: jax.Array, logits: Float[Array, "... n k"]
) -> Float[Array, "... n k"]:
    """Draw h ~ q one-hot and return z = h + p - sg(p), p = softmax(logits).

    Forward: exactly the one-hot h (an exact sample of q). Backward: dz/dlogits = dp/dlogits,
    so grad f = (df/dz at h) . dp/dlogits: biased, low variance.

    Args:
      key: PRNG key (Gumbel-max, as :func:`sample_one_hot`).
      logits: ``[..., N, K]``.

    Returns:
      ``[..., N, K]``.
    """
    hard = sample_one_hot(key, logits)
    probs = jax.nn.softmax(logits, axis=-1)
    return hard + probs - _sg(probs)


def straight_through_gumbel_sample(
    key: jax.Array, logits: Float[Array, "... n k"], temperature: float | jax.Array
) -> Float[Array, "... n k"]:
    """Return z = h + y - sg(y), y the Gumbel-softmax sample and h = one_hot(argmax y).

    Forward: the one-hot h, an exact sample of q. Backward: the Gumbel-softmax gradient of
    tau (biased for every tau; the hard forward pass removes the relaxed decoder input).

    Args:
      key: PRNG key (the same key gives the same h as :func:`sample_one_hot`).
      logits: ``[..., N, K]``.
      temperature: tau > 0.

    Returns:
      ``[..., N, K]``.
    """
    y = gumbel_softmax_sample(key, logits, temperature)
    hard = jax.nn.one_hot(jnp.argmax(y, axis=-1), logits.shape[-1], dtype=y.dtype)
    return hard + y - _sg(y)


def temperature_schedule(
    step: int | jax.Array, initial: float = 1.0, minimum: float = 0.5, rate: float = 1e-4
) -> jax.Array:
    """Return the annealed temperature tau(step) = max(minimum, initial * exp(-rate * step)).

    The schedule of Jang et al. (2017) (they use initial 1, minimum 0.5 and anneal every N
    steps). Jittable in ``step``.

    Args:
      step: the optimiser step (int or traced int).
      initial: tau at step 0, > 0.
      minimum: the floor, in (0, initial].
      rate: the exponential decay rate per step, >= 0.

    Returns:
      a float scalar.
    """
    if not (0 < minimum <= initial) or rate < 0:
        raise ConfigError(
            f"temperature_schedule needs 0 < minimum <= initial and rate >= 0, got "
            f"initial={initial!r}, minimum={minimum!r}, rate={rate!r}"
        )
    step = jnp.asarray(step, jnp.result_type(float))
    return jnp.maximum(minimum, initial * jnp.exp(-rate * step))
