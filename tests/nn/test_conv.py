"""``genjax_models.nn.conv``: values and derivatives equal ``flax.linen.Conv`` (float64).

The patch-matrix derivatives are an exact rewriting of the convolution's derivatives, so in
float64 they must agree with XLA's to rounding, in forward mode (jvp), reverse mode (vjp) and
inside a ``lax.scan`` (the case they exist for), for 1x1 and 3x3 kernels, strides 1 and 2 and odd
sizes (where SAME padding is asymmetric).
"""

from __future__ import annotations

from collections.abc import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ShapeError, UnknownNameError
from genjax_models.nn.conv import Conv, conv2d, extract_patches, resolve_impl
from tests.x64 import float64

CASES = [  # (input shape, kernel size, strides, features)
    ((2, 5, 7, 3), (3, 3), (1, 1), 4),
    ((2, 7, 5, 3), (3, 3), (2, 2), 4),
    ((3, 8, 8, 2), (3, 3), (2, 1), 5),
    ((2, 6, 6, 3), (1, 1), (1, 1), 4),
    ((1, 5, 5, 2), (2, 3), (1, 1), 3),
]


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _setup(shape, kernel_size, strides, features, impl):
    x = jax.random.normal(jax.random.key(0), shape, jnp.float64)
    ours = Conv(features, kernel_size, strides=strides, impl=impl)
    flax_conv = nn.Conv(features, kernel_size, strides=strides, padding="SAME")
    params = ours.init(jax.random.key(1), x)
    params = jax.tree_util.tree_map(lambda p: p + 0.1, params)  # a non-zero bias too
    return x, ours, flax_conv, params


@pytest.mark.parametrize("impl", ["patches", "xla", "auto"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_values_and_derivatives_equal_flax_conv(case, impl):
    x, ours, flax_conv, params = _setup(*case, impl)
    # Same parameter tree as flax's Conv, so checkpoints and initialisers carry over.
    flax_params = flax_conv.init(jax.random.key(1), x)
    assert jax.tree_util.tree_structure(flax_params) == jax.tree_util.tree_structure(params)
    assert jax.tree_util.tree_map(jnp.shape, flax_params) == jax.tree_util.tree_map(
        jnp.shape, params
    )

    def ours_fn(p, x):
        return ours.apply(p, x)

    def flax_fn(p, x):
        return flax_conv.apply(p, x)

    np.testing.assert_allclose(ours_fn(params, x), flax_fn(params, x), rtol=1e-12, atol=1e-12)
    tangents = jax.tree_util.tree_map(lambda p: jnp.cos(3.0 * p), (params, x))
    _, jvp_ours = jax.jvp(ours_fn, (params, x), tangents)
    _, jvp_flax = jax.jvp(flax_fn, (params, x), tangents)
    np.testing.assert_allclose(jvp_ours, jvp_flax, rtol=1e-12, atol=1e-12)
    out, vjp_ours = jax.vjp(ours_fn, params, x)
    _, vjp_flax = jax.vjp(flax_fn, params, x)
    cotangent = jnp.sin(jnp.arange(out.size, dtype=out.dtype)).reshape(out.shape)
    for a, b in zip(
        jax.tree_util.tree_leaves(vjp_ours(cotangent)),
        jax.tree_util.tree_leaves(vjp_flax(cotangent)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.smoke
def test_gradients_inside_scan_equal_flax_conv():
    """Ten gradient steps in a ``lax.scan`` (a training loop) match flax's Conv step for step."""
    x, ours, flax_conv, params = _setup((4, 6, 6, 3), (3, 3), (1, 1), 3, "patches")

    def train(module, params):
        def step(p, _):
            loss, g = jax.value_and_grad(lambda p: jnp.sum(jnp.tanh(module.apply(p, x)) ** 2))(p)
            return jax.tree_util.tree_map(lambda a, b: a - 0.01 * b, p, g), loss

        return jax.jit(lambda p: jax.lax.scan(step, p, None, length=10))(params)

    (final_ours, losses_ours), (final_flax, losses_flax) = (
        train(ours, params),
        train(flax_conv, params),
    )
    np.testing.assert_allclose(losses_ours, losses_flax, rtol=1e-10)
    assert losses_ours[-1] < losses_ours[0]
    for a, b in zip(
        jax.tree_util.tree_leaves(final_ours), jax.tree_util.tree_leaves(final_flax), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_patches_match_a_direct_window_read():
    """Output pixel (i, j) of a stride-2 SAME conv reads the padded window at (2i, 2j)."""
    x = jnp.arange(1 * 5 * 5 * 2, dtype=jnp.float64).reshape(1, 5, 5, 2)
    patches = extract_patches(x, (3, 3), (2, 2))
    assert patches.shape == (1, 3, 3, 18)
    padded = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))  # 5 -> 3 outputs: pad 1, 1
    for i in range(3):
        for j in range(3):
            window = padded[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :].reshape(-1)
            np.testing.assert_array_equal(patches[0, i, j], window)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ShapeError, match=r"\[B, H, W, C\]"):
        conv2d(jnp.zeros((2, 4, 4)), jnp.zeros((3, 3, 4, 1)))
    with pytest.raises(ShapeError, match="matching C"):
        conv2d(jnp.zeros((2, 4, 4, 3)), jnp.zeros((3, 3, 4, 1)))
    with pytest.raises(UnknownNameError, match="auto, patches, xla"):
        resolve_impl("cudnn")
    assert resolve_impl("auto") == ("patches" if jax.default_backend() == "cpu" else "xla")


def test_dtype_promotion_matches_flax_conv():
    """float32 inputs with float64 parameters compute in float64, as ``flax.linen.Conv`` does."""
    x64 = jax.random.normal(jax.random.key(0), (1, 4, 4, 2), jnp.float64)
    params = Conv(3).init(jax.random.key(1), x64)
    x32 = x64.astype(jnp.float32)
    ours = Conv(3).apply(params, x32)
    theirs = nn.Conv(3, (3, 3), padding="SAME").apply(params, x32)
    assert ours.dtype == theirs.dtype == jnp.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
