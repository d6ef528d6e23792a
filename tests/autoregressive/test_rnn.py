"""The autoregressive RNN (GRU and LSTM) against the autoregressive oracles (shared/ORACLES.md).

- normalisation: exp(log_prob) sums to 1 over all 2^9 binary 3x3 images (float64, 1e-5);
- autoregressive property: the Jacobian of the outputs w.r.t. x vanishes for j >= i and is
  non-zero for every j < i;
- the sampling cache: every cached cell step's outputs equal the full pass on the final sample.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive.rnn import AutoregressiveRNN
from genjax_models.errors import ConfigError
from tests.autoregressive.oracles import all_configurations, assert_autoregressive
from tests.x64 import float64

SMALL = {"hidden": 6, "embed_dim": 4}


def _perturbed(model: AutoregressiveRNN, seed: int = 0, scale: float = 0.5):
    """Random params of order one (every leaf)."""
    params = model.init(jax.random.key(seed), jnp.zeros((1, *model.event_shape)))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [
        a + scale * jax.random.normal(k, a.shape, a.dtype)
        for a, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, noisy)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_binary_log_prob_is_normalised(cell):
    with float64():
        model = AutoregressiveRNN((3, 3, 1), cell=cell, **SMALL)
        params = _perturbed(model)
        everything = all_configurations(model.event_shape)
        log_p = jax.jit(model.log_prob)(params, everything, jax.random.key(0))
        assert log_p.dtype == jnp.float64 and log_p.shape == (2**9,)
        np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_outputs_depend_on_exactly_the_earlier_pixels(cell):
    model = AutoregressiveRNN((3, 3, 1), cell=cell, **SMALL)
    params = _perturbed(model, seed=5)
    x = jax.random.uniform(jax.random.key(7), (model.num_dims,), minval=0.05, maxval=0.95)
    assert_autoregressive(
        jax.jit(lambda v: model.conditional_outputs(params, v[None], None)[0]),
        x,
        model.ordering(),
        complete=True,
    )


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cached_steps_equal_the_full_pass(cell):
    with float64():
        model = AutoregressiveRNN((3, 3, 1), cell=cell, **SMALL)
        params = _perturbed(model, seed=9)
        key, num, d = jax.random.key(4), 6, model.num_dims
        cond = model.conditional

        @jax.jit
        def cached(key):
            def step(carry, t):
                x, state = carry
                out, state = model.sample_step(params, state, x, t, None)
                drawn = cond.sample(jax.random.fold_in(key, t), out, 1.0)
                return (x.at[:, t].set(drawn), state), out

            start = (jnp.zeros((num, d)), model.sample_state(params, num, None))
            (x, _), outs = jax.lax.scan(step, start, jnp.arange(d))
            return x, jnp.swapaxes(outs, 0, 1)

        x, outs = cached(key)
        full = model.conditional_outputs(params, x, None)
        np.testing.assert_allclose(outs, full, rtol=1e-5, atol=1e-5)
        assert len(np.unique(np.asarray(x), axis=0)) > 1


def test_bad_configurations_are_refused():
    with pytest.raises(Exception, match="cell"):
        AutoregressiveRNN((4,), cell="elman")
    with pytest.raises(ConfigError, match="hidden must be >= 1"):
        AutoregressiveRNN((4,), hidden=0)
