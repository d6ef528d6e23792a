"""Sample metrics against closed forms: MMD^2 between Gaussians, exact 1-D W2, Fréchet distances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.eval.sample_metrics import (
    median_bandwidth,
    mmd2,
    random_directions,
    sliced_wasserstein_distance,
    squared_frechet_distance,
    squared_gaussian_frechet_distance,
    squared_wasserstein2_1d,
)
from tests.x64 import float64


def _gaussian_kernel_mean(mu_a, var_a, mu_b, var_b, h):
    """E k(X, Y) for independent X ~ N(mu_a, var_a I), Y ~ N(mu_b, var_b I).

    The kernel is k = exp(-|x-y|^2/2h^2).
    """
    d = mu_a.shape[0]
    s = h**2 + var_a + var_b
    return (h**2 / s) ** (d / 2) * np.exp(-0.5 * np.sum((mu_a - mu_b) ** 2) / s)


def _naive_mmd2(x, y, bandwidths):
    def k(a, b):
        sq = np.sum((a[:, None] - b[None]) ** 2, -1)
        return sum(np.exp(-sq / (2 * h**2)) for h in bandwidths)

    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * k(x, y).mean()
    )


def test_mmd2_matches_the_direct_u_statistic_with_blocks():
    with float64():
        x = np.asarray(jax.random.normal(jax.random.key(0), (37, 3), jnp.float64))
        y = np.asarray(jax.random.normal(jax.random.key(1), (29, 3), jnp.float64)) + 0.3
        want = _naive_mmd2(x, y, (0.5, 2.0))
        for block in (1, 7, 64):
            got = mmd2(x, y, (0.5, 2.0), block_size=block)
            np.testing.assert_allclose(float(got), want, rtol=1e-10, atol=1e-13)
        # Image-shaped inputs are flattened.
        got = mmd2(x.reshape(37, 3, 1), y.reshape(29, 1, 3), (0.5, 2.0))
        np.testing.assert_allclose(float(got), want, rtol=1e-10)


def test_mmd2_is_unbiased_for_gaussians():
    """The mean over replicates matches the closed-form population MMD^2 (and 0 for p = q)."""
    with float64():
        d, h, n, reps = 2, 1.0, 64, 200
        mu_a, mu_b = np.zeros(d), np.array([0.5, 0.0])
        var_a, var_b = 1.0, 0.6
        want = (
            _gaussian_kernel_mean(mu_a, var_a, mu_a, var_a, h)
            + _gaussian_kernel_mean(mu_b, var_b, mu_b, var_b, h)
            - 2 * _gaussian_kernel_mean(mu_a, var_a, mu_b, var_b, h)
        )

        def replicate(key):
            ka, kb, kc = jax.random.split(key, 3)
            x = mu_a + np.sqrt(var_a) * jax.random.normal(ka, (n, d), jnp.float64)
            y = mu_b + np.sqrt(var_b) * jax.random.normal(kb, (n, d), jnp.float64)
            x2 = mu_a + np.sqrt(var_a) * jax.random.normal(kc, (n, d), jnp.float64)
            return mmd2(x, y, h), mmd2(x, x2, h)

        diff, same = jax.jit(jax.vmap(replicate))(jax.random.split(jax.random.key(0), reps))
        for values, target in ((diff, want), (same, 0.0)):
            sem = float(jnp.std(values)) / np.sqrt(reps)
            assert abs(float(jnp.mean(values)) - target) < 4 * sem, (
                float(jnp.mean(values)),
                target,
                sem,
            )
        assert float(jnp.min(same)) < 0.0  # unbiased, hence sometimes negative


def test_median_bandwidth():
    with float64():
        x = jnp.array([[0.0], [1.0]])
        # Pairwise distances 1, 3, 2 -> median 2.
        np.testing.assert_allclose(float(median_bandwidth(x, jnp.array([[3.0]]))), 2.0)
        y = jnp.array([[3.0], [3.5]])
        assert float(mmd2(x, y)) == pytest.approx(float(mmd2(x, y, median_bandwidth(x, y))))


def test_wasserstein2_1d_exact_for_unequal_sizes():
    with float64():
        # Quantile functions differ by 1/2 on [1/3, 2/3) -> W2^2 = 1/4 * 1/3 = 1/12.
        got = squared_wasserstein2_1d(jnp.array([1.0, 0.0]), jnp.array([0.5, 0.0, 1.0]))
        np.testing.assert_allclose(float(got), 1 / 12, rtol=1e-12)
        u = jax.random.normal(jax.random.key(0), (7,), jnp.float64)
        v = jax.random.normal(jax.random.key(1), (7,), jnp.float64)
        direct = jnp.mean((jnp.sort(u) - jnp.sort(v)) ** 2)
        np.testing.assert_allclose(float(squared_wasserstein2_1d(u, v)), float(direct), rtol=1e-12)
        # Repeating every point of v leaves its empirical measure, hence W2, unchanged.
        np.testing.assert_allclose(
            float(squared_wasserstein2_1d(u, jnp.repeat(v, 3))), float(direct), rtol=1e-12
        )


@pytest.mark.smoke
def test_sliced_wasserstein_closed_forms():
    with float64():
        x = jax.random.normal(jax.random.key(0), (50, 3), jnp.float64)
        shift = jnp.array([1.0, -2.0, 0.5])
        dirs = random_directions(jax.random.key(1), 16, 3)
        np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, rtol=1e-12)
        # A translation moves every 1-D projection rigidly: W2^2(theta) = (theta . c)^2.
        got = sliced_wasserstein_distance(x, x + shift, directions=dirs)
        np.testing.assert_allclose(
            float(got) ** 2, float(jnp.mean((dirs @ shift) ** 2)), rtol=1e-10
        )
        # Isotropic Gaussians N(0, I), N(0, s^2 I): every projection has W2^2 = (1 - s)^2.
        a = jax.random.normal(jax.random.key(2), (4000, 3), jnp.float64)
        b = 0.5 * jax.random.normal(jax.random.key(3), (3000, 3), jnp.float64)
        got = sliced_wasserstein_distance(a, b, jax.random.key(4), num_projections=32)
        np.testing.assert_allclose(float(got) ** 2, 0.25, rtol=0.1)
        assert float(sliced_wasserstein_distance(x, x, jax.random.key(5))) == 0.0


def test_gaussian_frechet_distance_closed_forms():
    with float64():
        # 1-D: (mu_a - mu_b)^2 + (s_a - s_b)^2.
        got = squared_gaussian_frechet_distance(
            jnp.array([1.0]), jnp.array([[4.0]]), jnp.array([-1.0]), jnp.array([[9.0]])
        )
        np.testing.assert_allclose(float(got), 4.0 + 1.0, rtol=1e-12)
        # Commuting (diagonal) covariances: sum (sqrt a_i - sqrt b_i)^2.
        a, b = jnp.array([1.0, 4.0, 0.0]), jnp.array([9.0, 1.0, 2.0])
        got = squared_gaussian_frechet_distance(
            jnp.zeros(3), jnp.diag(a), jnp.zeros(3), jnp.diag(b)
        )
        np.testing.assert_allclose(
            float(got), float(jnp.sum((jnp.sqrt(a) - jnp.sqrt(b)) ** 2)), rtol=1e-12
        )
        # General SPD pair: against scipy's sqrtm of S_a S_b, and symmetric in its arguments.
        ka, kb = jax.random.split(jax.random.key(0))
        m_a = jax.random.normal(ka, (4, 4), jnp.float64)
        m_b = jax.random.normal(kb, (4, 4), jnp.float64)
        s_a, s_b = m_a @ m_a.T + 0.1 * jnp.eye(4), m_b @ m_b.T + 0.1 * jnp.eye(4)
        mu_a, mu_b = jnp.arange(4.0), jnp.ones(4)
        cross = np.real(scipy.linalg.sqrtm(np.asarray(s_a) @ np.asarray(s_b)))
        want = float(jnp.sum((mu_a - mu_b) ** 2) + jnp.trace(s_a + s_b)) - 2 * np.trace(cross)
        got_ab = squared_gaussian_frechet_distance(mu_a, s_a, mu_b, s_b)
        got_ba = squared_gaussian_frechet_distance(mu_b, s_b, mu_a, s_a)
        np.testing.assert_allclose(float(got_ab), want, rtol=1e-9)
        np.testing.assert_allclose(float(got_ba), want, rtol=1e-9)
        # A singular covariance against itself: exactly 0, no NaN.
        low_rank = m_a[:, :2] @ m_a[:, :2].T
        assert float(squared_gaussian_frechet_distance(mu_a, low_rank, mu_a, low_rank)) < 1e-10


def test_frechet_distance_of_feature_sets():
    with float64():
        feats = jax.random.normal(jax.random.key(0), (100, 5), jnp.float64)
        assert float(squared_frechet_distance(feats, feats)) < 1e-10
        shift = jnp.array([1.0, 0.0, -1.0, 2.0, 0.0])
        np.testing.assert_allclose(
            float(squared_frechet_distance(feats, feats + shift)), float(shift @ shift), rtol=1e-9
        )
        # Scaling all features by c: |mu|^2 (c-1)^2 + tr(S) (c-1)^2.
        c = 1.5
        mean, cov = jnp.mean(feats, 0), jnp.cov(feats, rowvar=False)
        want = (c - 1) ** 2 * float(mean @ mean + jnp.trace(cov))
        np.testing.assert_allclose(
            float(squared_frechet_distance(feats, c * feats)), want, rtol=1e-9
        )


def test_bad_input():
    x = jnp.zeros((4, 2))
    with pytest.raises(ShapeError, match="same event size"):
        mmd2(x, jnp.zeros((4, 3)), 1.0)
    with pytest.raises(ShapeError, match="at least 2"):
        mmd2(x, jnp.zeros((1, 2)), 1.0)
    with pytest.raises(ConfigError, match="key or explicit directions"):
        sliced_wasserstein_distance(x, x)
    with pytest.raises(ShapeError, match="directions"):
        sliced_wasserstein_distance(x, x, directions=jnp.ones((3, 5)))
    with pytest.raises(ShapeError, match="at least 2"):
        squared_frechet_distance(x, x[:1])
