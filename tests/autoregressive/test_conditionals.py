"""The per-pixel conditionals: each is normalised, and sampling follows its probabilities.

Discrete families sum to 1 over their levels; the Gaussian mixture integrates to 1; the
discretised logistic mixture puts all its mass on the L levels even with components far in
the tails; sample frequencies match the probabilities (total variation); temperature 1 is
the model and low temperatures concentrate the mass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive import Conditional
from genjax_models.errors import ConfigError
from tests.x64 import float64


def _outputs(cond: Conditional, num: int, seed: int = 0, scale: float = 2.0) -> jax.Array:
    return scale * jax.random.normal(jax.random.key(seed), (num, cond.num_outputs))


@pytest.mark.parametrize(
    "cond",
    [
        Conditional("bernoulli"),
        Conditional("categorical", num_levels=5),
        Conditional("logistic-mixture", num_levels=4, num_components=3),
        Conditional("logistic-mixture", num_levels=256, num_components=2),
    ],
    ids=["bernoulli", "categorical", "logistic-4", "logistic-256"],
)
def test_discrete_conditionals_sum_to_one(cond):
    with float64():
        levels = 2 if cond.kind == "bernoulli" else cond.num_levels
        out = _outputs(cond, 7)
        if cond.kind == "logistic-mixture":  # means across and beyond [0, 1], tiny scales too
            k = cond.num_components
            out = out.at[:, k : 2 * k].set(jnp.linspace(-1.0, 2.0, 7 * k).reshape(7, k))
            out = out.at[0, 2 * k :].set(-6.0)
        grid = jnp.arange(levels) / (levels - 1)
        log_p = jax.vmap(lambda v: cond.log_prob(out, jnp.full((7,), v)))(grid)  # [L, 7]
        assert bool(jnp.all(jnp.isfinite(log_p)))
        np.testing.assert_allclose(np.exp(np.asarray(log_p)).sum(0), 1.0, atol=1e-6)


def test_gaussian_mixture_integrates_to_one():
    with float64():
        cond = Conditional("gaussian-mixture", num_components=3)
        out = _outputs(cond, 4, scale=1.0)
        grid = jnp.linspace(-30, 30, 60_001)
        density = jnp.exp(jax.vmap(lambda v: cond.log_prob(out, jnp.full((4,), v)))(grid))
        np.testing.assert_allclose(np.asarray(density.sum(0) * (grid[1] - grid[0])), 1.0,
                                   atol=1e-6)


@pytest.mark.parametrize(
    "cond",
    [
        Conditional("bernoulli"),
        Conditional("categorical", num_levels=4),
        Conditional("logistic-mixture", num_levels=4, num_components=2),
    ],
    ids=["bernoulli", "categorical", "logistic"],
)
def test_sample_frequencies_match_probabilities(cond):
    levels = 2 if cond.kind == "bernoulli" else cond.num_levels
    out = _outputs(cond, 1, seed=3, scale=1.0)[0]
    num = 40_000
    draws = cond.sample(jax.random.key(1), jnp.broadcast_to(out, (num, cond.num_outputs)))
    index = np.rint(np.asarray(draws) * (levels - 1)).astype(int)
    freq = np.bincount(index, minlength=levels) / num
    grid = jnp.arange(levels) / (levels - 1)
    probs = np.exp(np.asarray(jax.vmap(lambda v: cond.log_prob(out, v))(grid)))
    assert 0.5 * np.abs(freq - probs).sum() < 0.015


def test_gaussian_mixture_samples_have_the_mixture_mean_and_temperature_shrinks_them():
    cond = Conditional("gaussian-mixture", num_components=2)
    out = jnp.array([0.0, 1.0, -2.0, 3.0, -1.0, 0.5])  # logits, means, log-stds
    weights = jax.nn.softmax(out[:2])
    num = 100_000
    draws = cond.sample(jax.random.key(0), jnp.broadcast_to(out, (num, 6)))
    assert abs(float(draws.mean()) - float(weights @ out[2:4])) < 0.03
    cold = cond.sample(jax.random.key(0), jnp.broadcast_to(out, (num, 6)), temperature=0.01)
    # T = 0.01: logits / T pick the heavier component, whose std shrinks by sqrt(T) = 0.1.
    assert abs(float(cold.mean()) - 3.0) < 0.01
    np.testing.assert_allclose(float(cold.std()), 0.1 * np.exp(0.5), rtol=0.03)


def test_bad_families_are_refused():
    with pytest.raises(Exception, match="likelihood"):
        Conditional("poisson")
    with pytest.raises(ConfigError, match="num_levels >= 2"):
        Conditional("logistic-mixture")
    with pytest.raises(ConfigError, match="num_components"):
        Conditional("gaussian-mixture", num_components=0)
