"""Diffusion networks: ScoreMLP, the U-Net, time / label embeddings and the network factory.

Shapes for 2-D, 16-D, 8x8x1 and 28x28x1 data, zero output at initialisation, jit and grad,
finite values, the class embedding (with its null label) changing the output, and the embeddings'
closed forms. Sizes are tiny: the U-Net's parameters do not depend on the image size, so one
initialisation serves both resolutions.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion.networks import ScoreMLP, make_network
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from genjax_models.nn.time_embedding import (
    GaussianFourierEmbedding,
    LabelEmbedding,
    TimeEmbedding,
    drop_labels,
    sinusoidal_embedding,
)
from genjax_models.nn.unet import UNet

B = 3


def _randomise_output_layer(params, seed):
    """Give the zero-initialised kernels (the output layer) random values, so inputs show."""
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if "kernel" in jax.tree_util.keystr(path) and not np.asarray(leaf).any():
            return jnp.asarray(0.1 * rng.normal(size=leaf.shape), leaf.dtype)
        return leaf

    return jax.tree_util.tree_map_with_path(fill, params)


def _init(net, x, *labels):
    """Initialise under jit; assert the zero-initialised output. An "rbg" key: its random numbers
    compile several times faster than threefry's, which dominates these tests' time."""
    key = jax.random.key(0, impl="rbg")
    out, params = jax.jit(net.init_with_output)(key, x, jnp.zeros(x.shape[0]), *labels)
    assert out.shape == x.shape
    np.testing.assert_array_equal(np.asarray(out), 0.0)
    return params


def _check_network(net, params, x, labels=None):
    """With the output layer randomised: output shape == input shape, finite outputs, finite and
    non-zero gradients (one compiled function). Returns the randomised parameters and output."""
    c = jnp.tile(jnp.array([0.2, 0.7]), x.shape[0] // 2 + 1)[: x.shape[0]]
    randomised = _randomise_output_layer(params, 9)

    def objective(p):
        out = net.apply(p, x, c, labels)
        return jnp.mean(out**2), out

    grads, out = jax.jit(jax.grad(objective, has_aux=True))(randomised)
    assert out.shape == x.shape
    assert np.isfinite(np.asarray(out)).all() and np.abs(np.asarray(out)).max() > 0
    leaves = [np.asarray(g) for g in jax.tree_util.tree_leaves(grads)]  # numpy: no compiles
    assert all(np.isfinite(g).all() for g in leaves)
    assert sum(np.abs(g).sum() for g in leaves) > 0
    return randomised, out


@pytest.mark.parametrize("dim, combine", [(2, "add"), (16, "concat")])
def test_score_mlp_shapes_zero_init_jit_grad(dim, combine):
    net = make_network((dim,), hidden=(32, 32, 32), time_dim=16, combine=combine)
    assert isinstance(net, ScoreMLP)
    x = jax.random.normal(jax.random.key(0), (B, dim))
    params, _ = _check_network(net, _init(net, x), x)
    # A scalar noise feature broadcasts over the batch.
    np.testing.assert_allclose(
        np.asarray(net.apply(params, x, 0.3)), np.asarray(net.apply(params, x, jnp.full(B, 0.3))),
        atol=1e-6,
    )


def test_score_mlp_class_embedding_changes_output():
    net = ScoreMLP(hidden=(32, 32), time_dim=16, num_classes=4)
    x = jax.random.normal(jax.random.key(0), (B, 2))
    params = _init(net, x, jnp.zeros(B, jnp.int32))
    params = _randomise_output_layer(params, 2)
    c = jnp.full(B, 0.5)
    apply = jax.jit(lambda labels: net.apply(params, x, c, labels))
    out = {k: apply(jnp.full(B, k, jnp.int32)) for k in (0, 1, -1, 4)}
    assert float(jnp.abs(out[0] - out[1]).max()) > 1e-4
    # No labels, -1 and K all select the null label.
    np.testing.assert_allclose(np.asarray(net.apply(params, x, c)), np.asarray(out[-1]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out[4]), np.asarray(out[-1]), atol=1e-6)
    assert float(jnp.abs(out[-1] - out[0]).max()) > 1e-4


@pytest.fixture(scope="module")
def unet_and_params():
    """A conditional U-Net with two downsamplings and attention, initialised on an 8x8 batch
    (zero output checked there; the parameters do not depend on the image size)."""
    net = make_network((8, 8, 1), base_width=8, channel_mults=(1, 2, 2), time_dim=16,
                       num_classes=10, attention=True)
    assert isinstance(net, UNet)
    params = _init(net, jnp.ones((2, 8, 8, 1)), jnp.zeros(2, jnp.int32))
    return net, params


@pytest.mark.parametrize("size", [8, pytest.param(28, marks=pytest.mark.slow)])
def test_unet_shapes_jit_grad_and_labels(unet_and_params, size):
    """8 -> 4 -> 2 and 28 -> 14 -> 7 with the same parameters; rows 0 and 2 (labels 1, 2) share
    an input and must differ; rows 1 and 3 (labels 10 and -1: both null) must agree."""
    net, params = unet_and_params
    x = jax.random.uniform(jax.random.key(size), (2, size, size, 1))
    x = jnp.concatenate([x, x])
    _, out = _check_network(net, params, x, jnp.array([1, 10, 2, -1]))
    assert float(jnp.abs(out[0] - out[2]).max()) > 1e-5
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(out[3]), rtol=1e-5, atol=1e-7)


def test_unet_odd_sizes_and_defaults(unet_and_params):
    """Odd sizes (7x5, 3x3) go through both downsamplings; shapes by abstract evaluation."""
    net, params = unet_and_params
    for shape in [(1, 7, 5, 1), (2, 3, 3, 1)]:
        out = jax.eval_shape(net.apply, params, jnp.zeros(shape), 0.5, None)
        assert out.shape == shape
    plain = UNet(base_width=8, channel_mults=(1, 2), time_dim=16, out_channels=2)
    x = jnp.zeros((1, 6, 6, 3))
    variables = jax.eval_shape(plain.init, jax.random.key(0), x, 0.5)
    assert jax.eval_shape(plain.apply, variables, x, 0.5).shape == (1, 6, 6, 2)
    with pytest.raises(ConfigError, match="num_classes"):
        jax.eval_shape(plain.apply, variables, x, 0.5, jnp.zeros(1, jnp.int32))


def test_sinusoidal_and_fourier_embeddings_closed_form():
    t = jnp.array([0.0, 0.25, 1.0])
    emb = sinusoidal_embedding(t, 8, scale=10.0, max_period=100.0)
    freqs = 100.0 ** (-np.arange(4) / 4)
    args = 10.0 * np.asarray(t)[:, None] * freqs[None]
    np.testing.assert_allclose(np.asarray(emb), np.concatenate([np.sin(args), np.cos(args)], -1),
                               rtol=1e-5, atol=1e-6)
    fourier = GaussianFourierEmbedding(6, scale=2.0)
    out, params = fourier.init_with_output(jax.random.key(0), t)
    w = np.asarray(params["params"]["freqs"])
    args = 2 * math.pi * np.asarray(t)[:, None] * w[None]
    np.testing.assert_allclose(np.asarray(out), np.concatenate([np.sin(args), np.cos(args)], -1),
                               rtol=1e-5, atol=1e-6)
    # The random frequencies are not trained: zero gradient.
    grad = jax.grad(lambda p: jnp.sum(fourier.apply(p, t)))(params)
    np.testing.assert_array_equal(np.asarray(grad["params"]["freqs"]), 0.0)
    emb, _ = TimeEmbedding(8, "fourier").init_with_output(jax.random.key(0), t)
    assert emb.shape == (3, 8)


def test_label_embedding_and_dropping():
    embed = LabelEmbedding(num_classes=3, dim=4)
    assert embed.null_label == 3
    out, _ = embed.init_with_output(jax.random.key(0), jnp.array([0, 2, 3, -1]))
    np.testing.assert_array_equal(np.asarray(out[2]), np.asarray(out[3]))  # both null
    labels = jnp.arange(1000) % 3
    dropped = drop_labels(jax.random.key(1), labels, 0.2, 3)
    frac = float(jnp.mean(dropped == 3))
    assert 0.15 < frac < 0.25
    kept = dropped != 3
    np.testing.assert_array_equal(np.asarray(dropped[kept]), np.asarray(labels[kept]))


def test_factory_and_errors():
    assert isinstance(make_network((5,)), ScoreMLP)
    assert isinstance(make_network((8, 8, 1), kind="auto"), UNet)
    assert isinstance(make_network((8, 8, 1), kind="mlp"), ScoreMLP)  # flattens images
    with pytest.raises(UnknownNameError, match="auto, mlp, unet"):
        make_network((2,), kind="resnet")
    with pytest.raises(ConfigError, match="valid: "):
        make_network((2,), widths=(3,))
    with pytest.raises(ConfigError, match=r"\(H, W, C\)"):
        make_network((8, 8))
    with pytest.raises(ConfigError, match="image"):
        make_network((4,), kind="unet")
    with pytest.raises(ShapeError, match="H, W, C"):
        UNet().init(jax.random.key(0), jnp.zeros((2, 4)), 0.0)
    with pytest.raises(ShapeError, match=r"\[2\]"):
        ScoreMLP(hidden=(4,)).init(jax.random.key(0), jnp.zeros((2, 3)), jnp.zeros(3))
    with pytest.raises(ConfigError, match="even"):
        sinusoidal_embedding(jnp.zeros(2), 5)
    with pytest.raises(UnknownNameError, match="fourier, sinusoidal"):
        TimeEmbedding(4, "learned").init(jax.random.key(0), jnp.zeros(2))
    assert issubclass(ScoreMLP, nn.Module)
