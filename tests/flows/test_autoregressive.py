"""MAF / IAF with a MADE conditioner: bijector checks, IAF == Inverse(MAF), pass structure.

Random MADE weights (not zero-initialised), random float64 inputs, several D and orderings.
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

from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from genjax_models.flows.autoregressive import InverseAutoregressive, MaskedAutoregressive
from genjax_models.flows.spline import spline_param_size
from genjax_models.nn.made import MADE, made_input_degrees
from tests.flows.checks import check_bijector
from tests.x64 import float64

B, K = 3, 4


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


def _made(dim, transform="affine", order="natural", seed=0, ctx_dim=None):
    """A MADE (random weights) and its variables; returns ``(module, variables)``."""
    num_params = 2 if transform == "affine" else spline_param_size(K)
    module = MADE(hidden=(12,), num_params=num_params, order=order, seed=seed, activation=nn.tanh)
    ctx = None if ctx_dim is None else jnp.zeros((1, ctx_dim))
    scale = 1.0 if transform == "affine" else 2.0
    return module, _random_variables(module, jnp.zeros((1, dim)), ctx, seed=seed, scale=scale)


def _x(shape, seed=1, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


@pytest.mark.parametrize(
    ("cls", "dim", "transform", "order"),
    [
        (MaskedAutoregressive, 1, "affine", "natural"),
        (MaskedAutoregressive, 4, "spline", "reverse"),
        (MaskedAutoregressive, 5, "affine", (3, 0, 4, 1, 2)),
        (InverseAutoregressive, 3, "affine", "random"),
        (InverseAutoregressive, 3, "spline", "natural"),
    ],
)
def test_autoregressive_flows_pass_the_bijector_checks(cls, dim, transform, order) -> None:
    module, variables = _made(dim, transform, order, seed=dim)
    bij = cls(functools.partial(module.apply, variables), dim, transform, num_bins=K, bound=2.0)
    x = _x((B, dim), seed=dim, scale=1.3)
    check_bijector(bij, x, atol=1e-8, rtol=1e-8)
    assert np.abs(np.asarray(bij.forward(x) - x)).max() > 0.05  # not the identity


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_iaf_is_the_inverse_of_the_maf_with_the_same_conditioner(transform) -> None:
    module, variables = _made(4, transform, "random", seed=2)
    cond = functools.partial(module.apply, variables)
    iaf = InverseAutoregressive(cond, 4, transform, num_bins=K)
    inv_maf = distrax.Inverse(MaskedAutoregressive(cond, 4, transform, num_bins=K))
    x = _x((B, 4), scale=1.5)
    for a, b in [
        (iaf.forward_and_log_det(x), inv_maf.forward_and_log_det(x)),
        (iaf.inverse_and_log_det(x), inv_maf.inverse_and_log_det(x)),
    ]:
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12)


def test_maf_density_pass_is_one_call_and_sampling_is_a_scan() -> None:
    dim = 5
    module, variables = _made(dim, seed=1)
    calls = []

    def counting(u):
        calls.append(u.shape)
        return module.apply(variables, u)

    maf = MaskedAutoregressive(counting, dim)
    x = _x((B, dim))
    inverse_jaxpr = str(jax.make_jaxpr(maf.inverse)(x))
    assert len(calls) == 1 and "scan" not in inverse_jaxpr and "while" not in inverse_jaxpr
    forward_jaxpr = jax.make_jaxpr(maf.forward)(x)
    scans = [e for e in forward_jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    assert len(scans) == 1 and scans[0].params["length"] == dim
    iaf_forward = str(jax.make_jaxpr(InverseAutoregressive(counting, dim).forward)(x))
    assert "scan" not in iaf_forward  # IAF samples in one pass


@pytest.mark.parametrize("order", ["natural", "reverse", "random"])
def test_density_map_is_triangular_in_the_ordering(order) -> None:
    dim = 4
    module, variables = _made(dim, "spline", order, seed=5)
    maf = MaskedAutoregressive(functools.partial(module.apply, variables), dim, "spline", K)
    x = _x((1, dim), scale=1.2)
    jac = np.asarray(jax.jacfwd(lambda v: maf.inverse(v[None])[0])(x[0]))  # dz_i / dx_j
    degrees = made_input_degrees(dim, order, seed=5)
    later = degrees[None, :] > degrees[:, None]
    assert np.all(jac[later] == 0.0)
    assert np.all(np.abs(np.diag(jac)) > 0)


def test_conditional_maf_and_iaf() -> None:
    dim, ctx_dim = 3, 2
    module, variables = _made(dim, "affine", "natural", seed=4, ctx_dim=ctx_dim)
    ctx = _x((1, ctx_dim), seed=8)
    x = _x((B, dim))
    for cls in (MaskedAutoregressive, InverseAutoregressive):

        def make(c, cls=cls):
            return cls(functools.partial(module.apply, variables, context=c), dim)

        check_bijector(make(ctx), x, atol=1e-8, rtol=1e-8)
        assert np.abs(np.asarray(make(ctx).forward(x) - make(ctx + 1.0).forward(x))).max() > 1e-3
    per_example = _x((B, ctx_dim), seed=9)
    maf = MaskedAutoregressive(functools.partial(module.apply, variables, context=per_example), dim)
    np.testing.assert_allclose(maf.inverse(maf.forward(x)), x, atol=1e-10)


def test_transformed_log_prob_sample_and_grads() -> None:
    dim = 3
    module, variables = _made(dim, "spline", "natural", seed=6)
    base = distrax.MultivariateNormalDiag(jnp.zeros(dim), jnp.ones(dim))
    x = _x((B, dim), scale=1.5)

    def flow(v):
        cond = functools.partial(module.apply, v)
        return distrax.Transformed(base, MaskedAutoregressive(cond, dim, "spline", K, 2.0))

    maf = flow(variables).bijector
    z, ildj = maf.inverse_and_log_det(x)
    lp = jax.jit(lambda v: flow(v).log_prob(x))(variables)
    assert lp.shape == (B,)
    np.testing.assert_allclose(lp, base.log_prob(z) + ildj, rtol=1e-12)
    grads = jax.grad(lambda v: -jnp.mean(flow(v).log_prob(x)))(variables)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
    samples, sample_lp = jax.jit(
        lambda v, k: flow(v).sample_and_log_prob(seed=k, sample_shape=(4,))
    )(variables, jax.random.key(3))
    assert samples.shape == (4, dim)
    np.testing.assert_allclose(flow(variables).log_prob(samples), sample_lp, rtol=1e-8, atol=1e-8)
    sample_grads = jax.grad(
        lambda v: jnp.sum(flow(v).sample(seed=jax.random.key(0), sample_shape=(2,)))
    )(variables)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(sample_grads))


def test_bad_inputs_raise_clear_errors() -> None:
    module, variables = _made(3)
    cond = functools.partial(module.apply, variables)
    with pytest.raises(ShapeError, match=r"\[\*batch, 3\]"):
        MaskedAutoregressive(cond, 3).inverse(jnp.zeros((2, 4)))
    with pytest.raises(ShapeError, match="num_params=13"):
        MaskedAutoregressive(cond, 3, "spline", num_bins=K).inverse(jnp.zeros((2, 3)))
    with pytest.raises(UnknownNameError, match="affine"):
        MaskedAutoregressive(cond, 3, "quadratic")
    with pytest.raises(ConfigError, match="event_size"):
        InverseAutoregressive(cond, 0)
