"""MADE: degrees, masks and the autoregressive property of the network's Jacobian.

ORACLES.md: d out_i / d x_j == 0 for every j at or after i in the ordering, checked on the
Jacobian of the outputs (not only on the masks); with tanh units and widths >= D - 1 every
allowed dependency is present (non-zero).
"""

from __future__ import annotations

from collections.abc import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from genjax_models.nn.made import MADE, MaskedDense, made_degrees, made_input_degrees, made_masks
from tests.x64 import float64

ORDERS = ["natural", "reverse", "random", (2, 0, 4, 1, 3)]


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _allowed(degrees: np.ndarray) -> np.ndarray:
    """``[D_out, D_in]``: True where output i may depend on input j (m(j) < m(i))."""
    return degrees[None, :] < degrees[:, None]


def test_input_degrees_follow_the_ordering() -> None:
    np.testing.assert_array_equal(made_input_degrees(4, "natural"), [1, 2, 3, 4])
    np.testing.assert_array_equal(made_input_degrees(4, "reverse"), [4, 3, 2, 1])
    np.testing.assert_array_equal(made_input_degrees(4, (2, 0, 3, 1)), [2, 4, 1, 3])
    rand = made_input_degrees(6, "random", seed=3)
    assert sorted(rand.tolist()) == list(range(1, 7))
    np.testing.assert_array_equal(rand, made_input_degrees(6, "random", seed=3))
    assert not np.array_equal(rand, made_input_degrees(6, "random", seed=4))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("hidden", [(8,), (3, 7), (2, 2, 5)])
def test_masks_connect_exactly_the_allowed_pairs_and_use_every_unit(order, hidden) -> None:
    dim = 5
    masks = made_masks(dim, hidden, order, seed=1)
    degrees = made_degrees(dim, hidden, order, seed=1)
    assert [m.shape for m in masks] == [
        (a, b) for a, b in zip((dim, *hidden), (*hidden, dim), strict=True)
    ]
    for layer in degrees[1:]:
        assert layer.min() >= 1 and layer.max() <= dim - 1
    for mask in masks[:-1]:
        assert mask.sum(axis=0).min() >= 1  # every hidden unit receives an input
    for mask in masks[1:]:
        assert mask.sum(axis=1).min() >= 1  # every hidden unit feeds something
    paths = masks[0]
    for mask in masks[1:]:
        paths = paths @ mask
    connected = paths.T > 0  # [D_out, D_in]
    allowed = _allowed(degrees[0])
    assert not np.any(connected & ~allowed)
    if min(hidden) >= dim - 1:
        np.testing.assert_array_equal(connected, allowed)


@pytest.mark.parametrize("order", ORDERS)
def test_jacobian_is_autoregressive(order) -> None:
    dim, params, ctx_dim = 5, 3, 2
    made = MADE(hidden=(8, 8), num_params=params, order=order, seed=2, activation=nn.tanh)
    x = jax.random.normal(jax.random.key(0), (1, dim), jnp.float64)
    ctx = jax.random.normal(jax.random.key(1), (1, ctx_dim), jnp.float64)
    variables = made.init(jax.random.key(2), x, ctx)
    out = made.apply(variables, x, ctx)
    assert out.shape == (1, dim, params)
    jac = jax.jacfwd(lambda v: made.apply(variables, v[None], ctx)[0])(x[0])  # [D, P, D]
    dependence = np.abs(np.asarray(jac)).max(axis=1)  # [D_out, D_in]
    allowed = _allowed(made_input_degrees(dim, order, seed=2))
    assert np.all(dependence[~allowed] == 0.0)
    assert np.all(dependence[allowed] > 1e-8)


def test_first_variable_depends_only_on_context() -> None:
    made = MADE(hidden=(6,), num_params=2, order="reverse", activation=nn.tanh)
    x = jax.random.normal(jax.random.key(0), (3, 4), jnp.float64)
    ctx = jax.random.normal(jax.random.key(1), (3, 2), jnp.float64)
    variables = made.init(jax.random.key(2), x, ctx)
    out = made.apply(variables, x, ctx)
    out_other_x = made.apply(variables, x + 1.0, ctx)
    np.testing.assert_allclose(out[:, 3], out_other_x[:, 3], atol=1e-12)  # x_3 is first
    assert np.abs(np.asarray(made.apply(variables, x, ctx + 1.0) - out)).max() > 1e-3


def test_context_broadcasts_and_single_input() -> None:
    made = MADE(hidden=(4,), num_params=2)
    x = jax.random.normal(jax.random.key(0), (3, 1), jnp.float64)
    ctx = jnp.array([0.5, -1.0])
    variables = made.init(jax.random.key(1), x, ctx)
    a = made.apply(variables, x, ctx)
    b = made.apply(variables, x, jnp.tile(ctx, (3, 1)))
    np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(a, made.apply(variables, x + 3.0, ctx), atol=1e-12)  # D = 1
    no_hidden = MADE(hidden=(), num_params=2)
    v0 = no_hidden.init(jax.random.key(1), x, ctx)
    assert no_hidden.apply(v0, x, ctx).shape == (3, 1, 2)


def test_zero_init_output_gives_zeros_and_jit_grad_work() -> None:
    made = MADE(hidden=(8,), num_params=2, zero_init_output=True)
    x = jax.random.normal(jax.random.key(0), (4, 3), jnp.float64)
    variables = made.init(jax.random.key(1), x)
    np.testing.assert_array_equal(jax.jit(made.apply)(variables, x), np.zeros((4, 3, 2)))
    grads = jax.grad(lambda v: jnp.sum(made.apply(v, x) ** 2 + made.apply(v, x)))(variables)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_masked_dense_applies_its_mask() -> None:
    mask = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    layer = MaskedDense(2, mask)
    x = jnp.ones((1, 2))
    variables = layer.init(jax.random.key(0), x)
    kernel = variables["params"]["kernel"]
    np.testing.assert_allclose(layer.apply(variables, x), x @ (kernel * mask), rtol=1e-6)
    with pytest.raises(ShapeError, match="expected"):
        MaskedDense(3, mask).init(jax.random.key(0), x)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(UnknownNameError, match="natural"):
        made_input_degrees(3, "sideways")
    with pytest.raises(ConfigError, match="permutation"):
        made_input_degrees(3, (0, 0, 1))
    made = MADE(hidden=(4,), num_params=2)
    with pytest.raises(ShapeError, match=r"\[B, D\]"):
        made.init(jax.random.key(0), jnp.ones((3,)))
    with pytest.raises(ShapeError, match="context"):
        made.init(jax.random.key(0), jnp.ones((3, 2)), jnp.ones((2, 5)))
