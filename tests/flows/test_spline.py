"""Rational-quadratic spline coupling: bijector checks, tails inside/outside the bound, grads.

Random conditioner weights (scaled up so the splines are far from the identity) and random
float64 inputs, some of them outside ``[-bound, bound]``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, DataError, UnknownNameError
from genjax_models.flows.conditioners import ConvConditioner, MLPConditioner
from genjax_models.flows.spline import (
    SplineCoupling,
    check_spline_domain,
    spline_elementwise,
    spline_param_size,
)
from tests.flows.checks import check_bijector
from tests.x64 import float64

B, K, BOUND = 3, 5, 2.0


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _random_variables(module, *args, seed=0, scale=1.0):
    """Random (non-zero) weights ~ N(0, scale^2/fan_in) from numpy: no XLA compile per init."""
    shapes = jax.eval_shape(module.init, jax.random.key(0), *args)
    rng = np.random.default_rng(seed)

    def fill(leaf):
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 100
        return jnp.asarray(scale * rng.normal(size=leaf.shape) / np.sqrt(fan_in), jnp.float64)

    return jax.tree_util.tree_map(fill, shapes)


def _spline(dim, split, swap=False, tails="linear", seed=0, ctx_dim=None):
    d_trans = split if swap else dim - split
    module = MLPConditioner(
        hidden=(16,),
        out_features=d_trans * spline_param_size(K),
        activation=nn.tanh,
        zero_init=False,
    )
    ctx = None if ctx_dim is None else jnp.zeros((1, ctx_dim))
    variables = _random_variables(module, jnp.zeros((1, dim - d_trans)), ctx, seed=seed, scale=2.0)

    def make(context=None):
        cond = functools.partial(module.apply, variables, context=context)
        return SplineCoupling(cond, split, num_bins=K, bound=BOUND, tails=tails, swap=swap)

    return make


def _x(shape, seed=1, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def test_param_size() -> None:
    assert spline_param_size(8) == 25
    assert spline_param_size(1) == 4
    with pytest.raises(ConfigError):
        spline_param_size(0)


@pytest.mark.parametrize(
    ("dim", "split", "swap", "tails"),
    [(2, 1, False, "linear"), (4, 1, True, None), (5, 2, False, None), (5, 3, True, "linear")],
)
def test_spline_coupling_passes_the_bijector_checks(dim, split, swap, tails) -> None:
    bij = _spline(dim, split, swap, tails, seed=dim)()
    x = _x((B, dim), seed=dim, scale=1.5)  # about 20% of the values lie outside [-2, 2]
    check_bijector(bij, x, atol=1e-8, rtol=1e-8)
    y = bij.forward(x)
    assert np.abs(np.asarray(y - x)).max() > 0.1  # far from the identity


def test_conv_conditioned_image_spline_coupling() -> None:
    h, w, c = 2, 2, 3
    module = ConvConditioner(features=4, out_channels=2 * spline_param_size(K), zero_init=False)
    variables = _random_variables(module, jnp.zeros((1, h, w, 1)), scale=2.0)
    bij = SplineCoupling(
        functools.partial(module.apply, variables), 1, num_bins=K, bound=BOUND, event_ndims=3
    )
    check_bijector(bij, _x((2, h, w, c)), atol=1e-8, rtol=1e-8)


def test_linear_tails_are_the_identity_outside_the_bound() -> None:
    bij = _spline(3, 1)()
    x = jnp.array([[0.3, 2.5, -7.0], [-1.0, -2.0001, 40.0]])
    y, ldj = bij.forward_and_log_det(x)
    np.testing.assert_allclose(y, x, rtol=1e-12)  # every transformed value is outside
    np.testing.assert_allclose(ldj, np.zeros(2), atol=1e-12)
    inside = jnp.array([[0.3, 1.0, -0.5]])
    y_in, ldj_in = bij.forward_and_log_det(inside)
    assert np.all(np.abs(np.asarray(y_in[:, 1:])) < BOUND)
    assert np.abs(np.asarray(y_in - inside)).max() > 1e-3 and abs(float(ldj_in[0])) > 1e-4


def test_spline_fixes_the_interval_ends_and_zero_params_are_identity() -> None:
    params = _x((2, spline_param_size(K)), seed=4, scale=3.0)
    ends = jnp.array([-BOUND, BOUND])
    for tails in ("linear", None):
        y, _ = spline_elementwise(ends, params, BOUND, tails)
        np.testing.assert_allclose(y, ends, atol=1e-12)
    x = _x((4,), seed=5, scale=2.0)
    y, ldj = spline_elementwise(x, jnp.zeros((4, spline_param_size(K))), BOUND, None)
    np.testing.assert_allclose(y, x, atol=1e-12)
    np.testing.assert_allclose(ldj, np.zeros(4), atol=1e-12)


def test_bounded_spline_outside_points_are_finite_with_finite_grads() -> None:
    make = _spline(3, 1, tails=None)
    x = jnp.array([[0.1, 2.5, -9.0], [0.2, -50.0, 1.0], [0.0, BOUND, -BOUND]])
    y, ldj = make().forward_and_log_det(x)
    assert np.all(np.isfinite(np.asarray(y))) and np.all(np.isfinite(np.asarray(ldj)))
    np.testing.assert_allclose(make().inverse(y), x, atol=1e-9)
    grad_x = jax.grad(lambda v: jnp.sum(make().forward_and_log_det(v)[1] + make().forward(v)))(x)
    assert np.all(np.isfinite(np.asarray(grad_x)))
    params = _x((3, 2, spline_param_size(K)), seed=6)

    def loss(p):
        bij = SplineCoupling(lambda xc: p.reshape(3, -1), 1, num_bins=K, bound=BOUND, tails=None)
        y, ldj = bij.forward_and_log_det(x)
        z, ildj = bij.inverse_and_log_det(x)
        return jnp.sum(y**2) + jnp.sum(ldj) + jnp.sum(z**2) + jnp.sum(ildj)

    grad_p = jax.grad(loss)(params)
    assert np.all(np.isfinite(np.asarray(grad_p)))


def test_domain_checker_raises_data_error() -> None:
    check_spline_domain(jnp.array([-BOUND, 0.0, BOUND]), BOUND)
    with pytest.raises(DataError, match=r"outside the spline interval \[-2.0, 2.0\]"):
        check_spline_domain(jnp.array([0.0, 2.5]), BOUND)
    with pytest.raises(DataError):
        check_spline_domain(jnp.array([0.0, jnp.nan]), BOUND)
    with pytest.raises(ConfigError, match="eagerly"):
        jax.jit(lambda v: check_spline_domain(v, BOUND))(jnp.zeros(2))
    bounded, linear = _spline(3, 1, tails=None)(), _spline(3, 1)()
    x = jnp.array([[9.0, 0.5, -1.0]])  # only the conditioning value is outside
    bounded.check_domain(x)
    with pytest.raises(DataError, match="SplineCoupling input"):
        bounded.check_domain(x.at[0, 2].set(-3.0))
    linear.check_domain(x.at[0, 2].set(-3.0))  # linear tails accept every input


def test_conditional_spline_coupling() -> None:
    make = _spline(4, 2, ctx_dim=2, seed=3)
    x = _x((B, 4))
    ctx = _x((1, 2), seed=9)
    check_bijector(make(ctx), x, atol=1e-8, rtol=1e-8)
    assert np.abs(np.asarray(make(ctx).forward(x) - make(ctx + 1.0).forward(x))).max() > 1e-3


def test_transformed_log_prob_and_grads() -> None:
    dim = 3
    module = MLPConditioner(hidden=(8,), out_features=2 * spline_param_size(K), zero_init=False)
    variables = _random_variables(module, jnp.zeros((1, 1)), scale=2.0)
    base = distrax.MultivariateNormalDiag(jnp.zeros(dim), jnp.ones(dim))
    x = _x((B, dim), scale=1.5)

    def log_prob(v):
        bij = SplineCoupling(functools.partial(module.apply, v), 1, num_bins=K, bound=BOUND)
        return distrax.Transformed(base, bij).log_prob(x)

    bij = SplineCoupling(functools.partial(module.apply, variables), 1, num_bins=K, bound=BOUND)
    z, ildj = bij.inverse_and_log_det(x)
    np.testing.assert_allclose(jax.jit(log_prob)(variables), base.log_prob(z) + ildj, rtol=1e-12)
    grads = jax.grad(lambda v: -jnp.mean(log_prob(v)))(variables)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_bad_configuration_raises() -> None:
    with pytest.raises(UnknownNameError, match="linear"):
        SplineCoupling(lambda xc: xc, 1, tails="quadratic")
    with pytest.raises(ConfigError, match="bound"):
        SplineCoupling(lambda xc: xc, 1, bound=0.0)
