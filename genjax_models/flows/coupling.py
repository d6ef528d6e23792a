"""Split coupling layers: RealNVP's affine coupling and NICE's additive coupling.

A coupling splits ``x [*batch, *event]`` along its LAST axis (features for vectors,
channels for images with ``event_ndims=3``) at ``split_index``:
``x_a = x[..., :k]``, ``x_b = x[..., k:]``. By default ``x_a`` conditions and ``x_b`` is
transformed; ``swap=True`` exchanges the roles. With ``(x_c, x_t)`` the (conditioning,
transformed) parts and ``theta = conditioner(x_c)``:

    forward:  y_c = x_c,  y_t = tau(x_t; theta)       (tau element-wise, invertible)
    log|det J| = sum over the event of log|tau'(x_t; theta)|

The Jacobian is block-triangular, so the log-det needs no autodiff, and only the changed
part is computed (unlike ``distrax.MaskedCoupling``, which transforms everything then masks).

``conditioner`` is any callable ``x_c [N, *event_c] -> theta`` returning ``N * |x_t| * P``
numbers, laid out as ``[N, *event_t[:-1], C_t * P]`` or ``[N, *event_t, P]`` with ``P`` the
:attr:`SplitCoupling.params_per_dim` of the coupling (so a conditioner needs
``out_features = C_t * P``). Bind a context into it for a conditional flow, e.g.
``functools.partial(module.apply, variables, context=c)``. Leading batch axes of any number
(none included) are flattened to one axis ``N`` for the conditioner.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError

Conditioner = Callable[[jax.Array], jax.Array]


def bounded_log_scale(raw: jax.Array, scale_bound: float) -> jax.Array:
    """Squash a raw log-scale into ``(-scale_bound, scale_bound)``: ``b * tanh(raw / b)``.

    Args:
      raw: unconstrained log-scales.
      scale_bound: ``b > 0``; the slope at ``raw = 0`` is 1.

    Returns:
      Log-scales of the same shape.
    """
    return scale_bound * jnp.tanh(raw / scale_bound)


def affine_elementwise(
    x: jax.Array, params: jax.Array, scale_bound: float, inverse: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Apply ``y = x * exp(s) + t`` (or its inverse) element-wise, ``(t, raw) = params[..., :2]``.

    Args:
      x: inputs ``[...]``.
      params: ``[..., 2]``: shift ``t`` and raw log-scale; ``s = bounded_log_scale(raw)``.
      scale_bound: bound of ``|s|``.
      inverse: apply ``x = (y - t) * exp(-s)`` instead.

    Returns:
      ``(y, log|dy/dx|)``, both shaped like ``x`` (the log-derivative is ``s``, or ``-s``).
    """
    shift = params[..., 0]
    log_scale = bounded_log_scale(params[..., 1], scale_bound)
    if inverse:
        return (x - shift) * jnp.exp(-log_scale), -log_scale
    return x * jnp.exp(log_scale) + shift, log_scale


class SplitCoupling(distrax.Bijector):
    """Base class of split couplings: ``y_c = x_c``, ``y_t = tau(x_t; conditioner(x_c))``.

    Subclasses set :attr:`params_per_dim` and implement ``_elementwise(x_t, params, inverse)``
    returning ``(y_t, log|d y_t / d x_t|)`` element-wise. Event shape ``[..., C]`` with
    ``event_ndims`` axes, split along the last; log-dets have the batch shape.

    Args:
      conditioner: ``x_c -> params`` (see the module docstring for the layout).
      split_index: ``k`` with ``1 <= k < C``: the parts are ``x[..., :k]`` and ``x[..., k:]``.
      event_ndims: number of event axes (1 for vectors, 3 for ``[H, W, C]`` images).
      swap: transform the first part ``x[..., :k]`` (conditioning on the second) instead.
    """

    params_per_dim: int = 1

    def __init__(
        self,
        conditioner: Conditioner,
        split_index: int,
        event_ndims: int = 1,
        swap: bool = False,
        *,
        is_constant_log_det: bool = False,
    ) -> None:
        if not callable(conditioner):
            raise ConfigError(f"conditioner must be callable, got {type(conditioner).__name__}")
        if int(split_index) < 1:
            raise ConfigError(f"split_index must be >= 1, got {split_index}")
        if int(event_ndims) < 1:
            raise ConfigError(f"event_ndims must be >= 1, got {event_ndims}")
        super().__init__(event_ndims_in=int(event_ndims), is_constant_log_det=is_constant_log_det)
        self.conditioner = conditioner
        self.split_index = int(split_index)
        self.swap = bool(swap)

    def _elementwise(
        self, x: jax.Array, params: jax.Array, inverse: bool
    ) -> tuple[jax.Array, jax.Array]:
        raise NotImplementedError

    def _apply(self, x: jax.Array, inverse: bool) -> tuple[jax.Array, jax.Array]:
        nd = self.event_ndims_in
        if x.ndim < nd:
            raise ShapeError(
                f"{self.name} expects inputs [*batch, *event] with {nd} event axes, got {x.shape}"
            )
        channels = x.shape[-1]
        k = self.split_index
        if not 1 <= k < channels:
            raise ShapeError(
                f"{self.name}: split_index={k} needs 1 <= split_index < {channels} "
                f"(the size of the last axis of {x.shape})"
            )
        batch_shape, event_shape = x.shape[: x.ndim - nd], x.shape[x.ndim - nd :]
        flat = x.reshape(math.prod(batch_shape), *event_shape)
        first, second = flat[..., :k], flat[..., k:]
        x_c, x_t = (second, first) if self.swap else (first, second)
        params = self._params(x_c, x_t)
        y_t, ldj = self._elementwise(x_t, params, inverse)
        y = jnp.concatenate([y_t, x_c] if self.swap else [x_c, y_t], axis=-1)
        log_det = jnp.sum(ldj, axis=tuple(range(1, nd + 1)))
        return y.reshape(x.shape), log_det.reshape(batch_shape)

    def _params(self, x_c: jax.Array, x_t: jax.Array) -> jax.Array:
        params = jnp.asarray(self.conditioner(x_c))
        p = self.params_per_dim
        if params.size != x_t.size * p or params.shape[0] != x_t.shape[0]:
            raise ShapeError(
                f"{self.name}: the conditioner returned shape {params.shape}; expected "
                f"{x_t.shape[:-1] + (x_t.shape[-1] * p,)} (out_features = {x_t.shape[-1]} "
                f"transformed channels x {p} parameters each)"
            )
        return params.reshape(*x_t.shape, p).astype(x_t.dtype)

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``y = f(x)`` and ``log|det J_f(x)|`` (shape: the batch shape)."""
        return self._apply(x, inverse=False)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``x = f^{-1}(y)`` and ``log|det J_{f^{-1}}(y)|`` (shape: the batch shape)."""
        return self._apply(y, inverse=True)


class AffineCoupling(SplitCoupling):
    """RealNVP affine coupling (Dinh et al., 2017) with a bounded log-scale.

    With ``(t, raw) = conditioner(x_c)`` per transformed element and
    ``s = scale_bound * tanh(raw / scale_bound)`` (so ``|s| < scale_bound``, slope 1 at 0):

        forward:  y_t = x_t * exp(s) + t,            log|det J| = sum_event s
        inverse:  x_t = (y_t - t) * exp(-s),         log|det J^{-1}| = -sum_event s

    ``params_per_dim = 2`` (shift first, then raw log-scale); a zero conditioner output
    gives the identity. Event shape ``[..., C]`` (``event_ndims`` axes), log-dets ``[*batch]``.

    Args:
      conditioner: ``x_c -> params`` with ``out_features = 2 * C_t``.
      split_index: where the last axis is split (``1 <= split_index < C``).
      event_ndims: 1 for vectors, 3 for images ``[H, W, C]``.
      swap: transform the first part instead of the second.
      scale_bound: bound of the log-scale (default 2: scales in ``(e^-2, e^2)``).
    """

    params_per_dim = 2

    def __init__(
        self,
        conditioner: Conditioner,
        split_index: int,
        event_ndims: int = 1,
        swap: bool = False,
        scale_bound: float = 2.0,
    ) -> None:
        if not scale_bound > 0:
            raise ConfigError(f"scale_bound must be positive, got {scale_bound}")
        super().__init__(conditioner, split_index, event_ndims, swap)
        self.scale_bound = float(scale_bound)

    def _elementwise(
        self, x: jax.Array, params: jax.Array, inverse: bool
    ) -> tuple[jax.Array, jax.Array]:
        return affine_elementwise(x, params, self.scale_bound, inverse)


class AdditiveCoupling(SplitCoupling):
    """NICE additive coupling (Dinh et al., 2015): volume preserving.

    With ``t = conditioner(x_c)`` per transformed element:

        forward:  y_t = x_t + t,     inverse:  x_t = y_t - t,     log|det J| = 0

    ``params_per_dim = 1``. Event shape ``[..., C]`` (``event_ndims`` axes), log-dets
    ``[*batch]`` (zeros).

    Args:
      conditioner: ``x_c -> t`` with ``out_features = C_t``.
      split_index: where the last axis is split (``1 <= split_index < C``).
      event_ndims: 1 for vectors, 3 for images ``[H, W, C]``.
      swap: transform the first part instead of the second.
    """

    params_per_dim = 1

    def __init__(
        self,
        conditioner: Conditioner,
        split_index: int,
        event_ndims: int = 1,
        swap: bool = False,
    ) -> None:
        super().__init__(conditioner, split_index, event_ndims, swap, is_constant_log_det=True)

    def _elementwise(
        self, x: jax.Array, params: jax.Array, inverse: bool
    ) -> tuple[jax.Array, jax.Array]:
        shift = params[..., 0]
        y = x - shift if inverse else x + shift
        return y, jnp.zeros_like(x)
