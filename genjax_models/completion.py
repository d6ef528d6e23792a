"""Completion of partly observed data: masks of observed entries and the result of a completion.

A model that can complete data implements ``complete(params, key, batch, observed,
num_completions, **options) -> Completion``: given examples ``x [B, *event_shape]`` and a
boolean mask ``observed`` of the same shape (True = entry seen), it draws values for the
missing entries from (an approximation of) p(x_missing | x_observed) and returns
log p(x_observed), saying per example whether that number is exact or an estimate (NaN where
the model cannot give one: diffusion inpainting).

Masks are named here once, for the CLI and the notebooks alike:

- ``top-half`` / ``bottom-half`` / ``left-half`` / ``right-half``: rows (axis 0) or columns
  (axis 1) of an image; the named half is observed;
- ``random(p)``: each entry observed independently with probability p (a fresh mask per
  example, drawn from an explicit key);
- ``FILE.npy``: a saved boolean (or 0/1) array, ``[*event_shape]`` (one mask for all) or
  ``[B, *event_shape]``.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from genjax_models.errors import ConfigError, ShapeError

MASKS: tuple[str, ...] = ("top-half", "bottom-half", "left-half", "right-half", "random(p)")
_RANDOM = re.compile(r"^random\(\s*([0-9.eE+-]+)\s*\)$")


class Completion(NamedTuple):
    """The result of ``complete``.

    Attributes:
      samples: ``[num_completions, B, *event_shape]``; observed entries equal the input.
      log_p_observed: ``[B]`` log p(x_observed) in nats (log-probability for discrete data,
        log-density for continuous data).
      exact: ``[B]`` bools: True where ``log_p_observed`` is exact (and the samples are
        exact draws from p(x_missing | x_observed)), False where both are importance-sampled
        estimates (``log_p_observed`` is then a stochastic lower bound, by Jensen).
        ``log_p_observed`` is NaN where the model gives no such number (diffusion models:
        their completions come from inpainting samplers, with no tractable marginal).
    """

    samples: Float[Array, "n b ..."]
    log_p_observed: Float[Array, " b"]
    exact: Bool[Array, " b"]


def half_mask(name: str, event_shape: tuple[int, ...]) -> np.ndarray:
    """Return the ``[*event_shape]`` mask observing the named half of an image (rows/cols)."""
    axis = 0 if name in ("top-half", "bottom-half") else 1
    if len(event_shape) <= axis:
        raise ShapeError(
            f"mask {name!r} needs an image with {axis + 1} or more axes; the data have "
            f"event shape {event_shape}: use random(p) or a mask file"
        )
    size = event_shape[axis]
    index = np.arange(size).reshape((size,) + (1,) * (len(event_shape) - axis - 1))
    first = index < (size + 1) // 2
    keep = first if name in ("top-half", "left-half") else ~first
    return np.broadcast_to(keep, event_shape).copy()


def make_mask(
    spec: str, event_shape: tuple[int, ...], num: int, key: jax.Array | None = None
) -> np.ndarray:
    """Return the ``[num, *event_shape]`` boolean mask (True = observed) named by ``spec``.

    Args:
      spec: one of ``MASKS`` or a path to a ``.npy`` file (see the module docstring).
      event_shape: shape of one example.
      num: number of examples.
      key: PRNG key for ``random(p)`` (default ``jax.random.key(0)``).

    Raises:
      ConfigError: an unknown mask name, a bad probability, an unreadable file.
      ShapeError: a mask file of the wrong shape.
    """
    event_shape = tuple(event_shape)
    if spec in MASKS[:4]:
        return np.broadcast_to(half_mask(spec, event_shape), (num, *event_shape)).copy()
    match = _RANDOM.match(spec)
    if match:
        try:
            p = float(match.group(1))
        except ValueError:
            p = float("nan")
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"random(p) needs 0 <= p <= 1, got {match.group(1)!r}")
        key = jax.random.key(0) if key is None else key
        return np.asarray(jax.random.bernoulli(key, p, (num, *event_shape)))
    if spec.endswith(".npy"):
        if not os.path.isfile(spec):
            raise ConfigError(f"mask file {spec!r} does not exist")
        mask = np.load(spec, allow_pickle=False)
        return check_observed(mask, event_shape, num)
    raise ConfigError(f"unknown mask {spec!r}; valid: {', '.join(MASKS)} or FILE.npy")


def check_observed(mask: object, event_shape: tuple[int, ...], num: int) -> np.ndarray:
    """Check a mask is ``[*event_shape]`` or ``[num, *event_shape]`` of 0/1; return it as bools.

    Raises:
      ShapeError: any other shape, or values other than 0/1.
    """
    mask = np.asarray(mask)
    if mask.dtype != bool and not np.all((mask == 0) | (mask == 1)):
        raise ShapeError("observed mask must hold booleans or 0/1 values")
    return np.asarray(check_observed_array(mask.astype(bool), event_shape, num))


def check_observed_array(
    observed: jax.Array, event_shape: tuple[int, ...], num: int
) -> Bool[Array, "b ..."]:
    """Broadcast a (possibly traced) mask to ``[num, *event_shape]`` bools, checking its shape."""
    observed = jnp.asarray(observed)
    expected = (num, *event_shape)
    if observed.shape == tuple(event_shape):
        observed = jnp.broadcast_to(observed, expected)
    if observed.shape != expected:
        raise ShapeError(
            f"observed mask must have shape [{', '.join(map(str, event_shape))}] or "
            f"{list(expected)}, got {list(observed.shape)}"
        )
    return observed.astype(bool)


def flat_observed(observed: object, event_shape: tuple[int, ...], num: int) -> Bool[Array, "b d"]:
    """Check a mask ``[*event_shape]`` or ``[num, *event_shape]``; return bools ``[num, D]``.

    A traced mask (inside ``jit``) is checked for its shape only; a concrete one also for
    holding booleans or 0/1 values (:func:`check_observed`).
    """
    if isinstance(observed, jax.core.Tracer):
        mask = check_observed_array(observed, event_shape, num)
    else:
        mask = jnp.asarray(check_observed(observed, event_shape, num))
    return mask.reshape(num, -1)
