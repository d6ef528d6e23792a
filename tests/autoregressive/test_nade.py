"""NADE and RNADE against the autoregressive oracles (shared/ORACLES.md).

- the O(DH) cumulative-sum pass equals D separate O(DH) networks (the naive O(D^2 H) pass);
- normalisation by enumeration (binary 3x3, 3-level D = 6); RNADE integrates to 1 in 2-D;
- every conditional depends on exactly the earlier pixels (Jacobian);
- the O(H) incremental sampling step equals the full pass; sample frequencies match;
- completion of an observed prefix is exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive.nade import NADE
from genjax_models.data import DataSpec
from genjax_models.errors import ConfigError
from tests.autoregressive.oracles import (
    assert_autoregressive,
    completion_total_variation,
    sample_total_variation,
    total_mass,
)
from tests.x64 import float64


def _model_and_params(spec: DataSpec, hidden: int = 5, seed: int = 0, noise: float = 1.0, **kwargs):
    model = NADE.from_spec(spec, hidden=hidden, **kwargs)
    x = jnp.zeros((1, *model.event_shape))
    params = model.init(jax.random.key(seed), x)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [
        leaf + noise * jax.random.normal(k, leaf.shape, leaf.dtype)
        for leaf, k in zip(leaves, keys, strict=True)
    ]
    return model, jax.tree_util.tree_unflatten(tree, noisy)


@pytest.mark.parametrize(("activation", "block_size"), [("sigmoid", 16), ("tanh", 4)])
def test_cumulative_sum_pass_equals_the_naive_one(activation, block_size):
    """Blocks of 4 over D = 9: three blocks, the last padded with three zero positions."""
    with float64():
        model, params = _model_and_params(
            DataSpec((3, 3, 1), "binary", 2), hidden=7, activation=activation,
            block_size=block_size,
        )
        x = jax.random.bernoulli(jax.random.key(2), 0.5, (4, 9)).astype(jnp.float64)
        fast = model.conditional_outputs(params, x, None)
        assert fast.dtype == jnp.float64 and fast.shape == (4, 9, 1)
        sigma = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}[activation]
        naive = []
        for i in range(9):  # one network per conditional, from scratch: O(D^2 H) in all
            a = params["c"] + x[:, :i] @ params["W"][:i]
            naive.append(sigma(a) @ params["V"][i] + params["b"][i])
        np.testing.assert_allclose(fast, jnp.stack(naive, axis=1), rtol=0, atol=1e-12)
        plain = model.head(params, model.pre_activations(params, x))  # the cumulative sum
        np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "spec, levels", [(DataSpec((3, 3, 1), "binary", 2), 2), (DataSpec((2, 3), "grey", 3), 3)]
)
def test_normalised_by_enumeration(spec, levels):
    with float64():
        model, params = _model_and_params(spec)
        np.testing.assert_allclose(total_mass(model, params, levels), 1.0, atol=1e-5)


def test_rnade_density_integrates_to_one_in_2d():
    with float64():
        model, params = _model_and_params(DataSpec((2,), "continuous"), num_components=3, noise=0.5)
        assert model.likelihood == "gaussian-mixture"
        side = jnp.linspace(-20.0, 20.0, 1001)
        grid = jnp.stack(jnp.meshgrid(side, side, indexing="ij"), -1).reshape(-1, 2)
        density = jnp.exp(model.log_prob(params, grid, None))
        mass = float(density.sum() * (side[1] - side[0]) ** 2)
        np.testing.assert_allclose(mass, 1.0, atol=1e-3)


def test_every_conditional_sees_exactly_the_earlier_pixels():
    model, params = _model_and_params(DataSpec((2, 3), "grey", 4), hidden=6, seed=3)
    x = jax.random.uniform(jax.random.key(0), (6,))
    assert_autoregressive(
        lambda v: model.conditional_outputs(params, v[None], None)[0], x, range(6)
    )


def test_incremental_sampling_step_equals_the_full_pass():
    with float64():
        model, params = _model_and_params(DataSpec((5,), "binary", 2), hidden=4, seed=4)
        x = jax.random.bernoulli(jax.random.key(1), 0.5, (3, 5)).astype(jnp.float64)
        full = model.conditional_outputs(params, x, None)
        state = model.sample_state(params, 3, None)
        for t in range(5):
            partial = x.at[:, t:].set(0.0)  # what the sampler holds at step t
            out, state = model.sample_step(params, state, partial, jnp.asarray(t), None)
            np.testing.assert_allclose(out, full[:, t], rtol=0, atol=1e-12)
        # And through the scan: samples are binary with finite log-probabilities.
        samples = model.sample(params, jax.random.key(2), 64)
        assert samples.shape == (64, 5) and set(np.unique(samples)) <= {0.0, 1.0}
        assert np.all(np.isfinite(model.log_prob(params, samples, None)))


def test_sample_frequencies_match_the_enumerated_probabilities():
    model, params = _model_and_params(DataSpec((4,), "binary", 2), hidden=3, seed=5)
    assert sample_total_variation(model, params, 50_000) < 0.02


def test_completion_of_an_observed_prefix_is_exact():
    with float64():
        model, params = _model_and_params(DataSpec((2, 2), "binary", 2), hidden=3, seed=6)
        observed = np.array([[True, True], [False, False]])
        x = jnp.array([[1.0, 0.0], [0.0, 0.0]])
        tv, log_p, enumerated = completion_total_variation(model, params, x, observed, 20_000)
        assert abs(log_p - enumerated) < 1e-9 and tv < 0.03, (log_p, enumerated, tv)
        result = model.complete(params, jax.random.key(0), x[None], observed, 4)
        assert bool(result.exact[0])  # the top half precedes the bottom half in raster order
        np.testing.assert_array_equal(np.asarray(result.samples)[:, 0, 0], [[1.0, 0.0]] * 4)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="hidden"):
        NADE((4,), hidden=0)
    with pytest.raises(Exception, match="activation"):
        NADE((4,), activation="swish-ish")
    with pytest.raises(ConfigError, match="does not support likelihood='logistic-mixture'"):
        NADE((4,), likelihood="logistic-mixture", num_levels=4)
