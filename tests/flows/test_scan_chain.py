"""ScanChain: equals the distrax.Chain it replaces, passes the bijector checks, scans.

Layers are chains of two couplings (or a MAF) with random stacked parameters, in float64.
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
from genjax_models.flows.autoregressive import MaskedAutoregressive
from genjax_models.flows.conditioners import MLPConditioner
from genjax_models.flows.coupling import AffineCoupling
from genjax_models.flows.scan_chain import ScanChain, init_stacked, num_stacked, stack_params
from genjax_models.flows.spline import SplineCoupling, spline_param_size
from genjax_models.nn.made import MADE
from tests.flows.checks import check_bijector
from tests.x64 import float64

B, D, K = 3, 4, 4


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


COND = MLPConditioner(hidden=(8,), out_features=4, activation=nn.tanh, zero_init=False)


def _coupling_layer(p) -> distrax.Bijector:
    """One layer: transform the second half, then the first (distrax applies 'b' first)."""
    return distrax.Chain(
        [
            AffineCoupling(functools.partial(COND.apply, p["a"]), 2, swap=True),
            AffineCoupling(functools.partial(COND.apply, p["b"]), 2),
        ]
    )


def _coupling_params(num_layers, seed=0):
    x_half = jnp.zeros((1, 2))
    return stack_params(
        [
            {
                "a": _random_variables(COND, x_half, seed=seed + 2 * i),
                "b": _random_variables(COND, x_half, seed=seed + 2 * i + 1),
            }
            for i in range(num_layers)
        ]
    )


def _x(shape, seed=1, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def test_scan_chain_equals_the_distrax_chain_of_its_layers() -> None:
    num_layers = 3
    stacked = _coupling_params(num_layers)
    scan = ScanChain(_coupling_layer, stacked, event_ndims=1)
    layers = [
        _coupling_layer(jax.tree_util.tree_map(lambda a, i=i: a[i], stacked))
        for i in range(num_layers)
    ]
    chain = distrax.Chain(layers[::-1])  # layer 0 applied first
    x = _x((B, D))
    for got, want in [
        (scan.forward_and_log_det(x), chain.forward_and_log_det(x)),
        (scan.inverse_and_log_det(x), chain.inverse_and_log_det(x)),
    ]:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    wrong_order = distrax.Chain(layers)
    assert np.abs(np.asarray(wrong_order.forward(x) - scan.forward(x))).max() > 1e-3


def test_layer_zero_is_applied_first() -> None:
    params = {"shift": jnp.array([1.0, 0.0]), "scale": jnp.array([1.0, 3.0])}

    def layer(p):
        return distrax.Block(distrax.ScalarAffine(shift=p["shift"], scale=p["scale"]), 1)

    scan = ScanChain(layer, params, event_ndims=1)
    x = jnp.array([[2.0, -1.0]])
    y, ldj = scan.forward_and_log_det(x)
    np.testing.assert_allclose(y, 3.0 * (x + 1.0), rtol=1e-12)  # shift by 1, then scale by 3
    np.testing.assert_allclose(ldj, [2 * np.log(3.0)], rtol=1e-12)
    np.testing.assert_allclose(scan.inverse(y), x, rtol=1e-12)


def test_scan_chain_of_couplings_passes_the_bijector_checks() -> None:
    scan = ScanChain(_coupling_layer, _coupling_params(3, seed=10), event_ndims=1)
    check_bijector(scan, _x((B, D)), atol=1e-8, rtol=1e-8)


@pytest.mark.slow
def test_scan_chain_of_splines_and_of_mafs_pass_the_bijector_checks() -> None:
    dim = 3
    cond = MLPConditioner(hidden=(8,), out_features=2 * spline_param_size(K), zero_init=False)

    def spline_layer(p):
        return SplineCoupling(functools.partial(cond.apply, p), 1, num_bins=K, bound=2.0)

    stacked = stack_params(
        [_random_variables(cond, jnp.zeros((1, 1)), seed=i, scale=1.5) for i in range(3)]
    )
    check_bijector(
        ScanChain(spline_layer, stacked, 1), _x((2, dim), scale=1.5), atol=1e-8, rtol=1e-8
    )
    made = MADE(hidden=(8,), num_params=2, order="reverse", activation=nn.tanh)
    stacked_made = stack_params(
        [_random_variables(made, jnp.zeros((1, dim)), seed=i) for i in range(2)]
    )
    maf_chain = ScanChain(
        lambda p: MaskedAutoregressive(functools.partial(made.apply, p), dim), stacked_made, 1
    )
    check_bijector(maf_chain, _x((2, dim)), atol=1e-8, rtol=1e-8)


def test_transformed_log_prob_jit_grad_and_vmap() -> None:
    stacked = _coupling_params(2, seed=20)
    base = distrax.MultivariateNormalDiag(jnp.zeros(D), jnp.ones(D))
    x = _x((B, D))

    def log_prob(params, x):
        return distrax.Transformed(base, ScanChain(_coupling_layer, params, 1)).log_prob(x)

    scan = ScanChain(_coupling_layer, stacked, 1)
    z, ildj = scan.inverse_and_log_det(x)
    lp = jax.jit(log_prob)(stacked, x)
    assert lp.shape == (B,)
    np.testing.assert_allclose(lp, base.log_prob(z) + ildj, rtol=1e-12)
    grads = jax.grad(lambda p: -jnp.mean(log_prob(p, x)))(stacked)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves) and leaves[0].shape[0] == 2
    np.testing.assert_allclose(jax.vmap(scan.forward)(x), scan.forward(x), rtol=1e-12)


def test_program_size_does_not_grow_with_depth() -> None:
    x = _x((B, D))
    sizes = [
        len(jax.make_jaxpr(ScanChain(_coupling_layer, _coupling_params(n), 1).forward)(x).eqns)
        for n in (2, 8)
    ]
    assert sizes[0] == sizes[1]


def test_init_stacked_matches_stack_params() -> None:
    x_half = jnp.zeros((1, 2))

    def init_fn(key):
        return COND.init(key, x_half)

    key = jax.random.key(4)
    stacked = init_stacked(init_fn, key, 3)
    assert num_stacked(stacked) == 3
    jitted = jax.jit(init_fn)
    manual = stack_params([jitted(k) for k in jax.random.split(key, 3)])
    for a, b in zip(
        jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(manual), strict=True
    ):
        assert a.shape[0] == 3
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    kernel = stacked["params"]["Dense_0"]["kernel"]
    assert np.abs(np.asarray(kernel[0] - kernel[1])).max() > 0  # layers differ


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        stack_params([])
    with pytest.raises(ConfigError, match="num_layers"):
        init_stacked(lambda k: {"w": jnp.zeros(2)}, jax.random.key(0), 0)
    with pytest.raises(ShapeError, match="leading"):
        ScanChain(
            lambda p: distrax.Block(distrax.ScalarAffine(p["a"]), 1),
            {"a": jnp.zeros((2, 3)), "b": jnp.zeros((3, 3))},
            1,
        )

    class _DropLast(distrax.Bijector):  # not a bijection: changes the event shape
        def __init__(self):
            super().__init__(event_ndims_in=1)

        def forward_and_log_det(self, x):
            return x[..., :1], jnp.zeros(x.shape[:-1])

        def inverse_and_log_det(self, y):
            return y, jnp.zeros(y.shape[:-1])

    def squeeze_layer(p):
        return _DropLast()

    with pytest.raises(ShapeError, match="preserve shape"):
        ScanChain(squeeze_layer, {"a": jnp.zeros((2,))}, 1).forward_and_log_det(jnp.zeros((2, 2)))
