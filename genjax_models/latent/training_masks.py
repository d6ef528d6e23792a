"""Random masks of observed entries for training a mask-aware encoder.

A mask-aware VAE's encoder sees ``[x * m, m]`` and is trained on the bound on log p(x_o) of
randomly masked examples, so that at completion time q(z | x_o, m) is a proposal fitted to the
kind of partial observation it will be given. The masks here (True = observed) come in two
kinds, picked per example:

- ``"pixels"``: a missing rate r ~ U(0, 1) per example, each entry observed independently with
  probability 1 - r (from almost fully observed to almost fully missing);
- ``"halves"``: one of the halves of the example observed, the other missing, as the
  ``complete`` verb's masks have them: for images ``[H, W, ...]`` the top, bottom, left or right
  half (the first ``ceil(H / 2)`` rows, the rest, the first ``ceil(W / 2)`` columns, the rest),
  for flat vectors ``[D]`` the first ``ceil(D / 2)`` entries or the rest;
- ``"mixed"``: each example ``"pixels"`` or ``"halves"`` with probability 1/2.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool

from genjax_models.completion import MASKS, half_mask
from genjax_models.errors import unknown_name

TRAINING_MASKS: tuple[str, ...] = ("pixels", "halves", "mixed")


def half_masks(event_shape: tuple[int, ...]) -> np.ndarray:
    """Return the ``[M, D]`` flat masks that observe one half of an example (module docstring).

    The halves of the ``complete`` verb's masks (:func:`genjax_models.completion.half_mask`):
    M = 4 for events with two or more axes (top, bottom, left, right), 2 for flat vectors
    (first and second half).
    """
    names = MASKS[:4] if len(event_shape) > 1 else MASKS[:2]
    return np.stack([half_mask(name, event_shape).reshape(-1) for name in names])


def random_training_masks(
    key: jax.Array, num: int, event_shape: tuple[int, ...], kind: str = "mixed"
) -> Bool[Array, "num d"]:
    """Draw ``num`` flat masks ``[num, D]`` (True = observed) of the given kind.

    Args:
      key: PRNG key.
      num: number of masks (static).
      event_shape: shape of one example; D = prod(event_shape).
      kind: ``"pixels"``, ``"halves"`` or ``"mixed"`` (module docstring).

    Raises:
      ConfigError: an unknown ``kind``.
    """
    if kind not in TRAINING_MASKS:
        raise unknown_name("training mask", kind, TRAINING_MASKS)
    num_dims = math.prod(event_shape)
    rate_key, pixel_key, half_key, kind_key = jax.random.split(key, 4)
    missing_rate = jax.random.uniform(rate_key, (num, 1))
    pixels = jax.random.uniform(pixel_key, (num, num_dims)) >= missing_rate
    if kind == "pixels":
        return pixels
    halves = jnp.asarray(half_masks(tuple(event_shape)))
    chosen = halves[jax.random.randint(half_key, (num,), 0, halves.shape[0])]
    if kind == "halves":
        return chosen
    use_pixels = jax.random.bernoulli(kind_key, 0.5, (num, 1))
    return jnp.where(use_pixels, pixels, chosen)
