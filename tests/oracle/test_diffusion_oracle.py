"""The forward processes and the Gaussian-mixture oracle against independent computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import oracle
from genjax_models.diffusion.processes import PROCESSES, get_process
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from tests.x64 import float64


def _mid_time(process):
    return 0.5 * (process.t_min + process.t_max) if process.name != "edm" else 1.3


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_sde_coefficients_reproduce_the_marginal_variance(name):
    """Integrating d var/dt = 2 f var + g^2 (unit-variance data) reproduces alpha^2 + sigma^2."""
    with float64():
        p = get_process(name)
        t0, t1 = p.t_min, _mid_time(p)
        ts = jnp.linspace(t0, t1, 4001)
        f, g2 = p.sde(ts)
        var0 = p.alpha(t0) ** 2 + p.sigma(t0) ** 2

        def step(var, i):
            h = ts[i + 1] - ts[i]
            k1 = 2 * f[i] * var + g2[i]
            k2 = 2 * f[i + 1] * (var + h * k1) + g2[i + 1]
            return var + 0.5 * h * (k1 + k2), None

        var1, _ = jax.lax.scan(step, var0, jnp.arange(ts.shape[0] - 1))
        want = p.alpha(t1) ** 2 + p.sigma(t1) ** 2
        np.testing.assert_allclose(float(var1), float(want), rtol=2e-4 if name == "ddpm" else 1e-6)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_log_snr_is_decreasing_and_invertible(name):
    with float64():
        p = get_process(name)
        ts = jnp.linspace(p.t_min, p.t_max, 50)
        lam = p.log_snr(ts)
        assert np.all(np.diff(np.asarray(lam)) < 0)
        np.testing.assert_allclose(
            np.asarray(p.t_from_log_snr(lam)), np.asarray(ts), rtol=1e-8, atol=1e-10
        )
        for kind in ("uniform", "log-snr", "edm", "default"):
            grid = np.asarray(p.time_grid(10, kind))
            assert grid.shape == (11,) and np.all(np.diff(grid) < 0)
            np.testing.assert_allclose([grid[0], grid[-1]], [p.t_max, p.t_min])


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_oracle_score_denoiser_and_predictions(name):
    """score == grad log p_t; Tweedie: E[x0|x] = (x + s^2 score)/a; eps = -s score; v as defined."""
    with float64():
        p = get_process(name)
        mix = oracle.example_mixture(3, 3, dtype=jnp.float64)
        x = mix.sample(jax.random.key(1), 6) * 1.3
        t = _mid_time(p)
        grad = jax.vmap(jax.grad(lambda xb: oracle.log_prob(mix, p, xb[None], t)[0]))(x)
        score = oracle.score(mix, p, x, t)
        np.testing.assert_allclose(np.asarray(score), np.asarray(grad), atol=1e-10)
        a, s = float(p.alpha(t)), float(p.sigma(t))
        x0 = oracle.denoiser(mix, p, x, t)
        np.testing.assert_allclose(np.asarray(x0), np.asarray((x + s**2 * score) / a), atol=1e-10)
        eps = oracle.eps(mix, p, x, t)
        np.testing.assert_allclose(np.asarray(eps), np.asarray(-s * score), atol=1e-10)
        v = oracle.velocity(mix, p, x, t)
        np.testing.assert_allclose(np.asarray(v), np.asarray(a * eps - s * x0), atol=1e-12)


def test_oracle_marginal_matches_monte_carlo():
    """Perturbed mixture samples have the mean/covariance of the closed-form p_t."""
    with float64():
        p = get_process("vp")
        mix = oracle.example_mixture(2, 3, dtype=jnp.float64)
        x0 = mix.sample(jax.random.key(0), 200_000)
        xt, _ = p.perturb(jax.random.key(1), x0, 0.4)
        mean, cov = oracle.marginal(mix, p, 0.4).mean_and_cov()
        np.testing.assert_allclose(np.asarray(xt.mean(0)), np.asarray(mean), atol=0.01)
        np.testing.assert_allclose(np.cov(np.asarray(xt).T), np.asarray(cov), atol=0.02)


def test_mixture_density_integrates_to_one():
    with float64():
        mix = oracle.example_mixture(2, 3, dtype=jnp.float64)
        g = jnp.linspace(-5, 5, 401)
        pts = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
        total = float(jnp.sum(jnp.exp(mix.log_prob(pts))) * (g[1] - g[0]) ** 2)
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_posterior_matches_gaussian_conditioning(name):
    """q(x_s | x_t, x0) from the joint Gaussian of (x_s, x_t) given x0, computed directly."""
    with float64():
        p = get_process(name)
        s_time, t_time = _mid_time(p) * 0.6, _mid_time(p)
        pairs = ((p.alpha, s_time), (p.sigma, s_time), (p.alpha, t_time), (p.sigma, t_time))
        a_s, s_s, a_t, s_t = (float(f(u)) for f, u in pairs)
        x0, xt = jnp.array([[0.3, -1.2]]), jnp.array([[1.0, 0.4]])
        # joint: x_s = a_s x0 + s_s e1; x_t = (a_t/a_s) x_s + sqrt(s_t^2 - (a_t/a_s)^2 s_s^2) e2
        cov_st = (a_t / a_s) * s_s**2
        mean = a_s * x0 + cov_st / s_t**2 * (xt - a_t * x0)
        var = s_s**2 - cov_st**2 / s_t**2
        got_mean, got_std = p.posterior(xt, x0, t_time, s_time)
        np.testing.assert_allclose(np.asarray(got_mean), np.asarray(mean), atol=1e-12)
        np.testing.assert_allclose(float(got_std), np.sqrt(var), atol=1e-12)


def test_ddpm_process_matches_discrete_alphas():
    with float64():
        for schedule in ("linear", "cosine"):
            p = get_process("ddpm", num_steps=50, schedule=schedule)
            alpha_bar = np.cumprod(1 - np.asarray(p.betas))
            n = np.arange(1, 51)
            np.testing.assert_allclose(np.asarray(p.alpha(n / 50.0)) ** 2, alpha_bar, rtol=1e-10)
    vp = get_process("vp")
    ddpm = get_process("ddpm")  # linear, N = 1000: the VP SDE's discretisation
    np.testing.assert_allclose(float(ddpm.alpha(0.5)), float(vp.alpha(0.5)), rtol=5e-3)


def test_prior_log_prob_and_bad_names():
    p = get_process("ve")
    x = jnp.zeros((2, 3))
    want = -3 * (np.log(50.0) + 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(np.asarray(p.prior_log_prob(x)), want, rtol=1e-6)
    with pytest.raises(UnknownNameError, match="subvp"):
        get_process("vpp")
    with pytest.raises(ConfigError, match="beta_max"):
        get_process("vp", beta_maximum=3)
    with pytest.raises(UnknownNameError, match="cosine"):
        get_process("ddpm", schedule="quadratic")
    with pytest.raises(ShapeError, match=r"\[B, 2\]"):
        oracle.score(oracle.example_mixture(2), get_process("vp"), jnp.zeros((3, 4)), 0.5)
