"""The logit pre-processing bijector of RealNVP for data in [0, 1].

With ``p(x) = alpha + (1 - 2 alpha) x`` (squeezes [0, 1] into [alpha, 1 - alpha]):

    inverse (data -> R):  y = logit(p(x)) = log p - log(1 - p),
    forward (R -> data):  x = (sigmoid(y) - alpha) / (1 - 2 alpha).

Log-dets, elementwise then summed over the ``event_ndims`` event axes:

    forward:  log sigmoid(y) + log sigmoid(-y) - log(1 - 2 alpha),
    inverse:  log(1 - 2 alpha) - log p - log(1 - p).

Domain: the inverse is an exact bijection from the open interval
``(-alpha / (1 - 2 alpha), (1 - alpha) / (1 - 2 alpha))`` (which contains [0, 1] when
alpha > 0) onto R, and the forward maps R onto that interval. Inputs to the inverse outside
it (e.g. data slightly below 0 or above 1 when alpha = 0, or far outside [0, 1]) are clamped
to ``p in [eps, 1 - eps]`` (``eps`` the dtype's machine epsilon): outputs and log-dets stay
finite (``|y| <= ~36.7`` in float64, ``~15.9`` in float32) and their gradient with respect
to x is zero there. Only a NaN input gives a NaN output. Forward inputs beyond those bounds
saturate the same way, so ``inverse(forward(y)) == y`` holds for ``|y|`` below them.
"""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError


class Logit(distrax.Bijector):
    """RealNVP logit transform: forward ``x = (sigmoid(y) - alpha) / (1 - 2 alpha)``.

    Elementwise; event shape: any ``event_ndims`` trailing axes (1 for vectors, 3 for
    ``[H, W, C]`` images), over which the log-det is summed (output ``[*batch]``).
    Forward log-det ``sum(log sigmoid(y) + log sigmoid(-y)) - n log(1 - 2 alpha)`` with n the
    event size; the inverse ``y = logit(alpha + (1 - 2 alpha) x)`` has minus that log-det at
    its output. See the module docstring for inputs outside [0, 1].

    Args:
      alpha: the squeeze, ``0 <= alpha < 0.5`` (RealNVP uses 0.05 on CIFAR-10, 1e-6 on MNIST).
      event_ndims: number of event axes to sum log-dets over.
    """

    def __init__(self, alpha: float = 0.05, event_ndims: int = 1):
        alpha = float(alpha)
        if not 0.0 <= alpha < 0.5:
            raise ConfigError(f"Logit alpha must satisfy 0 <= alpha < 0.5, got {alpha}")
        if event_ndims < 0:
            raise ConfigError(f"Logit event_ndims must be >= 0, got {event_ndims}")
        super().__init__(event_ndims_in=event_ndims)
        self._alpha = alpha
        self._log_scale = math.log1p(-2.0 * alpha)  # log(1 - 2 alpha)

    @property
    def alpha(self) -> float:
        """The squeeze alpha."""
        return self._alpha

    def _check(self, x: jax.Array) -> None:
        if jnp.ndim(x) < self.event_ndims_in:
            raise ShapeError(
                f"{self.name} expects inputs [*batch, *event] with {self.event_ndims_in} event "
                f"axes, got shape {tuple(jnp.shape(x))}"
            )

    def _sum_event(self, v: jax.Array) -> jax.Array:
        axes = tuple(range(v.ndim - self.event_ndims_in, v.ndim))
        return jnp.sum(v, axis=axes)

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map R -> data: ``(sigmoid(x) - alpha) / (1 - 2 alpha)`` and its log-det ``[*batch]``."""
        self._check(x)
        y = (jax.nn.sigmoid(x) - self._alpha) / (1.0 - 2.0 * self._alpha)
        ldj = jax.nn.log_sigmoid(x) + jax.nn.log_sigmoid(-x) - self._log_scale
        return y, self._sum_event(ldj)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map data -> R: ``logit(alpha + (1 - 2 alpha) y)`` and its log-det ``[*batch]``."""
        self._check(y)
        dtype = y.dtype if jnp.issubdtype(y.dtype, jnp.floating) else jnp.float32
        eps = jnp.finfo(dtype).eps
        p = jnp.clip(self._alpha + (1.0 - 2.0 * self._alpha) * y.astype(dtype), eps, 1.0 - eps)
        log_p, log_q = jnp.log(p), jnp.log1p(-p)
        return log_p - log_q, self._sum_event(self._log_scale - log_p - log_q)

    def same_as(self, other: distrax.Bijector) -> bool:
        """Return True if ``other`` is a ``Logit`` with the same alpha and event rank."""
        return (
            type(other) is Logit
            and other.alpha == self._alpha
            and other.event_ndims_in == self.event_ndims_in
        )
