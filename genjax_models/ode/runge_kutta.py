"""One explicit Runge-Kutta engine driven by Butcher tableaus.

An s-stage explicit Runge-Kutta method for dy/dt = f(y, t) is its tableau (c, A, b): with step h,

    k_j = f(y + h sum_{l<j} A_jl k_l, t + c_j h),   j = 1..s,
    y'  = y + h sum_j b_j k_j.

:func:`explicit_rk` runs the stages of any tableau given a ``slope(j, y_j)`` callback, so the same
stage loop serves the generic vector-field step (:func:`rk_step`, used by
:func:`genjax_models.ode.integrate`) and the probability-flow ODE samplers, whose slope is a
precomputed combination k_j = c_y y_j + c_0 D(y_j) of the state and the denoiser. The state may be
any pytree of arrays. Zero entries of A and b are skipped, and each update is written
``y + (h a) k`` term by term (the order of float operations is part of the contract: the samplers'
regression test pins it).

============  ============================================  =====  ======
name          tableau (c; rows of A; b)                     order  stages
============  ============================================  =====  ======
``euler``     (0); (); (1)                                  1      1
``midpoint``  (0, 1/2); (1/2); (0, 1)                       2      2
``heun``      (0, 1); (1); (1/2, 1/2)                       2      2
``rk4``       (0, 1/2, 1/2, 1); (1/2), (0, 1/2), (0, 0, 1)  4      4
              and b = (1/6, 1/3, 1/3, 1/6)
============  ============================================  =====  ======
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from jaxtyping import Array, Float

PyTree = Any
VectorField = Callable[[PyTree, Float[Array, ""]], PyTree]


class ButcherTableau(NamedTuple):
    """An explicit Runge-Kutta method (module docstring).

    Attributes:
      c: the s nodes c_j (stage times t + c_j h).
      a: the strictly lower triangle of A as s rows, row j holding A_j1..A_j(j-1) (row 1 empty).
      b: the s weights b_j.
      order: the method's order of accuracy (documentation and tests).
    """

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int

    @property
    def num_stages(self) -> int:
        """s, the vector-field evaluations per step."""
        return len(self.c)


TABLEAUS: dict[str, ButcherTableau] = {
    "euler": ButcherTableau((0.0,), ((),), (1.0,), 1),
    "midpoint": ButcherTableau((0.0, 0.5), ((), (0.5,)), (0.0, 1.0), 2),
    "heun": ButcherTableau((0.0, 1.0), ((), (1.0,)), (0.5, 0.5), 2),
    "rk4": ButcherTableau(
        (0.0, 0.5, 0.5, 1.0),
        ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
        (1 / 6, 1 / 3, 1 / 3, 1 / 6),
        4,
    ),
}


def _add_scaled(y: PyTree, scale: Float[Array, ""], k: PyTree) -> PyTree:
    """Return y + scale * k for pytrees."""
    return jax.tree_util.tree_map(lambda y_leaf, k_leaf: y_leaf + scale * k_leaf, y, k)


def combine_stages(
    y: PyTree, h: Float[Array, ""], weights: tuple[float, ...], slopes: list[PyTree]
) -> PyTree:
    """Return y + sum_j (h w_j) k_j, adding the terms in order and skipping zero weights.

    Args:
      y: the state (any pytree).
      h: the step size (a scalar).
      weights: one Python float per slope (a row of A, or b).
      slopes: the stage slopes k_j computed so far (same structure as ``y``).

    Returns:
      The combined state.
    """
    for weight, k in zip(weights, slopes, strict=False):
        if weight != 0.0:
            y = _add_scaled(y, h * weight, k)
    return y


def explicit_rk(
    tableau: ButcherTableau,
    y: PyTree,
    h: Float[Array, ""],
    slope: Callable[[int, PyTree], PyTree],
) -> PyTree:
    """Take one explicit Runge-Kutta step of ``tableau`` with the stage slopes from ``slope``.

    Args:
      tableau: the method.
      y: the state at the start of the step.
      h: the step size.
      slope: ``(j, y_j) -> k_j``, the slope of stage j at its state y_j = y + h sum A_jl k_l
        (it knows the stage's time, e.g. t + c_j h).

    Returns:
      y + h sum_j b_j k_j.
    """
    slopes: list[PyTree] = []
    for j, row in enumerate(tableau.a):
        slopes.append(slope(j, combine_stages(y, h, row, slopes)))
    return combine_stages(y, h, tableau.b, slopes)


def rk_step(
    f: VectorField, y: PyTree, t: Float[Array, ""], h: Float[Array, ""], tableau: ButcherTableau
) -> PyTree:
    """Take one step of size ``h`` from ``(y, t)`` of dy/dt = f(y, t) with ``tableau``.

    Args:
      f: the vector field ``(y, t) -> dy/dt``.
      y: the state at ``t``.
      t: the time (a scalar).
      h: the step size (negative to integrate backwards).
      tableau: the method.

    Returns:
      The state at ``t + h``.
    """

    def slope(j: int, y_j: PyTree) -> PyTree:
        node = tableau.c[j]
        return f(y_j, t if node == 0.0 else t + node * h)

    return explicit_rk(tableau, y, h, slope)
