"""The one Runge-Kutta engine: tableau consistency, the generic stage loop, trace choices."""

import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import UnknownNameError
from genjax_models.ode import (
    EVALS_PER_STEP,
    EXACT_TRACE_MAX_DIMS,
    STEPPERS,
    TABLEAUS,
    TRACES,
    ButcherTableau,
    explicit_rk,
    integrate,
    resolve_trace,
    rk_step,
    tableau,
)
from tests.x64 import float64


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_tableaus_are_consistent(name):
    """sum b = 1, c_j = sum_l A_jl (row sums), A strictly lower triangular, one b per stage."""
    t = TABLEAUS[name]
    assert isinstance(t, ButcherTableau)
    assert len(t.a) == len(t.b) == t.num_stages == EVALS_PER_STEP[name]
    assert all(len(row) == j for j, row in enumerate(t.a))
    assert sum(t.b) == pytest.approx(1.0)
    assert all(sum(row) == pytest.approx(c) for row, c in zip(t.a, t.c, strict=True))
    # order conditions up to the method's order (b.c = 1/2, b.c^2 = 1/3, b.A.c = 1/6, ...)
    b, c = np.asarray(t.b), np.asarray(t.c)
    a = np.zeros((len(c), len(c)))
    for j, row in enumerate(t.a):
        a[j, : len(row)] = row
    conditions = [(1, b.sum(), 1.0), (2, b @ c, 1 / 2), (3, b @ c**2, 1 / 3), (3, b @ a @ c, 1 / 6),
                  (4, b @ c**3, 1 / 4), (4, b @ (c * (a @ c)), 1 / 8), (4, b @ a @ c**2, 1 / 12),
                  (4, b @ a @ a @ c, 1 / 24)]
    for order, value, want in conditions:
        if order <= t.order:
            assert value == pytest.approx(want), (name, order)


def test_rk4_step_is_the_classical_formula():
    """One rk4 step on dy/dt = t y^2 equals the hand-written k1..k4 combination."""
    with float64():
        f = lambda y, t: t * y**2  # noqa: E731
        y, t, h = jnp.array([0.3, -0.2]), jnp.asarray(0.4), jnp.asarray(0.1)
        k1 = f(y, t)
        k2 = f(y + h / 2 * k1, t + h / 2)
        k3 = f(y + h / 2 * k2, t + h / 2)
        k4 = f(y + h * k3, t + h)
        want = y + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        np.testing.assert_allclose(rk_step(f, y, t, h, TABLEAUS["rk4"]), want, rtol=1e-14)
        np.testing.assert_allclose(STEPPERS["rk4"](f, y, t, h), want, rtol=1e-14)


def test_explicit_rk_takes_any_slope_and_pytrees():
    """The stage loop only sees ``slope(j, y_j)``: here a pytree state and stage-indexed slopes."""
    calls = []

    def slope(j, y):
        calls.append(j)
        return {"a": y["a"] * 0 + j, "b": y["b"] * 0 + 1.0}

    y = {"a": jnp.zeros(2), "b": jnp.zeros(())}
    out = explicit_rk(TABLEAUS["heun"], y, jnp.asarray(2.0), slope)
    assert calls == [0, 1]
    np.testing.assert_allclose(out["a"], [1.0, 1.0])  # 2 * (0.5 * 0 + 0.5 * 1)
    np.testing.assert_allclose(out["b"], 2.0)


def test_midpoint_integrates_at_second_order_through_the_engine():
    with float64():
        errors = []
        for n in (20, 40):
            y1 = integrate(lambda y, t: jnp.cos(t) * y, jnp.ones(1), jnp.linspace(0, 1, n + 1),
                           method="midpoint")
            errors.append(abs(float(y1[0]) - np.exp(np.sin(1.0))))
        assert 3.5 < errors[0] / errors[1] < 4.5


def test_unknown_method_lists_the_tableaus():
    with pytest.raises(UnknownNameError, match="euler, heun, midpoint, rk4"):
        tableau("rk45")


def test_resolve_trace():
    assert TRACES == ("auto", "exact", "hutchinson")
    assert resolve_trace("auto", EXACT_TRACE_MAX_DIMS) == "exact"
    assert resolve_trace("auto", EXACT_TRACE_MAX_DIMS + 1) == "hutchinson"
    assert resolve_trace("exact", 10_000) == "exact"
    assert resolve_trace("hutchinson", 2) == "hutchinson"
    with pytest.raises(UnknownNameError, match="trace 'hutch'; choose one of: auto, exact"):
        resolve_trace("hutch", 2)
