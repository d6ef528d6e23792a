"""Squeeze (space-to-depth) of channels-last images, as in RealNVP and Glow.

Forward: ``[*batch, H, W, C] -> [*batch, H/f, W/f, f*f*C]``; each ``f x f`` spatial block
becomes one pixel with its ``f*f*C`` values stacked as ``(row in block, column in block,
channel)`` (C fastest):

    y[..., i, j, (a * f + b) * C + c] = x[..., i * f + a, j * f + b, c].

A permutation of the entries: log-det 0. The output event shape differs from the input's
(same size). :func:`squeeze` and :func:`unsqueeze` are the plain array functions.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError


def _check_image(name: str, x: jax.Array, factor: int, squeezed: bool) -> None:
    shape = tuple(jnp.shape(x))
    if len(shape) < 3:
        raise ShapeError(f"{name} expects images [*batch, H, W, C] (channels last), got {shape}")
    h, w, c = shape[-3:]
    if squeezed:
        if c % (factor * factor):
            raise ShapeError(
                f"{name}: the channel count {c} of {shape} is not divisible by "
                f"factor**2 = {factor * factor}"
            )
    elif h % factor or w % factor:
        raise ShapeError(
            f"{name}: height {h} and width {w} of {shape} must both be divisible by the "
            f"squeeze factor {factor}"
        )


def squeeze(x: jax.Array, factor: int = 2) -> jax.Array:
    """Rearrange ``[*batch, H, W, C]`` into ``[*batch, H/f, W/f, f*f*C]`` (space to depth).

    Args:
      x: channels-last images; H and W divisible by ``factor``.
      factor: f, the block side.

    Returns:
      The squeezed images (see the module docstring for the layout).
    """
    _check_image("squeeze", x, factor, squeezed=False)
    *batch, h, w, c = x.shape
    y = x.reshape(*batch, h // factor, factor, w // factor, factor, c)
    n = len(batch)
    y = jnp.moveaxis(y, n + 2, n + 1)  # [..., H/f, W/f, f(row), f(col), C]
    return y.reshape(*batch, h // factor, w // factor, factor * factor * c)


def unsqueeze(y: jax.Array, factor: int = 2) -> jax.Array:
    """Invert :func:`squeeze`: ``[*batch, H, W, f*f*C] -> [*batch, H*f, W*f, C]``.

    Args:
      y: squeezed images; the channel count divisible by ``factor**2``.
      factor: f, the block side.

    Returns:
      The un-squeezed images.
    """
    _check_image("unsqueeze", y, factor, squeezed=True)
    *batch, h, w, cf = y.shape
    c = cf // (factor * factor)
    x = y.reshape(*batch, h, w, factor, factor, c)
    n = len(batch)
    x = jnp.moveaxis(x, n + 2, n + 1)  # [..., H, f(row), W, f(col), C]
    return x.reshape(*batch, h * factor, w * factor, c)


class Squeeze(distrax.Bijector):
    """Space-to-depth ``[*batch, H, W, C] -> [*batch, H/f, W/f, f*f*C]``, log-det 0.

    Event shape: in ``[H, W, C]`` (H, W divisible by f, else ``ShapeError``), out
    ``[H/f, W/f, f*f*C]`` (``event_ndims_in = event_ndims_out = 3``). The inverse is
    depth-to-space. Log-dets are zeros of the batch shape.

    Args:
      factor: f >= 1, the side of the spatial blocks (default 2).
    """

    def __init__(self, factor: int = 2):
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ConfigError(f"Squeeze factor must be a positive int, got {factor!r}")
        super().__init__(event_ndims_in=3, is_constant_jacobian=True)
        self._factor = factor

    @property
    def factor(self) -> int:
        """The block side f."""
        return self._factor

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Squeeze ``x`` (space to depth); log-det zeros ``[*batch]``."""
        y = squeeze(x, self._factor)
        return y, jnp.zeros(x.shape[:-3], _float_dtype(x))

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Un-squeeze ``y`` (depth to space); log-det zeros ``[*batch]``."""
        x = unsqueeze(y, self._factor)
        return x, jnp.zeros(y.shape[:-3], _float_dtype(y))

    def same_as(self, other: distrax.Bijector) -> bool:
        """Return True if ``other`` is a ``Squeeze`` with the same factor."""
        return type(other) is Squeeze and other.factor == self._factor


def _float_dtype(x: jax.Array) -> jnp.dtype:
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
