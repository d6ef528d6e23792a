"""MADE (order/connectivity-agnostic masks, ensemble as a true mixture) against the oracles.

- normalisation: every single mask's p_k and the ensemble sum to 1 over all 2^9 binary
  images (with direct input-to-output connections) and all 3^6 three-level images (float64,
  random order-one params);
- autoregressive property: each mask's outputs depend on no later input in its ordering;
- the ensemble is logsumexp_k log p_k - log K, and differs from averaging the masks' logits;
- samples match the enumerated mixture; completion matches the observed-first model.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive.made import MADEModel, observed_first_order, ordering_degrees
from genjax_models.data import DataSpec
from genjax_models.errors import ConfigError
from tests.autoregressive.oracles import (
    all_configurations,
    assert_autoregressive,
    codes,
    completion_total_variation,
    sample_total_variation,
    total_mass,
)
from tests.x64 import float64


def _perturbed(model: MADEModel, seed: int = 0, scale: float = 1.0):
    """Random params of order one (mask biases too), in the default float dtype."""
    params = model.init(jax.random.key(seed), jnp.zeros((1, *model.event_shape)))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree,
        [scale * jax.random.normal(k, a.shape, a.dtype)
         for k, a in zip(keys, leaves, strict=True)],
    )


def _flat(model: MADEModel, levels: int) -> jax.Array:
    return all_configurations(model.event_shape, levels).reshape(-1, model.num_dims)


@pytest.mark.parametrize(
    ("spec", "levels", "direct"),
    [(DataSpec((3, 3, 1), "binary", 2), 2, True), (DataSpec((6,), "grey", 3), 3, False)],
)
def test_every_mask_and_the_ensemble_are_normalised(spec, levels, direct):
    with float64():
        model = MADEModel.from_spec(spec, hidden=(12, 10), num_masks=4, mask_seed=3,
                                    direct_connections=direct)
        params = _perturbed(model)
        everything = _flat(model, levels)
        orders = {tuple(model.mask_ordering(k)) for k in range(4)}
        assert len(orders) == 4 and tuple(range(model.num_dims)) in orders
        component = jax.jit(lambda k: model.component_log_prob(params, everything, k))
        for k in range(model.num_masks):
            log_p = component(jnp.asarray(k))
            assert log_p.dtype == jnp.float64
            np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-5)
        np.testing.assert_allclose(total_mass(model, params, levels), 1.0, atol=1e-5)
        assert model.describe_log_prob().kind == "exact"
        assert model.describe_log_prob().details["num_masks"] == 4


def test_each_mask_is_autoregressive_in_its_own_ordering():
    model = MADEModel((3, 3, 1), hidden=(32, 32), num_masks=4, direct_connections=True)
    params = _perturbed(model, seed=5)
    assert params["kernel_direct"].shape == (9, 9, 1)
    x = jax.random.uniform(jax.random.key(7), (model.num_dims,))
    outputs = jax.jit(lambda v, k: model.component_outputs(params, v[None], k)[0])
    for k in range(model.num_masks):
        # complete=False: a random connectivity may miss some links, but never looks ahead.
        assert_autoregressive(lambda v, k=k: outputs(v, jnp.asarray(k)), x,
                              model.mask_ordering(k), complete=False)
    # A run-time ordering (completion) is autoregressive in that ordering too.
    order = jnp.asarray([4, 0, 8, 2, 6, 1, 3, 5, 7])
    degrees = (ordering_degrees(order), *model.mask_degrees(2)[1:])
    assert_autoregressive(
        lambda v: model.apply_network(params, v[None], degrees)[0], x, np.asarray(order),
        complete=False,
    )


def test_ensemble_is_the_logsumexp_mixture_not_the_logit_average():
    with float64():
        model = MADEModel((3, 3, 1), hidden=(16,), num_masks=3, mask_seed=1)
        params = _perturbed(model, seed=2)
        everything = _flat(model, 2)
        per_mask = np.stack(
            [np.asarray(model.component_log_prob(params, everything, k)) for k in range(3)]
        )
        explicit = np.logaddexp.reduce(per_mask, axis=0) - math.log(3)
        batch = everything.reshape(-1, 3, 3, 1)
        ours = np.asarray(model.log_prob(params, batch, jax.random.key(0)))
        np.testing.assert_allclose(ours, explicit, atol=1e-10)
        first_two = model.log_prob(params, batch, jax.random.key(0), ensemble=2)
        np.testing.assert_allclose(
            first_two, np.logaddexp.reduce(per_mask[:2], axis=0) - math.log(2), atol=1e-10
        )
        # Averaging logits over masks is not a likelihood: it is not even normalised.
        logits = np.mean([model.component_outputs(params, everything, k) for k in range(3)], 0)
        averaged = np.asarray(model.conditional.log_prob(jnp.asarray(logits), everything)).sum(1)
        mass = float(np.exp(averaged).sum())
        assert abs(mass - 1.0) > 1e-6, mass  # measured 1 - 1.5e-4; each p_k is 1 to 1e-12
        assert np.max(np.abs(averaged - ours)) > 1e-2
        with pytest.raises(ConfigError, match="ensemble"):
            model.log_prob(params, batch, jax.random.key(0), ensemble=4)


def test_sample_frequencies_match_the_enumerated_mixture():
    model = MADEModel((4,), hidden=(16,), num_masks=4, mask_seed=2)
    params = _perturbed(model, seed=11)
    tv = sample_total_variation(model, params, 50_000)
    assert tv < 0.02, tv
    # The mixture is not any single component: the samples are far from mask 0 alone.
    samples = jax.jit(lambda k: model.sample(params, k, 50_000))(jax.random.key(0))
    counts = np.bincount(codes(np.asarray(samples)), minlength=16) / 50_000
    p0 = np.exp(np.asarray(model.component_log_prob(params, _flat(model, 2), 0)))
    assert 0.5 * np.abs(counts - p0).sum() > 0.05


def test_completion_is_exact_for_the_observed_first_model():
    with float64():
        model = MADEModel((4,), hidden=(16,), num_masks=4, mask_seed=2,
                          direct_connections=True)
        params = _perturbed(model, seed=13)
        observed = np.array([False, True, False, True])
        x = jnp.asarray([0.0, 1.0, 0.0, 0.0])
        order = observed_first_order(jnp.asarray(observed)[None])[0]
        np.testing.assert_array_equal(order, [1, 3, 0, 2])
        connectivity = 2
        everything = _flat(model, 2)
        log_p = np.asarray(model.ordered_log_prob(params, everything, order, connectivity))
        np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, atol=1e-10)  # p_o is a model
        match = np.all(np.asarray(everything)[:, observed] == np.asarray(x)[observed], axis=1)
        log_marginal = np.logaddexp.reduce(log_p[match])
        conditional = np.where(match, log_p - log_marginal, -np.inf)

        num = 20_000
        result = jax.jit(
            lambda key: model.complete(params, key, x[None], observed, num,
                                       connectivity=connectivity)
        )(jax.random.key(3))
        assert result.samples.shape == (num, 1, 4) and bool(result.exact[0])
        samples = np.asarray(result.samples)[:, 0]
        np.testing.assert_array_equal(samples[:, observed], np.broadcast_to([1.0, 0.0], (num, 2)))
        counts = np.bincount(codes(samples), minlength=16) / num
        tv = 0.5 * np.abs(counts - np.exp(conditional)).sum()
        assert tv < 0.03, tv
        np.testing.assert_allclose(float(result.log_p_observed[0]), log_marginal, atol=1e-5)
        # The oracle helper compares with the ENSEMBLE's conditional: a different model.
        tv_ensemble, _, ensemble_marginal = completion_total_variation(
            model, params, x, observed, 2000, connectivity=connectivity
        )
        assert abs(ensemble_marginal - log_marginal) > 1e-3


def test_invalid_configurations_are_refused():
    with pytest.raises(ConfigError, match="num_masks"):
        MADEModel((4,), num_masks=0)
    with pytest.raises(ConfigError, match="hidden"):
        MADEModel((4,), hidden=())
    with pytest.raises(ConfigError, match=r"data.binarize=threshold\(8\)"):
        MADEModel.from_spec(DataSpec((8, 8, 1), "continuous", 17))
