"""The causal Transformer against the autoregressive oracles (shared/ORACLES.md).

- normalisation: exp(log_prob) sums to 1 over all 2^9 binary 3x3 images (float64, 1e-5);
- autoregressive property: the Jacobian of the outputs w.r.t. x vanishes for j >= i and is
  non-zero for every j < i (no blind spot);
- the key/value cache: every cached step's outputs equal the full pass on the final sample,
  and a naive sampler recomputing the network at every step draws the identical samples;
- sampling: 50 000 draws match the enumerated distribution (TV < 0.02);
- completion with the first half observed is exact and matches the enumerated conditional.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive.transformer import ARTransformer
from genjax_models.data import DataSpec
from genjax_models.errors import ConfigError
from tests.autoregressive.oracles import (
    all_configurations,
    assert_autoregressive,
    completion_total_variation,
    sample_total_variation,
)
from tests.x64 import float64

SMALL = {"width": 8, "num_layers": 2, "num_heads": 2, "mlp_ratio": 2}


def _total_mass(model: ARTransformer, params, levels: int = 2) -> float:
    """Sum exp(log_prob) over every configuration (jitted: one compile, not op-by-op)."""
    everything = all_configurations(model.event_shape, levels)
    log_p = jax.jit(model.log_prob)(params, everything, jax.random.key(0))
    return float(jnp.exp(log_p).sum())


def _perturbed(model: ARTransformer, seed: int = 0, scale: float = 0.5):
    """Random params of order one (every leaf, LayerNorm scales and biases included)."""
    params = model.init(jax.random.key(seed), jnp.zeros((1, *model.event_shape)))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [
        a + scale * jax.random.normal(k, a.shape, a.dtype)
        for a, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, noisy)


def test_binary_log_prob_is_normalised():
    with float64():
        model = ARTransformer((3, 3, 1), **SMALL)
        params = _perturbed(model)
        assert params["pos"].dtype == jnp.float64
        np.testing.assert_allclose(_total_mass(model, params), 1.0, atol=1e-5)


def test_categorical_log_prob_is_normalised():
    with float64():
        model = ARTransformer.from_spec(DataSpec((2, 2, 1), "grey", 3), **SMALL)
        assert model.likelihood == "categorical" and model.num_values == 3
        params = _perturbed(model, seed=3)
        np.testing.assert_allclose(_total_mass(model, params, levels=3), 1.0, atol=1e-5)


@pytest.mark.parametrize("spec", [DataSpec((2, 3, 1), "binary", 2), DataSpec((2, 3), "grey", 4)])
def test_outputs_depend_on_exactly_the_earlier_pixels(spec):
    model = ARTransformer.from_spec(spec, **SMALL)
    params = _perturbed(model, seed=5)
    x = jax.random.uniform(jax.random.key(7), (model.num_dims,), minval=0.05, maxval=0.95)
    assert_autoregressive(
        jax.jit(lambda v: model.conditional_outputs(params, v[None], None)[0]),
        x,
        model.ordering(),
        complete=True,
    )


def test_embedding_is_the_table_on_the_grid():
    model = ARTransformer.from_spec(DataSpec((4,), "grey", 5), **SMALL)
    params = _perturbed(model)
    grid = jnp.arange(5) / 4.0
    np.testing.assert_allclose(
        model.embed_values(params, grid), params["embed"], rtol=1e-6, atol=1e-6
    )


def test_cached_steps_equal_the_full_pass_and_the_naive_sampler():
    with float64():
        model = ARTransformer((3, 3, 1), **SMALL)
        params = _perturbed(model, seed=9)
        key, num, d = jax.random.key(4), 6, model.num_dims
        cond = model.conditional

        def cached(key):
            def step(carry, t):
                x, state = carry
                out, state = model.sample_step(params, state, x, t, None)
                drawn = cond.sample(jax.random.fold_in(key, t), out, 1.0)
                return (x.at[:, t].set(drawn), state), out

            start = (jnp.zeros((num, d)), model.sample_state(params, num, None))
            (x, _), outs = jax.lax.scan(step, start, jnp.arange(d))
            return x, jnp.swapaxes(outs, 0, 1)  # [n, D, P]

        @jax.jit
        def naive(key):  # a full network pass per position (fori_loop: one compile)
            def body(t, x):
                out = model.conditional_outputs(params, x, None)[:, t]
                return x.at[:, t].set(cond.sample(jax.random.fold_in(key, t), out, 1.0))

            return jax.lax.fori_loop(0, d, body, jnp.zeros((num, d)))

        x, outs = jax.jit(cached)(key)
        full = model.conditional_outputs(params, x, None)
        np.testing.assert_allclose(outs, full, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(naive(key)))
        # The model's own sampler is the same scan: identical draws.
        np.testing.assert_array_equal(
            np.asarray(model.sample(params, key, num)).reshape(num, d), np.asarray(x)
        )
        assert len(np.unique(np.asarray(x), axis=0)) > 1  # the draws are not all one image


def test_sample_frequencies_match_log_prob():
    model = ARTransformer((4,), **SMALL)
    params = _perturbed(model, seed=11, scale=1.0)
    tv = sample_total_variation(model, params, 50_000)
    assert tv < 0.02, tv


def test_completion_of_the_second_half_is_exact():
    with float64():
        model = ARTransformer((2, 2, 1), **SMALL)
        params = _perturbed(model, seed=13, scale=1.0)
        observed = np.array([True, True, False, False]).reshape(2, 2, 1)
        x = all_configurations(model.event_shape)[6]  # 0 1 1 0: the observed half is 0 1
        tv, log_p, log_p_enum = completion_total_variation(model, params, x, observed, 20_000)
        assert tv < 0.02, tv
        np.testing.assert_allclose(log_p, log_p_enum, atol=1e-5)


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        ARTransformer((4,), width=6, num_heads=4)
    with pytest.raises(ConfigError, match="num_layers must be >= 1"):
        ARTransformer((4,), num_layers=0)
    with pytest.raises(ConfigError, match="likelihood"):
        ARTransformer((4,), likelihood="gaussian-mixture")
