"""Fixed-grid ODE integrators written as one ``lax.scan`` over a time grid.

Solve dy/dt = f(y, t) from ``ts[0]`` to ``ts[-1]`` (the grid may decrease) with one of

- ``euler``    y' = y + h f(y, t)                                         (order 1, 1 NFE/step)
- ``midpoint`` y' = y + h f(y + h/2 f(y, t), t + h/2)                      (order 2, 2 NFE/step)
- ``heun``     y' = y + h/2 [f(y, t) + f(y + h f(y, t), t + h)]            (order 2, 2 NFE/step)
- ``rk4``      the classical fourth-order Runge-Kutta method               (order 4, 4 NFE/step)

``y`` may be any pytree of arrays (e.g. ``(x, log_det)`` for a continuous normalising flow).
A step is a tiny pure function; the loop is generic (:func:`integrate`), so compile time does not
depend on the number of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, unknown_name

PyTree = Any
VectorField = Callable[[PyTree, jax.Array], PyTree]


def _axpy(h: jax.Array, dy: PyTree, y: PyTree) -> PyTree:
    """Return y + h * dy for pytrees."""
    return jax.tree_util.tree_map(lambda a, b: b + h * a, dy, y)


def _combine(y: PyTree, h: jax.Array, weights: tuple[float, ...], slopes: tuple[PyTree, ...]) -> PyTree:
    """Return y + h * sum_i w_i k_i for pytrees."""
    def leaf(y_leaf, *ks):
        return y_leaf + h * sum(w * k for w, k in zip(weights, ks, strict=True))

    return jax.tree_util.tree_map(leaf, y, *slopes)


def euler_step(f: VectorField, y: PyTree, t: jax.Array, h: jax.Array) -> PyTree:
    """Take one explicit Euler step of size ``h`` from ``(y, t)``."""
    return _axpy(h, f(y, t), y)


def midpoint_step(f: VectorField, y: PyTree, t: jax.Array, h: jax.Array) -> PyTree:
    """Take one explicit midpoint (RK2) step of size ``h`` from ``(y, t)``."""
    k1 = f(y, t)
    return _axpy(h, f(_axpy(h / 2, k1, y), t + h / 2), y)


def heun_step(f: VectorField, y: PyTree, t: jax.Array, h: jax.Array) -> PyTree:
    """Take one Heun (explicit trapezoidal, RK2) step of size ``h`` from ``(y, t)``."""
    k1 = f(y, t)
    k2 = f(_axpy(h, k1, y), t + h)
    return _combine(y, h, (0.5, 0.5), (k1, k2))


def rk4_step(f: VectorField, y: PyTree, t: jax.Array, h: jax.Array) -> PyTree:
    """Take one classical fourth-order Runge-Kutta step of size ``h`` from ``(y, t)``."""
    k1 = f(y, t)
    k2 = f(_axpy(h / 2, k1, y), t + h / 2)
    k3 = f(_axpy(h / 2, k2, y), t + h / 2)
    k4 = f(_axpy(h, k3, y), t + h)
    return _combine(y, h, (1 / 6, 1 / 3, 1 / 3, 1 / 6), (k1, k2, k3, k4))


STEPPERS: dict[str, Callable[..., PyTree]] = {
    "euler": euler_step,
    "midpoint": midpoint_step,
    "heun": heun_step,
    "rk4": rk4_step,
}
# Vector-field evaluations per step of each method.
EVALS_PER_STEP: dict[str, int] = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def integrate(
    f: VectorField,
    y0: PyTree,
    ts: jax.Array,
    method: str = "rk4",
    return_path: bool = False,
) -> PyTree:
    """Integrate dy/dt = f(y, t) over the fixed grid ``ts`` with one ``lax.scan``.

    Args:
      f: the vector field ``(y, t) -> dy/dt`` (same pytree structure as ``y``; ``t`` a scalar).
      y0: the state at ``ts[0]``.
      ts: ``[N + 1]`` increasing or decreasing times; N steps of size ``ts[i+1] - ts[i]``.
      method: one of :data:`STEPPERS`.
      return_path: also return the states at ``ts[1:]`` (stacked along a new leading axis).

    Returns:
      The state at ``ts[-1]`` (and the path ``[N, ...]`` if ``return_path``).
    """
    if method not in STEPPERS:
        raise unknown_name("ODE method", method, STEPPERS)
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ConfigError(f"the time grid must be 1-D with at least 2 points, got shape {ts.shape}")
    step = STEPPERS[method]

    def body(y, t_pair):
        t, t_next = t_pair
        y_next = step(f, y, t, t_next - t)
        return y_next, (y_next if return_path else None)

    y_end, path = jax.lax.scan(body, y0, (ts[:-1], ts[1:]))
    return (y_end, path) if return_path else y_end


def num_evals(method: str, num_steps: int) -> int:
    """Return the number of vector-field evaluations of ``num_steps`` steps of ``method``."""
    if method not in EVALS_PER_STEP:
        raise unknown_name("ODE method", method, EVALS_PER_STEP)
    return EVALS_PER_STEP[method] * num_steps


def steps_for_budget(method: str, nfe: int) -> int:
    """Return the number of steps of ``method`` that fit in ``nfe`` evaluations (at least 1)."""
    if method not in EVALS_PER_STEP:
        raise unknown_name("ODE method", method, EVALS_PER_STEP)
    if nfe < EVALS_PER_STEP[method]:
        raise ConfigError(f"method {method!r} needs at least {EVALS_PER_STEP[method]} NFE, got {nfe}")
    return nfe // EVALS_PER_STEP[method]
