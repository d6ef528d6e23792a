"""PF-ODE likelihood and DDPM's variational bound against the Gaussian-mixture oracle (float64).

Data p0 = the 2-D, 3-component ``example_mixture``; the denoiser is the exact E[x0 | x_t]
(``oracle.denoiser``), so every error left is the solver's (PF-ODE) or the bound's gap (VLB):

1. PF-ODE + exact divergence + the true p_T reproduces log p_{t_min}(x) (<= 1e-3 nats, mean
   <= 2e-5, at 100 RK4 steps for VP, VE, EDM, DDPM); with N(0, prior_std^2 I) instead of p_T
   the error is the prior mismatch log N(z) - log p_T(z), well above the solver error.
2. Hutchinson's divergence is unbiased: the mean over probe draws matches the exact solve.
3. DDPM's bound is below log p0 on average and the gap shrinks as N grows; sampling the steps is
   unbiased for the exact sum.
4. Images [B, 4, 4, 1] with Gaussian data (closed-form denoiser and density), jitted.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import oracle
from genjax_models.diffusion.likelihood import (
    affine_log_det,
    ddpm_vlb,
    pf_ode_flow,
    pf_ode_log_prob,
)
from genjax_models.diffusion.processes import DDPM, EDM, VE, VP
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from tests.x64 import float64


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _mixture() -> oracle.GaussianMixture:
    return oracle.example_mixture(2, 3, dtype=jnp.float64)


def _points_at(mix, process, t: float, num: int, seed: int = 1) -> jax.Array:
    """Draw ``num`` points from p_t (x0 from the mixture, then the forward process)."""
    k0, k1 = jax.random.split(jax.random.key(seed))
    x0 = mix.sample(k0, num)
    return process.perturb(k1, x0, jnp.asarray(t, x0.dtype))[0]


# (process, t_start). Measured errors of 100 RK4 steps on the default grid over 256 points
# (max / mean, nats): VP 2.9e-5 / 4.4e-7, VE 4.5e-5 / 3.1e-6, EDM 1.2e-4 / 8.4e-6,
# DDPM(1000) 7.8e-5 / 2.1e-6; with the Gaussian prior the error has std 4e-3 to 1.2e-2.
CASES = [
    (VP(), None),
    (VE(), 0.0),  # VE's data end t = 0 (sigma = sigma_min)
    (EDM(), None),
    (DDPM(num_steps=1000), None),
]


@pytest.mark.parametrize(("process", "t_start"), CASES, ids=lambda c: getattr(c, "name", str(c)))
def test_pf_ode_reproduces_oracle_log_prob(process, t_start) -> None:
    mix = _mixture()
    t0 = process.t_min if t_start is None else t_start
    denoise = functools.partial(oracle.denoiser, mix, process)

    @jax.jit
    def run():
        x = _points_at(mix, process, t0, 256)
        z, delta = pf_ode_flow(denoise, process, x, num_steps=100, t_start=t_start)
        log_p_T = oracle.log_prob(mix, process, z, process.t_max)
        truth = oracle.log_prob(mix, process, x, t0)
        return truth, log_p_T + delta, process.prior_log_prob(z) + delta

    truth, got, got_gaussian = run()
    err = jnp.abs(got - truth)
    np.testing.assert_allclose(got, truth, atol=1e-3, rtol=0)
    assert float(jnp.mean(err)) < 2e-5
    # With N(0, prior_std^2 I) instead of the true p_T the error is the prior mismatch
    # log N(z) - log p_T(z), here measurably larger than the solver error.
    assert float(jnp.max(jnp.abs(got_gaussian - truth))) > 10 * float(jnp.max(err))


def test_hutchinson_is_unbiased() -> None:
    mix, process = _mixture(), VP()
    denoise = functools.partial(oracle.denoiser, mix, process)
    prior = functools.partial(oracle.log_prob, mix, process, t=process.t_max)
    keys = jax.random.split(jax.random.key(0), 64)

    @jax.jit
    def run():
        x = _points_at(mix, process, process.t_min, 8, seed=2)
        exact = pf_ode_log_prob(denoise, process, x, num_steps=25, prior=prior)

        def estimate(key):
            return pf_ode_log_prob(
                denoise, process, x, key, num_steps=25, prior=prior,
                divergence="hutchinson", num_probes=2,
            )

        return jax.vmap(estimate)(keys) - exact  # [64, 8]

    err = run()
    se = jnp.std(err, axis=0, ddof=1) / math.sqrt(keys.shape[0])
    assert float(jnp.min(se)) > 1e-3  # the estimator is noisy, so the check is not vacuous
    assert bool(jnp.all(jnp.abs(jnp.mean(err, axis=0)) < 4 * se))
    overall_se = float(jnp.std(err)) / math.sqrt(err.size)
    assert abs(float(jnp.mean(err))) < 4 * overall_se


def _vlb_gaps(num_steps: int, reverse_variance: str, num_samples_t: int | None = None):
    """Per-point log p0(x) - VLB for 2048 mixture points (one draw of the bound each)."""
    mix = _mixture()
    process = DDPM(num_steps=num_steps)
    denoise = functools.partial(oracle.denoiser, mix, process)

    @jax.jit
    def run():
        x = mix.sample(jax.random.key(1), 2048)
        vlb, terms = ddpm_vlb(
            denoise, process, x, jax.random.key(2),
            reverse_variance=reverse_variance, num_samples_t=num_samples_t,
        )
        total = -(terms["prior"] + terms["diffusion"] + terms["reconstruction"])
        return mix.log_prob(x) - vlb, jnp.max(jnp.abs(total - vlb))

    gaps, mismatch = run()
    assert float(mismatch) < 1e-9  # the terms add up to the bound
    return gaps


def _mean_se(v: jax.Array) -> tuple[float, float]:
    return float(jnp.mean(v)), float(jnp.std(v, ddof=1)) / math.sqrt(v.size)


@pytest.mark.slow
def test_ddpm_vlb_is_a_lower_bound_that_tightens_with_n() -> None:
    # Measured (2048 points), gap = E[log p0 - VLB] in nats:
    #   reverse variance beta:       N=50: 0.140 +- 0.034, N=200: 0.058 +- 0.033
    #                                (paired diff 0.082 +- 0.017)
    #   reverse variance beta_tilde: N=50: 3.87 +- 0.11, N=200: 1.72 +- 0.06;
    #                                steps sampled (K=8) - exact: 0.05 +- 0.13
    gap50, gap200 = _vlb_gaps(50, "beta"), _vlb_gaps(200, "beta")
    m50, se50 = _mean_se(gap50)
    m200, se200 = _mean_se(gap200)
    assert m50 > 3 * se50 and m50 < 0.3
    assert m200 > -3 * se200 and m200 < 0.15
    shrink, se_shrink = _mean_se(gap50 - gap200)
    assert shrink > 3 * se_shrink

    tilde200 = _vlb_gaps(200, "beta_tilde")
    m, se = _mean_se(tilde200)
    assert m > 10 * se and m > m200  # a valid but looser bound

    # Sampling 8 of the N - 1 diffusion steps per example is unbiased for the exact sum.
    diff, se = _mean_se(_vlb_gaps(50, "beta", num_samples_t=8) - gap50)
    assert abs(diff) < 4 * se


def _gaussian_data_denoiser(process, c2: float):
    """Exact E[x0 | x_t] for x0 ~ N(0, c2 I): a c2 x / (a^2 c2 + s^2)."""

    def denoise(x, t):
        a = process.alpha(t).reshape(-1, *([1] * (x.ndim - 1)))
        s = process.sigma(t).reshape(-1, *([1] * (x.ndim - 1)))
        return a * c2 * x / (a**2 * c2 + s**2)

    return denoise


def _gaussian_log_prob(x: jax.Array, var: jax.Array) -> jax.Array:
    flat = x.reshape(x.shape[0], -1)
    return jnp.sum(-0.5 * flat**2 / var - 0.5 * jnp.log(2 * jnp.pi * var), axis=-1)


def test_images_with_gaussian_data() -> None:
    process, c2 = VP(), 0.3
    x = jnp.sqrt(c2) * jax.random.normal(jax.random.key(4), (3, 4, 4, 1))
    denoise = _gaussian_data_denoiser(process, c2)
    var = lambda t: process.alpha(t) ** 2 * c2 + process.sigma(t) ** 2  # noqa: E731
    prior = lambda z: _gaussian_log_prob(z, var(process.t_max))  # noqa: E731
    truth = _gaussian_log_prob(x, var(process.t_min))

    exact = jax.jit(lambda x: pf_ode_log_prob(denoise, process, x, num_steps=50, prior=prior))(x)
    assert exact.shape == (3,)
    np.testing.assert_allclose(exact, truth, atol=1e-5, rtol=0)

    # The field is c(t) x, so J = c I and Rademacher probes give the trace exactly.
    hutch = jax.jit(
        lambda x, k: pf_ode_log_prob(
            denoise, process, x, k, num_steps=50, divergence="hutchinson", prior=prior
        )
    )(x, jax.random.key(5))
    np.testing.assert_allclose(hutch, exact, atol=1e-10, rtol=0)

    ddpm = DDPM(num_steps=50)
    vlb, terms = jax.jit(
        lambda x, k: ddpm_vlb(_gaussian_data_denoiser(ddpm, c2), ddpm, x, k)
    )(x, jax.random.key(6))
    assert vlb.shape == (3,) and all(v.shape == (3,) for v in terms.values())
    assert bool(jnp.all(jnp.isfinite(vlb)))
    assert abs(float(jnp.mean(vlb - _gaussian_log_prob(x, c2)))) < 3.0  # 16 dims, 3 points


def test_prior_options_add_to_the_flow() -> None:
    process = VE()
    x = jnp.array([[0.3], [-1.2]])
    denoise = lambda x, t: 0.5 * x  # noqa: E731
    kw = dict(num_steps=2, method="euler")
    z, delta = pf_ode_flow(denoise, process, x, **kw)
    np.testing.assert_allclose(
        pf_ode_log_prob(denoise, process, x, **kw), process.prior_log_prob(z) + delta, rtol=1e-12
    )
    custom = lambda z: -jnp.sum(z**2, axis=-1)  # noqa: E731
    np.testing.assert_allclose(
        pf_ode_log_prob(denoise, process, x, prior=custom, **kw), custom(z) + delta, rtol=1e-12
    )


def test_affine_log_det() -> None:
    assert affine_log_det(2.0, 784) == pytest.approx(784 * math.log(2.0))
    assert affine_log_det(-0.5, 3) == pytest.approx(-3 * math.log(2.0))
    with pytest.raises(ConfigError):
        affine_log_det(0.0, 3)


def test_bad_inputs_raise_clear_errors() -> None:
    process = VP()
    denoise = lambda x, t: x  # noqa: E731
    x = jnp.zeros((2, 2))
    with pytest.raises(ShapeError, match=r"\[B, \*event\]"):
        pf_ode_log_prob(denoise, process, jnp.zeros(3), num_steps=4)
    with pytest.raises(UnknownNameError, match="log-snr"):
        pf_ode_log_prob(denoise, process, x, num_steps=4, grid="geometric")
    with pytest.raises(UnknownNameError, match="gaussian"):
        pf_ode_log_prob(denoise, process, x, num_steps=4, prior="laplace")
    with pytest.raises(ConfigError, match="t_start"):
        pf_ode_log_prob(denoise, process, x, num_steps=4, t_start=1.0)
    with pytest.raises(ConfigError, match="num_steps"):
        pf_ode_log_prob(denoise, process, x, num_steps=0)
    with pytest.raises(ConfigError, match="key"):
        pf_ode_log_prob(denoise, process, x, num_steps=4, divergence="hutchinson")
    ddpm, key = DDPM(num_steps=50), jax.random.key(0)
    with pytest.raises(ConfigError, match="DDPM"):
        ddpm_vlb(denoise, process, x, key)
    with pytest.raises(UnknownNameError, match="beta_tilde"):
        ddpm_vlb(denoise, ddpm, x, key, reverse_variance="learned")
    with pytest.raises(UnknownNameError, match="posterior"):
        ddpm_vlb(denoise, ddpm, x, key, decoder_variance="fixed")
    with pytest.raises(ConfigError, match="positive"):
        ddpm_vlb(denoise, ddpm, x, key, decoder_variance=-1.0)
    with pytest.raises(ConfigError, match="num_samples_t"):
        ddpm_vlb(denoise, ddpm, x, key, num_samples_t=0)


def test_cond_reaches_every_denoiser_call() -> None:
    """With ``cond`` the likelihoods equal those of the denoiser with cond bound by hand."""
    mix = _mixture()

    def shifted(process):
        def denoise(x, t, cond=None):
            assert cond is not None
            return oracle.denoiser(mix, process, x - cond, t) + cond

        return denoise

    vp, ddpm = VP(), DDPM(num_steps=20)
    x = _points_at(mix, vp, vp.t_min, 4)
    shift = jnp.array([0.5, -0.25])
    denoise = shifted(vp)
    got = pf_ode_log_prob(denoise, vp, x, num_steps=4, cond=shift)
    want = pf_ode_log_prob(lambda y, t: denoise(y, t, shift), vp, x, num_steps=4)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
    denoise = shifted(ddpm)
    key = jax.random.key(0)
    got, _ = ddpm_vlb(denoise, ddpm, x, key, cond=shift)
    want, _ = ddpm_vlb(lambda y, t: denoise(y, t, shift), ddpm, x, key)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
