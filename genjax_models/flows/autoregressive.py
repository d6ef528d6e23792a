"""Masked autoregressive flows: MAF (Papamakarios et al., 2017) and IAF (Kingma et al., 2016).

Both use an autoregressive conditioner ``theta: [N, D] -> [N, D, P]`` (e.g. a bound
:class:`~genjax_models.nn.made.MADE`) whose row ``theta(u)[:, i]`` depends only on the
``u_j`` earlier than ``u_i`` in some ordering, and an element-wise monotone map ``tau``
(``"affine"``: ``tau(z) = z * exp(s) + t`` with ``s = b * tanh(raw / b)``, ``P = 2``;
``"spline"``: a rational-quadratic spline, ``P = 3K + 1``).

MAF (:class:`MaskedAutoregressive`), with ``forward`` mapping latent ``z`` to data ``x``:

    x_i = tau(z_i; theta(x)_i)                       (theta_i sees x_{<i} only)
    inverse (x -> z, density evaluation): z = tau^{-1}(x; theta(x))      ONE conditioner pass
    forward (z -> x, sampling): D passes; pass k fixes the k-th variable of the ordering,
        run as a ``lax.scan`` of length D (no Python loop, constant compile time in D)
    log|det J_forward| = sum_i log tau'(z_i; theta(x)_i)

The Jacobian is triangular (in the ordering), so the log-det is the sum of the element-wise
log-derivatives. IAF (:class:`InverseAutoregressive`) is exactly ``distrax.Inverse`` of the
MAF with the same conditioner: its forward (sampling) is one pass, ``x = tau^{-1}(z;
theta(z))`` with ``theta`` seeing ``z``, and its inverse (density of external data) is
sequential. Event shape ``[D]``, batches ``[*batch, D]`` (flattened to ``[N, D]`` for the
conditioner), log-dets ``[*batch]``.

Initialise a Flax conditioner OUTSIDE the flow (``variables = made.init(key, x)``), then
bind it: ``functools.partial(made.apply, variables)``; a module first initialised inside
the scan raises ``UnexpectedTracerError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError, unknown_name
from genjax_models.flows.coupling import affine_elementwise
from genjax_models.flows.spline import Tails, check_tails, spline_elementwise, spline_param_size

TRANSFORMS: tuple[str, ...] = ("affine", "spline")
Transform = Literal["affine", "spline"]


class MaskedAutoregressive(distrax.Bijector):
    """Masked autoregressive flow layer (MAF): cheap density, sequential sampling.

    Forward (z -> x): ``x_i = tau(z_i; theta(x)_i)``, computed with D conditioner passes in a
    ``lax.scan``. Inverse (x -> z): ``z = tau^{-1}(x; theta(x))``, one pass.
    ``log|det J_forward| = sum_i log tau'(z_i)``; event shape ``[D]``; log-dets ``[*batch]``.

    Args:
      conditioner: autoregressive map ``[N, D] -> [N, D, P]`` (``P = num_params``).
      event_size: D.
      transform: ``"affine"`` (``P = 2``: shift, raw log-scale) or ``"spline"``
        (``P = 3 * num_bins + 1``).
      num_bins: K, for ``"spline"``.
      bound: spline interval ``[-bound, bound]``, for ``"spline"``.
      tails: spline tails, ``"linear"`` (identity outside) or ``None``
        (see :mod:`genjax_models.flows.spline`).
      scale_bound: bound of the affine log-scale, ``s = b * tanh(raw / b)``.
    """

    def __init__(
        self,
        conditioner: Callable[[jax.Array], jax.Array],
        event_size: int,
        transform: Transform = "affine",
        num_bins: int = 8,
        bound: float = 3.0,
        tails: Tails = "linear",
        scale_bound: float = 2.0,
    ) -> None:
        if not callable(conditioner):
            raise ConfigError(f"conditioner must be callable, got {type(conditioner).__name__}")
        if int(event_size) < 1:
            raise ConfigError(f"event_size must be >= 1, got {event_size}")
        if transform not in TRANSFORMS:
            raise unknown_name("autoregressive transform", str(transform), TRANSFORMS)
        check_tails(tails)
        if not bound > 0 or not scale_bound > 0:
            raise ConfigError(f"bound and scale_bound must be positive, got {bound}, {scale_bound}")
        super().__init__(event_ndims_in=1)
        self.conditioner = conditioner
        self.event_size = int(event_size)
        self.transform = transform
        self.num_bins = int(num_bins)
        self.bound = float(bound)
        self.tails = tails
        self.scale_bound = float(scale_bound)
        self.num_params = 2 if transform == "affine" else spline_param_size(num_bins)

    def _flatten(self, x: jax.Array) -> tuple[jax.Array, tuple[int, ...]]:
        if x.ndim < 1 or x.shape[-1] != self.event_size:
            raise ShapeError(
                f"{self.name} expects inputs [*batch, {self.event_size}], got {x.shape}"
            )
        batch_shape = x.shape[:-1]
        return x.reshape(math.prod(batch_shape), self.event_size), batch_shape

    def _params(self, u: jax.Array) -> jax.Array:
        params = jnp.asarray(self.conditioner(u))
        expected = (u.shape[0], self.event_size, self.num_params)
        if params.shape != expected:
            raise ShapeError(
                f"{self.name}: the conditioner returned shape {params.shape}, expected {expected} "
                f"([N, D, num_params] with num_params={self.num_params} for {self.transform!r})"
            )
        return params.astype(u.dtype)

    def _tau(self, u: jax.Array, params: jax.Array, inverse: bool) -> tuple[jax.Array, jax.Array]:
        """Element-wise ``tau`` (or its inverse); returns the value and the log-derivative."""
        if self.transform == "affine":
            return affine_elementwise(u, params, self.scale_bound, inverse)
        return spline_elementwise(u, params, self.bound, self.tails, inverse)

    def _one_pass(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``z = tau^{-1}(x; theta(x))`` and ``log|det dz/dx|`` on ``[N, D]``."""
        z, ldj = self._tau(x, self._params(x), inverse=True)
        return z, jnp.sum(ldj, axis=-1)

    def _sequential(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Solve ``x = tau(z; theta(x))`` by D passes in a scan; return x, ``log|det dx/dz|``."""

        def step(carry, _):
            x, _ = carry
            x_new, ldj = self._tau(z, self._params(x), inverse=False)
            return (x_new, jnp.sum(ldj, axis=-1)), None

        init = (jnp.zeros_like(z), jnp.zeros(z.shape[:1], z.dtype))
        (x, ldj), _ = jax.lax.scan(step, init, None, length=self.event_size)
        return x, ldj

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map latent z to data (sequential, D passes); return it and ``log|det J|``."""
        flat, batch_shape = self._flatten(x)
        y, ldj = self._sequential(flat)
        return y.reshape(x.shape), ldj.reshape(batch_shape)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map data to latent z (one pass); return it and ``log|det J^{-1}|`` ``[*batch]``."""
        flat, batch_shape = self._flatten(y)
        z, ldj = self._one_pass(flat)
        return z.reshape(y.shape), ldj.reshape(batch_shape)


class InverseAutoregressive(distrax.Bijector):
    """Inverse autoregressive flow layer (IAF): one-pass sampling, sequential density.

    Exactly ``distrax.Inverse(MaskedAutoregressive(conditioner, ...))``:

        forward (z -> x, one pass):  x = tau^{-1}(z; theta(z))
            (affine: x_i = (z_i - t_i(z_{<i})) * exp(-s_i(z_{<i})))
        inverse (x -> z, D passes in a lax.scan): solve x = tau^{-1}(z; theta(z)) for z
        log|det J_forward| = -sum_i log tau'(x_i; theta(z)_i)

    Event shape ``[D]``; log-dets ``[*batch]``. Arguments as :class:`MaskedAutoregressive`.
    """

    def __init__(
        self,
        conditioner: Callable[[jax.Array], jax.Array],
        event_size: int,
        transform: Transform = "affine",
        num_bins: int = 8,
        bound: float = 3.0,
        tails: Tails = "linear",
        scale_bound: float = 2.0,
    ) -> None:
        super().__init__(event_ndims_in=1)
        self.maf = MaskedAutoregressive(
            conditioner, event_size, transform, num_bins, bound, tails, scale_bound
        )

    @property
    def num_params(self) -> int:
        """Parameters per variable the conditioner must output."""
        return self.maf.num_params

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map latent z to data (one pass); return it and ``log|det J|`` ``[*batch]``."""
        return self.maf.inverse_and_log_det(x)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map data to latent z (sequential, D passes); return it and ``log|det J^{-1}|``."""
        return self.maf.forward_and_log_det(y)
