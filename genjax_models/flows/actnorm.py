"""Activation normalisation (Glow): a per-feature / per-channel affine map.

Forward (latent z -> data x): ``x = z * exp(log_scale) + shift`` on the last axis, with
``shift, log_scale`` of shape ``[C]`` broadcast over every other event position. Inverse
(data -> latent, the density direction): ``z = (x - shift) * exp(-log_scale)``.
Log-det (forward): ``N * sum(log_scale)`` per example, N = the number of positions
(product of the event axes but the last: ``H * W`` for images ``[B, H, W, C]``, 1 for vectors).

Data-dependent initialisation (:func:`actnorm_init`): ``shift = mean(x)``,
``log_scale = log(std(x))`` per channel over the batch (and all positions), so that the
INVERSE map x -> z sends the initialisation batch to zero mean, unit variance per channel.
"""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError

ActNormParams = dict[str, jax.Array]


def actnorm_init(x: jax.Array, event_ndims: int = 1, eps: float = 1e-6) -> ActNormParams:
    """Initialise ActNorm from data so that the inverse map whitens each channel of ``x``.

    With ``shift = mean`` and ``log_scale = 0.5 * log(var + eps)`` (per channel, over the batch
    and every position), ``z = (x - shift) * exp(-log_scale)`` has zero mean and variance
    ``var / (var + eps)`` (1 up to ``eps``) per channel on ``x``: ActNorm's inverse (x -> z)
    normalises, as Glow's data-to-latent pass does. Pure and jittable.

    Args:
      x: ``[*batch, *event]`` data at the ActNorm's input in the data -> latent direction
        (i.e. its forward output side), e.g. ``[B, H, W, C]`` with ``event_ndims=3``.
      event_ndims: number of event axes (1 for vectors, 3 for images).
      eps: variance floor keeping ``log_scale`` finite for constant channels.

    Returns:
      ``{"shift": [C], "log_scale": [C]}``.
    """
    x = jnp.asarray(x)
    if event_ndims < 1 or x.ndim < event_ndims + 1:
        raise ShapeError(
            f"actnorm_init needs a batch [B, *event] with {event_ndims} event axes "
            f"(event_ndims >= 1), got shape {tuple(x.shape)}"
        )
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.var(x, axis=axes)
    return {"shift": mean, "log_scale": 0.5 * jnp.log(var + eps)}


def actnorm_identity(c: int, dtype: jnp.dtype = jnp.float32) -> ActNormParams:
    """Return identity ActNorm parameters (zero shift and log-scale) for ``c`` channels."""
    if c < 1:
        raise ConfigError(f"actnorm_identity needs c >= 1, got {c}")
    return {"shift": jnp.zeros((c,), dtype), "log_scale": jnp.zeros((c,), dtype)}


class ActNorm(distrax.Bijector):
    """Per-channel affine map ``x = z * exp(log_scale) + shift`` on the last axis.

    Event shape: ``event_ndims`` trailing axes whose last has size C (vectors ``[B, D]`` with
    ``event_ndims=1``, images ``[B, H, W, C]`` with ``event_ndims=3``). Log-det (forward):
    ``N * sum(log_scale)`` per example with N the product of the other event axes (``H * W``).
    Inverse ``z = (x - shift) * exp(-log_scale)``, log-det ``-N * sum(log_scale)``.

    Args:
      shift: ``[C]``.
      log_scale: ``[C]``.
      event_ndims: number of event axes.
    """

    def __init__(self, shift: jax.Array, log_scale: jax.Array, event_ndims: int = 1):
        if event_ndims < 1:
            raise ConfigError(f"ActNorm needs event_ndims >= 1, got {event_ndims}")
        shift_shape, scale_shape = tuple(jnp.shape(shift)), tuple(jnp.shape(log_scale))
        if len(shift_shape) != 1 or shift_shape != scale_shape:
            raise ShapeError(
                f"ActNorm shift and log_scale must both have shape [C], got {shift_shape} "
                f"and {scale_shape}"
            )
        super().__init__(event_ndims_in=event_ndims, is_constant_jacobian=True)
        self._shift = shift
        self._log_scale = log_scale
        self._channels = shift_shape[0]

    @classmethod
    def from_params(cls, params: ActNormParams, event_ndims: int = 1) -> ActNorm:
        """Build from ``{"shift", "log_scale"}`` (see :func:`actnorm_init`)."""
        return cls(params["shift"], params["log_scale"], event_ndims)

    def _check(self, x: jax.Array) -> None:
        shape = tuple(jnp.shape(x))
        if len(shape) < self.event_ndims_in or shape[-1] != self._channels:
            raise ShapeError(
                f"{self.name} expects inputs [*batch, *event] with {self.event_ndims_in} event "
                f"axes and last axis of size {self._channels}, got shape {shape}"
            )

    def _log_det(self, x: jax.Array) -> jax.Array:
        positions = math.prod(x.shape[x.ndim - self.event_ndims_in : -1])
        ldj = positions * jnp.sum(self._log_scale)
        return jnp.broadcast_to(
            ldj.astype(jnp.result_type(x, ldj)), x.shape[: x.ndim - self.event_ndims_in]
        )

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``x * exp(log_scale) + shift`` and ``N * sum(log_scale)`` (batch shape)."""
        self._check(x)
        return x * jnp.exp(self._log_scale) + self._shift, self._log_det(x)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``(y - shift) * exp(-log_scale)`` and ``-N * sum(log_scale)`` (batch shape)."""
        self._check(y)
        return (y - self._shift) * jnp.exp(-self._log_scale), -self._log_det(y)
