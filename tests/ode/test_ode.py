"""Fixed-grid integrators and the continuous change of variables against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, UnknownNameError
from genjax_models.ode import (
    STEPPERS,
    change_of_variables,
    exact_divergence,
    hutchinson_divergence,
    integrate,
    rademacher,
)
from tests.x64 import float64

ORDERS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
A = np.array([[-0.5, 1.0], [-1.0, -0.2]])


@pytest.mark.parametrize("method", sorted(STEPPERS))
def test_order_on_linear_ode(method):
    """dx/dt = A x has x(1) = expm(A) x0; the error slope in log-log equals the method's order."""
    with float64():
        a = jnp.asarray(A)
        x0 = jnp.array([[1.0, 2.0], [0.3, -1.0]])
        exact = x0 @ jax.scipy.linalg.expm(a).T
        errors = []
        for n in (16, 32, 64):
            x1 = integrate(lambda x, t: x @ a.T, x0, jnp.linspace(0.0, 1.0, n + 1), method=method)
            errors.append(float(jnp.max(jnp.abs(x1 - exact))))
        slope = np.polyfit(np.log([16, 32, 64]), np.log(errors), 1)[0]
        assert abs(-slope - ORDERS[method]) < 0.15, (method, slope, errors)


def test_time_dependent_field_and_decreasing_grid():
    """dx/dt = 2 t x from t=1 back to t=0 gives x(0) = x(1) exp(-1); path has one entry per step."""
    with float64():
        x1 = jnp.array([[1.5]])
        ts = jnp.linspace(1.0, 0.0, 201)
        x0, path = integrate(lambda x, t: 2 * t * x, x1, ts, "rk4", return_path=True)
        np.testing.assert_allclose(float(x0[0, 0]), 1.5 * np.exp(-1.0), rtol=1e-10)
        assert path.shape == (200, 1, 1)


def test_exact_divergence_matches_jacobian_trace():
    with float64():
        w = jax.random.normal(jax.random.key(0), (3, 3))

        def field(x):  # per-example nonlinear map [B, 3] -> [B, 3]
            return jnp.tanh(x @ w) * x

        x = jax.random.normal(jax.random.key(1), (4, 3))
        fx, div = exact_divergence(field, x)
        want = jnp.stack([jnp.trace(jax.jacfwd(lambda v: field(v[None])[0])(xi)) for xi in x])
        np.testing.assert_allclose(np.asarray(div), np.asarray(want), atol=1e-12)
        np.testing.assert_allclose(np.asarray(fx), np.asarray(field(x)), atol=1e-12)


def test_exact_divergence_on_images():
    with float64():
        x = jax.random.normal(jax.random.key(2), (2, 2, 2, 1))
        _, div = exact_divergence(lambda y: 3.0 * y + y**2, x)
        want = jnp.sum(3.0 + 2 * x, axis=(1, 2, 3))
        np.testing.assert_allclose(np.asarray(div), np.asarray(want), atol=1e-12)


def test_hutchinson_is_unbiased():
    """The mean of many Rademacher estimates is within 4 standard errors of the exact trace."""
    with float64():
        w = jax.random.normal(jax.random.key(3), (5, 5))

        def field(x):
            return jnp.sin(x @ w)

        x = jax.random.normal(jax.random.key(4), (3, 5))
        _, exact = exact_divergence(field, x)
        probes = rademacher(jax.random.key(5), (4000, 3, 5), x.dtype)
        est = jax.vmap(lambda v: hutchinson_divergence(field, x, v[None])[1])(probes)
        mean, stderr = est.mean(0), est.std(0) / np.sqrt(est.shape[0])
        assert np.all(np.abs(np.asarray(mean - exact)) < 4 * np.asarray(stderr) + 1e-12)
        assert np.all(np.asarray(stderr) > 0)


@pytest.mark.smoke
def test_change_of_variables_linear_flow():
    """dx/dt = A x: z = expm(A) x, delta = tr(A) (exact) and log-density by the formula."""
    with float64():
        a = jnp.asarray(A)
        x = jnp.array([[0.2, -0.7], [1.0, 0.5]])
        ts = jnp.linspace(0.0, 1.0, 21)
        z, delta = change_of_variables(lambda y, t: y @ a.T, x, ts, method="rk4")
        want = x @ jax.scipy.linalg.expm(a).T
        np.testing.assert_allclose(np.asarray(z), np.asarray(want), atol=1e-7)
        np.testing.assert_allclose(np.asarray(delta), np.trace(A), atol=1e-12)
        _, delta_h = change_of_variables(
            lambda y, t: y @ a.T, x, ts, divergence="hutchinson", key=jax.random.key(0)
        )
        # For a linear field v^T A v with Rademacher v has mean tr(A); off-diagonals make single
        # draws noisy.
        assert delta_h.shape == (2,) and np.all(np.isfinite(np.asarray(delta_h)))


def test_bad_options_are_clear():
    with pytest.raises(UnknownNameError, match="rk4"):
        integrate(lambda x, t: x, jnp.ones(2), jnp.linspace(0, 1, 3), method="rk5")
    with pytest.raises(ConfigError, match="PRNG key"):
        change_of_variables(
            lambda x, t: x, jnp.ones((1, 2)), jnp.linspace(0, 1, 3), divergence="hutchinson"
        )
    with pytest.raises(UnknownNameError, match="exact"):
        change_of_variables(
            lambda x, t: x, jnp.ones((1, 2)), jnp.linspace(0, 1, 3), divergence="trace"
        )
