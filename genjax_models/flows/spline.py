"""Rational-quadratic spline coupling (Neural Spline Flows, Durkan et al., 2019).

Each transformed element goes through a monotone rational-quadratic spline
``g: [-B, B] -> [-B, B]`` with ``K`` bins, built by ``distrax.RationalQuadraticSpline``
from ``3K + 1`` unconstrained numbers per element (``K`` widths, ``K`` heights, ``K + 1``
knot slopes; softmax / softplus inside distrax). ``log|g'(x)|`` is analytic, the inverse
solves a quadratic. All-zero parameters give uniform bins and unit slopes: the identity.

Tails (what happens outside ``[-B, B]``):

- ``tails="linear"`` (default, the NSF paper's choice): the boundary knot slopes are fixed
  to 1 (``boundary_slopes='identity'``), so the map is the identity outside ``[-B, B]``
  (log-derivative 0) and C^1 everywhere. Any real input is fine.
- ``tails=None``: a spline on the bounded interval, for data known to lie in ``[-B, B]``
  (e.g. after a sigmoid). The boundary slopes are learned (``'unconstrained'``). A point
  outside the interval is NOT an error inside compiled code (jitted code cannot raise on
  values): distrax extends the spline linearly with the boundary slope, so values,
  log-dets and gradients stay finite (never NaN) and the map stays a bijection of the real
  line, but the density assigned there is an extrapolation the model never fitted. Call
  :func:`check_spline_domain` (or :meth:`SplineCoupling.check_domain`) eagerly on data to
  reject such points with a :class:`~genjax_models.errors.DataError`.
"""

from __future__ import annotations

import functools
from typing import Literal

import distrax
import jax
import numpy as np

from genjax_models.errors import ConfigError, DataError, unknown_name
from genjax_models.flows.coupling import Conditioner, SplitCoupling

Tails = Literal["linear"] | None
TAILS: tuple[str, ...] = ("linear", "None")


def spline_param_size(num_bins: int) -> int:
    """Return the number of unconstrained parameters of one spline: ``3 * num_bins + 1``.

    Args:
      num_bins: K >= 1.

    Returns:
      ``3K + 1`` (K widths, K heights, K + 1 knot slopes).
    """
    if int(num_bins) < 1:
        raise ConfigError(f"num_bins must be >= 1, got {num_bins}")
    return 3 * int(num_bins) + 1


def check_tails(tails: Tails) -> None:
    """Raise an UnknownNameError unless ``tails`` is ``"linear"`` or ``None``."""
    if tails is not None and tails != "linear":
        raise unknown_name("spline tails", str(tails), TAILS)


@functools.partial(
    jax.jit, static_argnames=("bound", "tails", "inverse", "min_bin_size", "min_knot_slope")
)
def spline_elementwise(
    x: jax.Array,
    params: jax.Array,
    bound: float,
    tails: Tails = "linear",
    inverse: bool = False,
    min_bin_size: float = 1e-3,
    min_knot_slope: float = 1e-3,
) -> tuple[jax.Array, jax.Array]:
    """Apply a rational-quadratic spline (or its inverse) to every element of ``x``.

    Args:
      x: inputs ``[...]``.
      params: ``[..., 3K + 1]`` unconstrained spline parameters, one spline per element.
      bound: ``B``; the spline acts on ``[-B, B]``.
      tails: ``"linear"`` (identity outside) or ``None`` (learned boundary slopes, linear
        extension outside; see the module docstring).
      inverse: apply ``g^{-1}`` instead of ``g``.
      min_bin_size: smallest bin width / height (1e-3 as in the NSF code; distrax's own
        default 1e-4 allows near-flat pieces whose inverse loses precision).
      min_knot_slope: smallest knot slope (1e-3, likewise).

    Returns:
      ``(y, log|dy/dx|)``, both shaped like ``x``. (Jitted, with the options static, so
      eager calls compile the whole spline once per shape instead of op by op.)
    """
    check_tails(tails)
    spline = distrax.RationalQuadraticSpline(
        params,
        range_min=-float(bound),
        range_max=float(bound),
        boundary_slopes="identity" if tails == "linear" else "unconstrained",
        min_bin_size=min_bin_size,
        min_knot_slope=min_knot_slope,
    )
    if inverse:
        return spline.inverse_and_log_det(x)
    return spline.forward_and_log_det(x)


def check_spline_domain(x: jax.Array, bound: float, *, name: str = "input") -> None:
    """Raise a DataError unless every value of ``x`` is finite and lies in ``[-bound, bound]``.

    Eager only (it reads the values): call it on data before training or evaluating a flow
    whose splines have ``tails=None``.

    Args:
      x: values to check, any shape.
      bound: ``B``.
      name: what ``x`` is, for the message.
    """
    if isinstance(x, jax.core.Tracer):
        raise ConfigError(
            "check_spline_domain reads values and cannot run inside jit/vmap/grad; "
            "call it eagerly on the data"
        )
    values = np.asarray(x)
    bad = ~np.isfinite(values) | (np.abs(values) > bound)
    if bad.any():
        count = int(bad.sum())
        worst = values[bad].flat[0]
        raise DataError(
            f"{count} {name} value(s) fall outside the spline interval [-{bound}, {bound}] "
            f"(e.g. {worst}); rescale the data into the interval or use tails='linear'"
        )


class SplineCoupling(SplitCoupling):
    """Rational-quadratic spline coupling (NSF-RQ-C): ``y_t = g(x_t; conditioner(x_c))``.

    ``g`` is a monotone K-bin rational-quadratic spline on ``[-bound, bound]`` per transformed
    element, with tails as in the module docstring:

        forward:  y_t = g(x_t),        log|det J| = sum_event log g'(x_t)
        inverse:  x_t = g^{-1}(y_t),   log|det J^{-1}| = -sum_event log g'(x_t)

    ``params_per_dim = 3K + 1`` (:func:`spline_param_size`); zero parameters give the
    identity. Event shape ``[..., C]`` (``event_ndims`` axes), log-dets ``[*batch]``.

    Args:
      conditioner: ``x_c -> params`` with ``out_features = C_t * (3K + 1)``.
      split_index: where the last axis is split (``1 <= split_index < C``).
      num_bins: K.
      bound: B > 0.
      tails: ``"linear"`` (identity outside ``[-B, B]``) or ``None`` (bounded spline).
      event_ndims: 1 for vectors, 3 for images ``[H, W, C]``.
      swap: transform the first part instead of the second.
      min_bin_size, min_knot_slope: numerical floors passed to distrax (see
        :func:`spline_elementwise`).
    """

    def __init__(
        self,
        conditioner: Conditioner,
        split_index: int,
        num_bins: int = 8,
        bound: float = 3.0,
        tails: Tails = "linear",
        event_ndims: int = 1,
        swap: bool = False,
        min_bin_size: float = 1e-3,
        min_knot_slope: float = 1e-3,
    ) -> None:
        check_tails(tails)
        if not bound > 0:
            raise ConfigError(f"bound must be positive, got {bound}")
        super().__init__(conditioner, split_index, event_ndims, swap)
        self.params_per_dim = spline_param_size(num_bins)
        self.num_bins = int(num_bins)
        self.bound = float(bound)
        self.tails = tails
        self.min_bin_size = float(min_bin_size)
        self.min_knot_slope = float(min_knot_slope)

    def _elementwise(
        self, x: jax.Array, params: jax.Array, inverse: bool
    ) -> tuple[jax.Array, jax.Array]:
        return spline_elementwise(
            x, params, self.bound, self.tails, inverse, self.min_bin_size, self.min_knot_slope
        )

    def check_domain(self, x: jax.Array) -> None:
        """Raise a DataError if the part of ``x`` this layer transforms leaves ``[-B, B]``.

        Only meaningful for ``tails=None`` (with linear tails every input is valid, and this
        does nothing). Eager only.

        Args:
          x: ``[*batch, *event]`` inputs of this layer (forward direction).
        """
        if self.tails is None:
            k = self.split_index
            part = x[..., :k] if self.swap else x[..., k:]
            check_spline_domain(part, self.bound, name=f"{self.name} input")
