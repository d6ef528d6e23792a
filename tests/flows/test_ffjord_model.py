"""FFJORD: estimator names, Hutchinson vs exact trace, solver convergence.

(Its exact-trace density integrating to 1 on a grid is checked with the other 2-D flows in
``test_flow_models.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import DataSpec
from genjax_models.errors import UnknownNameError
from genjax_models.flows.models.ffjord import FFJORD
from genjax_models.ode import EXACT_TRACE_MAX_DIMS, integrate
from tests.x64 import float64


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _random_ffjord(dims: int = 2, **overrides):
    """A small FFJORD with random (non-zero) dynamics and a batch of 4 points."""
    model = FFJORD(event_shape=(dims,), hidden=(16,), num_steps=4, **overrides)
    x = 1.5 * jax.random.normal(jax.random.key(0), (4, dims), jnp.float64)
    params = model.init(jax.random.key(1), x)
    params = jax.tree_util.tree_map(lambda p: 2.0 * p, params)  # a clearly non-trivial field
    return model, params, x


def test_estimator_names_and_log_prob_kind():
    small = FFJORD(event_shape=(2,))
    assert small.resolve_trace() == "exact" and small.describe_log_prob().kind == "exact"
    assert small.describe_log_prob().estimator == "cnf-rk4-exact-trace"
    assert small.describe_log_prob(trace="hutchinson").estimator == "cnf-rk4-hutchinson"
    hutch4 = small.describe_log_prob(trace="hutchinson", num_probes=4)
    assert hutch4.estimator == "cnf-rk4-hutchinson-p4" and hutch4.details["num_probes"] == 4
    large = FFJORD.from_spec(DataSpec((EXACT_TRACE_MAX_DIMS + 1,), "continuous"))
    assert large.resolve_trace() == "hutchinson" and large.describe_log_prob().kind == "estimate"
    assert large.describe_log_prob().estimator == "cnf-rk4-hutchinson"
    assert large.describe_log_prob(trace="exact").estimator == "cnf-rk4-exact-trace"
    assert FFJORD(event_shape=(2,), trace="hutchinson").describe_log_prob().kind == "estimate"
    with pytest.raises(UnknownNameError, match="choose one of"):
        FFJORD(event_shape=(2,), trace="skilling")
    with pytest.raises(UnknownNameError, match="choose one of"):
        small.describe_log_prob(trace="skilling")


def test_hutchinson_agrees_with_exact_trace_in_expectation():
    model, params, x = _random_ffjord(dims=3)
    num_draws = 400

    @jax.jit
    def both(params, x):
        exact = model.log_prob(params, x, jax.random.key(0), trace="exact")
        keys = jax.random.split(jax.random.key(1), num_draws)
        estimates = jax.vmap(lambda k: model.log_prob(params, x, k, trace="hutchinson"))(keys)
        return exact, estimates

    exact, estimates = both(params, x)
    error = estimates.mean(axis=0) - exact
    stderr = estimates.std(axis=0, ddof=1) / np.sqrt(num_draws)
    assert bool(jnp.all(stderr > 0))  # the estimator is really stochastic here
    assert bool(jnp.all(jnp.abs(error) < 4 * stderr)), (error, stderr)


def test_log_prob_converges_with_solver_steps_and_sampling_inverts_it():
    model, params, x = _random_ffjord()

    @jax.jit
    def run(params, x):
        coarse = model.log_prob(params, x, None, num_steps=4)
        fine = model.log_prob(params, x, None, num_steps=32)
        # Latents of x (fine solve), then back to data: the ODE map is invertible.
        z = integrate(model.field(params), x, model.time_grid(32))
        return coarse, fine, model.flow_sample(params, z, num_steps=32)

    coarse, fine, x_back = run(params, x)
    assert bool(jnp.all(jnp.abs(coarse - fine) < 1e-2))  # RK4 with 4 steps already close
    np.testing.assert_allclose(x_back, x, atol=1e-5)
