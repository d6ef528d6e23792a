"""Affine (RealNVP) and additive (NICE) split couplings, with MLP and conv conditioners.

Every bijector goes through ``check_bijector`` (log-det vs autodiff slogdet, inverse,
jit) in float64 on random inputs and random (not zero-initialised) conditioner weights.
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

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.conditioners import ConvConditioner, MLPConditioner
from genjax_models.flows.coupling import AdditiveCoupling, AffineCoupling, bounded_log_scale
from tests.flows.checks import check_bijector
from tests.x64 import float64

B = 3


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _random_variables(module, *args, seed=0):
    """Random (non-zero) weights ~ N(0, 1/fan_in) from numpy: no XLA compile per init."""
    shapes = jax.eval_shape(module.init, jax.random.key(0), *args)
    rng = np.random.default_rng(seed)

    def fill(leaf):
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 100
        return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(fan_in), jnp.float64)

    return jax.tree_util.tree_map(fill, shapes)


def _mlp_coupling(cls, dim, split, swap=False, seed=0, ctx_dim=None, zero_init=False, **kw):
    """A coupling with a freshly initialised MLP conditioner (random weights by default)."""
    d_cond = dim - split if swap else split
    d_trans = dim - d_cond
    module = MLPConditioner(
        hidden=(16,),
        out_features=d_trans * cls.params_per_dim,
        activation=nn.tanh,
        zero_init=zero_init,
    )
    x_cond = jnp.zeros((1, d_cond), jnp.float64)
    ctx = None if ctx_dim is None else jnp.zeros((1, ctx_dim), jnp.float64)
    if zero_init:  # the module's own initialisers (zero output layer)
        variables = module.init(jax.random.key(seed), x_cond, ctx)
    else:
        variables = _random_variables(module, x_cond, ctx, seed=seed)

    def make(context=None):
        return cls(
            functools.partial(module.apply, variables, context=context), split, swap=swap, **kw
        )

    return make


def _x(shape, seed=1):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float64)


@pytest.mark.parametrize("cls", [AffineCoupling, AdditiveCoupling])
@pytest.mark.parametrize(("dim", "split", "swap"), [(2, 1, False), (3, 1, True), (5, 2, True)])
def test_vector_couplings_pass_the_bijector_checks(cls, dim, split, swap) -> None:
    bij = _mlp_coupling(cls, dim, split, swap, seed=dim + split)()
    check_bijector(bij, _x((B, dim), seed=dim), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("swap", [False, True])
def test_only_the_transformed_part_changes(swap) -> None:
    bij = _mlp_coupling(AffineCoupling, 5, 2, swap)()
    x = _x((B, 5))
    y = bij.forward(x)
    kept = slice(2, 5) if swap else slice(0, 2)
    changed = slice(0, 2) if swap else slice(2, 5)
    np.testing.assert_array_equal(y[:, kept], x[:, kept])
    assert np.abs(np.asarray(y[:, changed] - x[:, changed])).min() > 0


def test_affine_log_det_is_the_bounded_log_scale() -> None:
    x = _x((B, 4))
    raw = 40.0 * _x((B, 2, 2), seed=5)  # huge raw scales: the bound must hold
    bij = AffineCoupling(lambda xc: raw.reshape(B, 4), 2, scale_bound=1.5)
    y, ldj = bij.forward_and_log_det(x)
    s = 1.5 * np.tanh(np.asarray(raw[..., 1]) / 1.5)
    np.testing.assert_allclose(ldj, s.sum(-1), rtol=1e-12)
    np.testing.assert_allclose(y[:, 2:], x[:, 2:] * np.exp(s) + raw[..., 0], rtol=1e-12)
    assert np.all(np.abs(ldj) <= 2 * 1.5)
    np.testing.assert_allclose(
        bounded_log_scale(jnp.array([0.0, 1e-3]), 2.0), [0.0, 1e-3], rtol=1e-6
    )


def test_additive_log_det_is_zero_and_zero_init_is_identity() -> None:
    x = _x((B, 4))
    _, ldj = _mlp_coupling(AdditiveCoupling, 4, 2)().forward_and_log_det(x)
    np.testing.assert_array_equal(ldj, np.zeros(B))
    for cls in (AffineCoupling, AdditiveCoupling):
        y, ldj = _mlp_coupling(cls, 4, 2, zero_init=True)().forward_and_log_det(x)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(ldj, np.zeros(B))


@pytest.mark.parametrize(("cls", "swap"), [(AffineCoupling, False), (AdditiveCoupling, True)])
def test_image_couplings_with_conv_conditioner(cls, swap) -> None:
    h, w, c, split = 3, 3, 4, 1
    c_trans = split if swap else c - split
    c_cond = c - c_trans
    module = ConvConditioner(features=8, out_channels=c_trans * cls.params_per_dim, zero_init=False)
    variables = _random_variables(module, jnp.zeros((1, h, w, c_cond), jnp.float64))
    bij = cls(functools.partial(module.apply, variables), split, event_ndims=3, swap=swap)
    x = _x((2, h, w, c))
    check_bijector(bij, x, atol=1e-9, rtol=1e-9)
    y = bij.forward(x)
    kept = slice(split, c) if swap else slice(0, split)
    np.testing.assert_array_equal(y[..., kept], x[..., kept])


def test_conditional_conv_coupling_uses_its_context() -> None:
    h, w, c, ctx_dim = 2, 2, 2, 3
    module = ConvConditioner(features=4, out_channels=2, zero_init=False)
    variables = _random_variables(
        module, jnp.zeros((1, h, w, 1), jnp.float64), jnp.zeros((1, ctx_dim))
    )
    ctx = _x((1, ctx_dim), seed=7)

    def make(context):
        return AffineCoupling(
            functools.partial(module.apply, variables, context=context), 1, event_ndims=3
        )

    x = _x((2, h, w, c))
    check_bijector(make(ctx), x, atol=1e-9, rtol=1e-9)
    assert np.abs(np.asarray(make(ctx).forward(x) - make(ctx + 1.0).forward(x))).max() > 1e-3


@pytest.mark.parametrize("cls", [AffineCoupling, AdditiveCoupling])
def test_conditional_couplings(cls) -> None:
    dim, ctx_dim = 4, 3
    make = _mlp_coupling(cls, dim, 2, ctx_dim=ctx_dim, seed=3)
    x = _x((B, dim))
    shared = _x((1, ctx_dim), seed=8)
    check_bijector(make(shared), x, atol=1e-9, rtol=1e-9)  # one context for the batch
    per_example = _x((B, ctx_dim), seed=9)
    y, ldj = make(per_example).forward_and_log_det(x)
    for i in range(B):  # each row is the single-context bijector of its own context
        yi, ldji = make(per_example[i : i + 1]).forward_and_log_det(x[i : i + 1])
        np.testing.assert_allclose(y[i], yi[0], rtol=1e-12)
        np.testing.assert_allclose(ldj[i], ldji[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(make(per_example).inverse(y), x, atol=1e-12)
    assert np.abs(np.asarray(y - make(per_example + 1.0).forward(x))).max() > 1e-3


def test_transformed_log_prob_grad_vmap_and_batch_shapes() -> None:
    dim = 4
    module = MLPConditioner(hidden=(8,), out_features=4, activation=nn.tanh, zero_init=False)
    variables = _random_variables(module, jnp.zeros((1, 2), jnp.float64))
    base = distrax.MultivariateNormalDiag(jnp.zeros(dim), jnp.ones(dim))
    x = _x((B, dim))

    def log_prob(v, x):
        bij = AffineCoupling(functools.partial(module.apply, v), 2)
        return distrax.Transformed(base, bij).log_prob(x)

    bij = AffineCoupling(functools.partial(module.apply, variables), 2)
    z, ildj = bij.inverse_and_log_det(x)
    expected = base.log_prob(z) + ildj
    lp = jax.jit(log_prob)(variables, x)
    assert lp.shape == (B,)
    np.testing.assert_allclose(lp, expected, rtol=1e-12)
    grads = jax.grad(lambda v: -jnp.mean(log_prob(v, x)))(variables)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in leaves)
    # vmap over single events, extra leading batch axes, and an unbatched event.
    np.testing.assert_allclose(jax.vmap(bij.forward)(x), bij.forward(x), rtol=1e-12)
    y2, l2 = bij.forward_and_log_det(x.reshape(1, B, dim))
    assert y2.shape == (1, B, dim) and l2.shape == (1, B)
    y1, l1 = bij.forward_and_log_det(x[0])
    assert y1.shape == (dim,) and l1.shape == ()
    np.testing.assert_allclose(l1, bij.forward_and_log_det(x)[1][0], rtol=1e-12)


def test_chain_and_inverse_compose() -> None:
    a = _mlp_coupling(AffineCoupling, 4, 2, swap=False, seed=1)()
    b = _mlp_coupling(AffineCoupling, 4, 2, swap=True, seed=2)()
    x = _x((B, 4))
    check_bijector(distrax.Chain([a, b]), x, atol=1e-9, rtol=1e-9)
    check_bijector(distrax.Inverse(a), x, atol=1e-9, rtol=1e-9)


def test_bad_inputs_raise_clear_errors() -> None:
    x = _x((B, 4))
    with pytest.raises(ShapeError, match="split_index"):
        AffineCoupling(lambda xc: xc, 4).forward(x)
    with pytest.raises(ShapeError, match="out_features = 2"):
        AffineCoupling(lambda xc: jnp.zeros((xc.shape[0], 3)), 2).forward(x)
    with pytest.raises(ConfigError, match="split_index"):
        AdditiveCoupling(lambda xc: xc, 0)
    with pytest.raises(ConfigError, match="scale_bound"):
        AffineCoupling(lambda xc: xc, 1, scale_bound=0.0)
    module = MLPConditioner(hidden=(4,), out_features=2)
    with pytest.raises(ShapeError, match=r"\[B, d\]"):
        module.init(jax.random.key(0), jnp.zeros((2,)))
    with pytest.raises(ShapeError, match="context"):
        module.init(jax.random.key(0), jnp.zeros((2, 2)), jnp.zeros((3, 1)))
    with pytest.raises(ShapeError, match=r"\[B, H, W, C\]"):
        ConvConditioner(features=2, out_channels=2).init(jax.random.key(0), jnp.zeros((2, 2)))
