"""Gated PixelCNN against the autoregressive oracles (shared/ORACLES.md).

- normalisation: exp(log_prob) sums to 1 over all 2^12 binary 3x4 images and over all 4^4
  grey 2x2 images under the discretised logistic mixture (float64, random order-one params);
- receptive field (Jacobian): no output depends on its own or a later pixel, and with four
  3x3 layers on a 4x4 image every earlier pixel reaches every output (no blind spot);
- sampling: frequencies of 50 000 draws of a 2x2 image match the enumerated probabilities;
- class conditioning changes the conditionals, and the model is normalised for each label;
- completion with the top half observed is exact and matches the enumerated conditional;
- bad shapes and kernels are refused with a clear message.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive.pixelcnn import PixelCNN
from genjax_models.data import Batch, DataSpec
from genjax_models.errors import ConfigError
from genjax_models.model import get_model
from tests.autoregressive.oracles import (
    all_configurations,
    assert_autoregressive,
    completion_total_variation,
    sample_total_variation,
)
from tests.x64 import float64

TINY = {"channels": 4, "num_layers": 2, "kernel_size": 3, "first_kernel_size": 3}


def _perturbed(model: PixelCNN, seed: int = 0, scale: float = 1.0):
    """Random params of order one, in the shapes ``model.init`` gives.

    Conv kernels ``[kh, kw, C, O]`` are ``scale * N(0, 1 / fan_in)``, label embeddings
    ``[K, 4F]`` ``scale * N(0, 1)``, biases ``0.5 scale N(0, 1)``. Drawn with numpy on the
    ``eval_shape`` of the init: compiling the init's truncated normals alone takes seconds.
    """
    x = jnp.zeros((1, *model.event_shape))
    shapes = jax.eval_shape(model.init, jax.random.key(seed), x)
    rng = np.random.default_rng(seed)

    def draw(leaf):
        fan_in = {4: int(np.prod(leaf.shape[:-1])), 2: 1, 1: 4}[len(leaf.shape)]
        value = scale * rng.normal(size=leaf.shape) / np.sqrt(fan_in)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map(draw, shapes)


def _jit_mass(model, params, levels, labels=None):
    """Oracle ``total_mass`` (sum of exp(log_prob) over every image), compiled once."""
    everything = all_configurations(model.event_shape, levels)
    batch = everything if labels is None else Batch(everything, jnp.full(len(everything), labels))
    return float(jnp.exp(jax.jit(model.log_prob)(params, batch, jax.random.key(0))).sum())


def test_binary_3x4_is_normalised():
    with float64():
        model = PixelCNN((3, 4), **TINY)
        params = _perturbed(model)
        everything = all_configurations(model.event_shape, 2)
        log_p = jax.jit(model.log_prob)(params, everything, jax.random.key(0))
        assert log_p.dtype == jnp.float64 and log_p.shape == (2**12,)
        np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-5)
        # Not trivially uniform (uniform: every log_p = -12 log 2 = -8.32).
        assert float(jnp.std(log_p)) > 0.5, float(jnp.std(log_p))


def test_logistic_mixture_2x2_is_normalised():
    with float64():
        model = PixelCNN.from_spec(
            DataSpec((2, 2, 1), "grey", 4),
            likelihood="logistic-mixture",
            num_components=3,
            **TINY,
        )
        assert model.conditional.num_outputs == 9
        params = _perturbed(model, seed=2)
        mass = _jit_mass(model, params, levels=4)
        np.testing.assert_allclose(mass, 1.0, atol=1e-5)


def test_categorical_2x2_is_normalised():
    with float64():
        model = PixelCNN.from_spec(DataSpec((2, 2, 1), "grey", 3), **TINY)
        assert model.likelihood == "categorical"
        np.testing.assert_allclose(_jit_mass(model, _perturbed(model, 4), 3), 1.0, atol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 4])
def test_receptive_field_is_causal_and_has_no_blind_spot(num_layers):
    model = PixelCNN(
        (4, 4, 1), channels=8, num_layers=num_layers, kernel_size=3, first_kernel_size=3
    )
    params = _perturbed(model, seed=5, scale=0.3)
    x = jax.random.uniform(jax.random.key(7), (model.num_dims,))

    @jax.jit
    def fn(v):
        return model.conditional_outputs(params, v[None], None)[0]

    order = np.arange(16)
    # Always causal: nothing depends on its own or a later pixel (raises otherwise).
    assert_autoregressive(fn, x, order, complete=False)
    if num_layers == 4:
        assert_autoregressive(fn, x, order, complete=True)  # every earlier pixel reaches
    else:
        # One 3x3 layer reaches only the row above (3 columns) and the left neighbour:
        # output (2, 2) = 10 does not see pixel (0, 0) = 0.
        with pytest.raises(AssertionError, match="blind spot"):
            assert_autoregressive(fn, x, order, complete=True)


def test_sample_frequencies_match_log_prob():
    model = PixelCNN((2, 2, 1), **TINY)
    params = _perturbed(model, seed=11, scale=1.0)
    tv = sample_total_variation(model, params, 50_000, levels=2)
    assert tv < 0.02, tv


def test_class_conditioning_changes_outputs_and_each_label_is_normalised():
    with float64():
        model = PixelCNN((2, 3), num_classes=3, **TINY)
        params = _perturbed(model, seed=13)
        assert "label" in params["GatedLayer_0"]
        everything = all_configurations(model.event_shape, 2)
        masses = [_jit_mass(model, params, 2, labels=k) for k in range(3)]
        np.testing.assert_allclose(masses, 1.0, atol=1e-5)
        np.testing.assert_allclose(_jit_mass(model, params, 2), 1.0, atol=1e-5)  # y = None
        log_prob = jax.jit(model.log_prob)
        logs = [
            np.asarray(log_prob(params, Batch(everything, jnp.full(64, k)), jax.random.key(0)))
            for k in range(3)
        ]
        assert np.abs(logs[0] - logs[1]).max() > 0.1 and np.abs(logs[1] - logs[2]).max() > 0.1
        # Unconditional model: labels in a batch are ignored, labels to sample are refused.
        plain = PixelCNN((2, 3), **TINY)
        plain_params = _perturbed(plain, seed=13)
        plain_log_prob = jax.jit(plain.log_prob)
        np.testing.assert_array_equal(
            plain_log_prob(plain_params, Batch(everything, jnp.full(64, 1)), jax.random.key(0)),
            plain_log_prob(plain_params, everything, jax.random.key(0)),
        )
        with pytest.raises(ConfigError, match="unconditional"):
            plain.sample(plain_params, jax.random.key(0), 2, labels=jnp.zeros(2, jnp.int32))
        sample = jax.jit(lambda k, y: model.sample(params, k, 4, labels=y))
        samples = sample(jax.random.key(0), jnp.arange(4) % 3)
        assert samples.shape == (4, 2, 3) and set(np.unique(samples)) <= {0.0, 1.0}


def test_completion_of_the_bottom_half_is_exact():
    with float64():
        model = PixelCNN((2, 3, 1), **TINY)
        params = _perturbed(model, seed=17, scale=1.0)
        x = jnp.asarray([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])[..., None]
        observed = np.zeros((2, 3, 1), bool)
        observed[0] = True
        exact = jax.jit(lambda k: model.complete(params, k, x[None], observed, 2).exact)
        assert bool(exact(jax.random.key(1))[0])
        tv, log_p_obs, log_p_enum = completion_total_variation(
            model, params, x, observed, 20_000, levels=2
        )
        np.testing.assert_allclose(log_p_obs, log_p_enum, atol=1e-6)
        assert tv < 0.02, tv


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError, match=r"\(H, W\) or \(H, W, 1\)"):
        PixelCNN((16,))
    with pytest.raises(ConfigError, match="one-channel"):
        PixelCNN((4, 4, 3))
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        PixelCNN((4, 4), kernel_size=4)
    with pytest.raises(ConfigError, match="likelihood"):
        PixelCNN((4, 4), likelihood="gaussian-mixture")
    with pytest.raises(ConfigError, match=r"data.binarize=threshold\(8\)"):
        get_model("pixelcnn", DataSpec((8, 8, 1), "continuous", 17))
