"""2-D toys: exact densities normalise, entropies match Monte Carlo, samplers match support."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import (
    CHECKERBOARD_ENTROPY,
    EIGHT_GAUSSIANS_STD,
    eight_gaussians_entropy,
    load_dataset,
)


def _grid_integral(log_prob, half_width, step):
    g = np.arange(-half_width + step / 2, half_width, step)  # midpoints
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    return float(jnp.sum(jnp.exp(log_prob(pts))) * step * step)


@pytest.mark.parametrize(
    "name, half_width, step", [("eight-gaussians", 4.0, 0.02), ("checkerboard", 2.5, 0.01)]
)
def test_density_integrates_to_one(name, half_width, step):
    ds = load_dataset(name)
    assert abs(_grid_integral(ds.log_prob, half_width, step) - 1.0) < 1e-3


def test_eight_gaussians_entropy_matches_monte_carlo():
    ds = load_dataset("eight-gaussians")
    h = ds.entropy
    near = math.log(8) + math.log(2 * math.pi * math.e * EIGHT_GAUSSIANS_STD**2)
    assert h < near and near - h < 2e-3  # tiny overlap between components
    assert abs(eight_gaussians_entropy(step=0.02) - h) < 1e-9  # quadrature has converged
    x = ds.sampler(jax.random.key(3), 100_000)
    neg_logp = -np.asarray(ds.log_prob(x), np.float64)
    se = neg_logp.std() / math.sqrt(len(neg_logp))
    assert abs(neg_logp.mean() - h) < 3 * se
    # the fixed train split estimates it too
    neg_train = -np.asarray(ds.log_prob(ds.train), np.float64)
    assert abs(neg_train.mean() - h) < 3 * neg_train.std() / math.sqrt(len(neg_train)) + 1e-3


def test_checkerboard_samples_inside_and_uniform():
    ds = load_dataset("checkerboard")
    assert ds.entropy == CHECKERBOARD_ENTROPY == math.log(8)
    for x in (np.asarray(ds.sampler(jax.random.key(0), 40_000)), ds.train):
        lp = np.asarray(ds.log_prob(jnp.asarray(x)))
        np.testing.assert_allclose(lp, -math.log(8), rtol=1e-6)
        ij = np.floor(x + 2).astype(int)
        assert np.all((ij >= 0) & (ij <= 3)) and np.all((ij.sum(1) % 2) == 0)
        counts = np.bincount(ij[:, 0] * 4 + ij[:, 1], minlength=16)
        dark = counts[counts > 0]
        assert len(dark) == 8
        expected = len(x) / 8
        assert np.all(np.abs(dark - expected) < 5 * math.sqrt(expected))
    outside = jnp.array([[-1.5, -0.5], [2.5, 0.0], [0.5, 0.5 + 1.0], [2.0, -2.0]])
    assert np.all(np.isneginf(np.asarray(ds.log_prob(outside))))


def test_two_moons_sampler_and_fixed_splits():
    ds = load_dataset("two-moons")
    assert ds.log_prob is None and ds.entropy is None
    x = np.asarray(ds.sampler(jax.random.key(0), 20_000))
    for pts in (x, ds.train):
        assert pts.shape[1] == 2
        np.testing.assert_allclose(pts.mean(0), 0.0, atol=0.03)
        assert np.all(np.abs(pts[:, 0]) < 1.8) and np.all(np.abs(pts[:, 1]) < 1.0)
    assert ds.train.shape == (20_000, 2) and ds.test.shape == (5_000, 2)


def test_toy_splits_are_fixed():
    a = load_dataset("eight-gaussians")
    assert a.train.shape == (20_000, 2) and a.test.shape == (5_000, 2)
    assert a.train.dtype == np.float32 and a.num_levels is None
    assert not np.array_equal(a.train[:5000], a.test)
    from genjax_models.data.toys import load_toy

    load_toy.cache_clear()
    b = load_dataset("eight-gaussians")
    np.testing.assert_array_equal(a.train, b.train)
