"""Fixed-grid ODE integration: one ``lax.scan`` of a Runge-Kutta tableau over a time grid.

Solve dy/dt = f(y, t) from ``ts[0]`` to ``ts[-1]`` (the grid may decrease) with one of the
explicit methods of :data:`~genjax_models.ode.runge_kutta.TABLEAUS`:

- ``euler``    y' = y + h f(y, t)                                         (order 1, 1 NFE/step)
- ``midpoint`` y' = y + h f(y + h/2 f(y, t), t + h/2)                      (order 2, 2 NFE/step)
- ``heun``     y' = y + h/2 [f(y, t) + f(y + h f(y, t), t + h)]            (order 2, 2 NFE/step)
- ``rk4``      the classical fourth-order Runge-Kutta method               (order 4, 4 NFE/step)

``y`` may be any pytree of arrays (e.g. ``(x, log_det)`` for a continuous normalising flow).
A step is :func:`~genjax_models.ode.runge_kutta.rk_step` with the method's tableau; the loop is
generic (:func:`integrate`), so compile time does not depend on the number of steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError, unknown_name
from genjax_models.ode.runge_kutta import TABLEAUS, ButcherTableau, PyTree, VectorField, rk_step


def _stepper(name: str, tableau: ButcherTableau) -> Callable[..., PyTree]:
    """Return ``step(f, y, t, h)``: one step of the tableau ``name``."""
    step = functools.partial(rk_step, tableau=tableau)
    step.__doc__ = f"Take one {name} step (order {tableau.order}) of size ``h`` from ``(y, t)``."
    return step


STEPPERS: dict[str, Callable[..., PyTree]] = {
    name: _stepper(name, tableau) for name, tableau in TABLEAUS.items()
}
euler_step = STEPPERS["euler"]
midpoint_step = STEPPERS["midpoint"]
heun_step = STEPPERS["heun"]
rk4_step = STEPPERS["rk4"]
# Vector-field evaluations per step of each method.
EVALS_PER_STEP: dict[str, int] = {name: t.num_stages for name, t in TABLEAUS.items()}


def tableau(method: str) -> ButcherTableau:
    """Return the Butcher tableau of ``method`` (one of :data:`TABLEAUS`), or raise listing them."""
    if method not in TABLEAUS:
        raise unknown_name("ODE method", method, TABLEAUS)
    return TABLEAUS[method]


def integrate(
    f: VectorField,
    y0: PyTree,
    ts: Float[Array, " n"],
    method: str = "rk4",
    return_path: bool = False,
) -> PyTree:
    """Integrate dy/dt = f(y, t) over the fixed grid ``ts`` with one ``lax.scan``.

    Args:
      f: the vector field ``(y, t) -> dy/dt`` (same pytree structure as ``y``; ``t`` a scalar).
      y0: the state at ``ts[0]``.
      ts: ``[N + 1]`` increasing or decreasing times; N steps of size ``ts[i+1] - ts[i]``.
      method: one of :data:`TABLEAUS` (``"euler"``, ``"midpoint"``, ``"heun"``, ``"rk4"``).
      return_path: also return the states at ``ts[1:]`` (stacked along a new leading axis).

    Returns:
      The state at ``ts[-1]`` (and the path ``[N, ...]`` if ``return_path``).
    """
    method_tableau = tableau(method)
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ConfigError(f"the time grid must be 1-D with at least 2 points, got shape {ts.shape}")

    def body(y, t_pair):
        t, t_next = t_pair
        y_next = rk_step(f, y, t, t_next - t, method_tableau)
        return y_next, (y_next if return_path else None)

    y_end, path = jax.lax.scan(body, y0, (ts[:-1], ts[1:]))
    return (y_end, path) if return_path else y_end
