"""A fixed permutation of one event axis (features of vectors, channels of images).

Map: ``y = x[..., perm, ...]`` along ``axis`` (``y_i = x_{perm[i]}``); inverse
``x = y[..., argsort(perm), ...]``. A permutation matrix has ``|det| = 1``, so both log-dets
are 0. Flows interleave permutations between coupling / autoregressive layers so that every
dimension is eventually transformed.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ConfigError, ShapeError


def reverse_permutation(d: int) -> jax.Array:
    """Return the order-reversing permutation ``[d - 1, ..., 1, 0]``.

    Args:
      d: number of elements.

    Returns:
      ``[d]`` int32 indices.
    """
    if d < 1:
        raise ConfigError(f"permutation size must be >= 1, got {d}")
    return jnp.arange(d - 1, -1, -1, dtype=jnp.int32)


def random_permutation(key: jax.Array, d: int) -> jax.Array:
    """Draw a uniformly random permutation of ``range(d)``.

    Args:
      key: PRNG key.
      d: number of elements.

    Returns:
      ``[d]`` int32 indices.
    """
    if d < 1:
        raise ConfigError(f"permutation size must be >= 1, got {d}")
    return jax.random.permutation(key, d).astype(jnp.int32)


def _check_shape(name: str, x: jax.Array, event_ndims: int, axis: int, size: int) -> None:
    """Raise ``ShapeError`` unless ``x`` has ``event_ndims`` event axes and ``size`` on ``axis``."""
    shape = tuple(jnp.shape(x))
    if len(shape) < event_ndims or shape[axis] != size:
        raise ShapeError(
            f"{name} expects inputs [*batch, *event] with {event_ndims} event axes and size "
            f"{size} on axis {axis}, got shape {shape}"
        )


def _zero_log_det(x: jax.Array, event_ndims: int) -> jax.Array:
    """Return zeros of ``x``'s batch shape (``x.shape[:-event_ndims]``) in a float dtype."""
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return jnp.zeros(x.shape[: x.ndim - event_ndims], dtype)


class Permute(distrax.Bijector):
    """Permute one event axis: ``y = take(x, perm, axis)``, log-det 0.

    Event shape: ``event_ndims`` trailing axes (1 for vectors ``[B, D]``, 3 for images
    ``[B, H, W, C]``); ``axis`` (negative, inside the event) is the permuted axis and must have
    size ``len(perm)``. Forward ``y_i = x_{perm[i]}``; inverse ``x = take(y, argsort(perm))``.
    Log-dets are zeros of the batch shape.

    Args:
      permutation: ``[d]`` integer array holding each of ``0 .. d-1`` once (checked when
        concrete; a traced permutation is trusted).
      axis: the event axis to permute, ``-event_ndims <= axis <= -1`` (default last).
      event_ndims: number of event axes.
    """

    def __init__(self, permutation: jax.Array, axis: int = -1, event_ndims: int = 1):
        if event_ndims < 1:
            raise ConfigError(f"Permute needs event_ndims >= 1, got {event_ndims}")
        if not -event_ndims <= axis <= -1:
            raise ConfigError(
                f"Permute axis must be a negative event axis in [-{event_ndims}, -1], got {axis}"
            )
        perm_shape = tuple(jnp.shape(permutation))
        if len(perm_shape) != 1:
            raise ShapeError(f"permutation must be a 1-D index array, got shape {perm_shape}")
        if isinstance(permutation, jax.core.Tracer):
            perm = jnp.asarray(permutation, jnp.int32)
            inverse = jnp.argsort(perm).astype(jnp.int32)
        else:
            perm_np = np.asarray(permutation)
            if not np.issubdtype(perm_np.dtype, np.integer) or not np.array_equal(
                np.sort(perm_np), np.arange(perm_np.shape[0])
            ):
                raise ConfigError(
                    f"permutation must contain each of 0..{perm_np.shape[0] - 1} exactly once, "
                    f"got {perm_np.tolist()}"
                )
            perm = jnp.asarray(perm_np, jnp.int32)
            inverse = jnp.asarray(np.argsort(perm_np), jnp.int32)
        super().__init__(event_ndims_in=event_ndims, is_constant_jacobian=True)
        self._perm = perm
        self._inverse_perm = inverse
        self._axis = axis
        self._size = perm_shape[0]

    @property
    def permutation(self) -> jax.Array:
        """The ``[d]`` forward index array."""
        return self._perm

    def _check(self, x: jax.Array) -> None:
        _check_shape(self.name, x, self.event_ndims_in, self._axis, self._size)

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``y = take(x, perm, axis)`` and log-det 0 (batch shape)."""
        self._check(x)
        return jnp.take(x, self._perm, axis=self._axis), _zero_log_det(x, self.event_ndims_in)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``x = take(y, argsort(perm), axis)`` and log-det 0 (batch shape)."""
        self._check(y)
        return jnp.take(y, self._inverse_perm, axis=self._axis), _zero_log_det(
            y, self.event_ndims_in
        )

    def same_as(self, other: distrax.Bijector) -> bool:
        """Return True if ``other`` is a ``Permute`` with the same indices, axis and event."""
        return (
            type(other) is Permute
            and other._axis == self._axis
            and other.event_ndims_in == self.event_ndims_in
            and other._size == self._size
            and bool(jnp.all(other._perm == self._perm))
        )
