"""The sampler driver: conditioning, guidance wrappers, options, errors, the processes' answers."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.processes import (
    DDPM,
    EDM,
    GRIDS,
    PROCESSES,
    VE,
    VP,
    ForwardProcess,
    SubVP,
    get_process,
)
from genjax_models.errors import ConfigError, GenjaxError, UnknownNameError

DATA_STD = 0.7
SHAPE = (4, 2)
NFE = 9


def _conditional_denoiser(process):
    """Exact E[x0 | x_t, mu] for x0 ~ N(mu, DATA_STD^2 I); ``cond`` is mu ``[B, D]``."""

    def denoise(x, t, cond=None):
        assert cond is not None, "a denoiser call did not receive cond"
        a = process.alpha(t)[:, None]
        s = process.sigma(t)[:, None]
        gain = a * DATA_STD**2 / (a**2 * DATA_STD**2 + s**2)
        return cond + gain * (x - a * cond)

    return denoise


def _run(name, denoise, process, **kwargs):
    key = jax.random.key(3)
    if name in smp.STOCHASTIC:
        return jax.jit(lambda k: smp.sample(name, denoise, process, k, SHAPE, NFE, **kwargs))(key)
    x_T = process.prior_sample(key, SHAPE)
    return jax.jit(lambda x: smp.sample(name, denoise, process, None, None, NFE, x_init=x,
                                        **kwargs))(x_T)


@pytest.mark.smoke
@pytest.mark.parametrize("name", sorted(smp.SAMPLERS))
def test_cond_reaches_every_denoiser_call(name):
    """A 3-argument denoiser gets ``cond`` at every call (it asserts so), and its value counts."""
    process = VP()
    denoise = _conditional_denoiser(process)
    mu = jnp.array([[1.0, -2.0]] * SHAPE[0])
    got = _run(name, denoise, process, cond=mu)
    closed = _run(name, lambda x, t: denoise(x, t, mu), process)  # cond bound by hand
    np.testing.assert_array_equal(np.asarray(got), np.asarray(closed))
    other = _run(name, denoise, process, cond=-mu)
    assert not np.allclose(np.asarray(other), np.asarray(got))


def _classifier_free(denoise, w):
    """D_w(x, t, c) = D(x, t, 0) + w (D(x, t, c) - D(x, t, 0)): guidance as a denoiser wrapper."""

    def guided(x, t, cond=None):
        uncond = denoise(x, t, jnp.zeros_like(cond))
        return uncond + w * (denoise(x, t, cond) - uncond)

    return guided


@pytest.mark.parametrize("name", sorted(smp.SAMPLERS))
def test_guidance_is_a_denoiser_wrapper_for_every_sampler(name):
    """w = 1 is the conditional sampler, w = 0 the 'unconditional' one; no sampler changes."""
    process = VP()
    denoise = _conditional_denoiser(process)
    mu = jnp.array([[1.0, -2.0]] * SHAPE[0])
    cond = _run(name, denoise, process, cond=mu)
    uncond = _run(name, denoise, process, cond=jnp.zeros_like(mu))
    np.testing.assert_allclose(
        _run(name, _classifier_free(denoise, 1.0), process, cond=mu), cond, rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        _run(name, _classifier_free(denoise, 0.0), process, cond=mu), uncond, rtol=1e-4, atol=1e-4
    )


def test_two_argument_denoisers_still_work_without_cond():
    process = EDM()
    denoise = _conditional_denoiser(process)
    out = smp.sample("heun", lambda x, t: denoise(x, t, 0.0 * x), process, jax.random.key(0),
                     SHAPE, NFE)
    assert out.shape == SHAPE


_EXPECTED_OPTIONS = {
    "ancestral": {"variance": "small"},
    "ddim": {"eta": 0.0},
    "euler-maruyama": {},
    "pc": {"predictor": "reverse-diffusion", "corrector_steps": 1, "snr": 0.16,
           "snr_norm": "batch"},
    "langevin": {"steps_per_level": 1, "step_size": None},
    "euler": {"variable": "sigma"},
    "heun": {"variable": "sigma"},
    "rk4": {"variable": "sigma"},
    "dpm-solver++": {"order": 2},
}


@pytest.mark.parametrize("name", sorted(_EXPECTED_OPTIONS))
def test_sampler_options_are_declared_once(name):
    common = {"grid": "default", "rho": 7.0, "denoise_final": True}
    assert smp.sampler_options(name) == {**_EXPECTED_OPTIONS[name], **common}
    sampler = smp.SAMPLERS[name]
    assert isinstance(sampler, smp.Sampler) and sampler.name == name
    assert dict(sampler.options) == _EXPECTED_OPTIONS[name]


def test_registry_lists_all_nine_samplers():
    assert tuple(smp.SAMPLERS) == tuple(_EXPECTED_OPTIONS)
    assert smp.STOCHASTIC == {"ancestral", "euler-maruyama", "pc", "langevin"}


def test_unknown_sampler_and_option_list_the_choices():
    process, denoise = VP(), _conditional_denoiser(VP())
    for call in (
        lambda: smp.sample("nope", denoise, process, jax.random.key(0), SHAPE, NFE),
        lambda: smp.sampler_options("nope"),
        lambda: smp.steps_for_nfe("nope", NFE),
        lambda: smp.nfe_for_steps("nope", 3),
    ):
        with pytest.raises(UnknownNameError, match="choose one of: ancestral, ddim, dpm-solver"):
            call()
    with pytest.raises(GenjaxError, match=r"no option\(s\) etta; valid: denoise_final, eta, grid"):
        smp.sample("ddim", denoise, process, jax.random.key(0), SHAPE, NFE, etta=0.5)
    with pytest.raises(ConfigError, match="no option.*valid: .*order"):
        smp.steps_for_nfe("dpm-solver++", NFE, ordr=3)
    with pytest.raises(UnknownNameError, match="choose one of: batch, example"):
        smp.sample("pc", denoise, process, jax.random.key(0), SHAPE, NFE, snr_norm="mean")
    with pytest.raises(UnknownNameError, match="choose one of: sigma, t"):
        smp.sample("rk4", denoise, process, jax.random.key(0), SHAPE, NFE, variable="u")
    with pytest.raises(ConfigError, match="order must be one of"):
        smp.sample("dpm-solver++", denoise, process, jax.random.key(0), SHAPE, NFE, order=4)
    with pytest.raises(ConfigError, match="steps_per_level must be an int >= 1"):
        smp.sample("langevin", denoise, process, jax.random.key(0), SHAPE, NFE, steps_per_level=0)


def test_named_functions_are_the_driver():
    process = VE()
    denoise = _conditional_denoiser(process)
    mu = jnp.ones(SHAPE)
    key = jax.random.key(1)
    for fn, name in ((smp.heun, "heun"), (smp.dpm_solver_pp, "dpm-solver++"), (smp.pc, "pc")):
        a = fn(denoise, process, key, SHAPE, NFE, cond=mu)
        b = smp.sample(name, denoise, process, key, SHAPE, NFE, cond=mu)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(
        np.asarray(smp.pf_ode("rk4", denoise, process, key, SHAPE, NFE, cond=mu)),
        np.asarray(smp.rk4(denoise, process, key, SHAPE, NFE, cond=mu)),
    )


# ------------------------------------------------------------------- the processes' questions
_QUESTIONS = {
    # name: (default_grid, solver_grid, likelihood_grid, discrete_steps, noise_feature_kind)
    "ddpm": ("uniform", "log-snr", "log-snr", 1000, "time"),
    "vp": ("uniform", "log-snr", "uniform", None, "time"),
    "subvp": ("uniform", "log-snr", "uniform", None, "time"),
    "ve": ("uniform", "log-snr", "log-snr", None, "log-sigma"),
    "edm": ("edm", "edm", "log-snr", None, "log-sigma"),
}


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_every_process_answers_the_protocol(name):
    process = get_process(name)
    assert isinstance(process, ForwardProcess)
    answers = (process.default_grid, process.solver_grid, process.likelihood_grid,
               process.discrete_steps, process.noise_feature_kind)
    assert answers == _QUESTIONS[name]
    for grid in (process.default_grid, process.solver_grid, process.likelihood_grid):
        assert grid in GRIDS
    assert process.sigma_data == 0.5


def test_sigma_data_and_discrete_steps_follow_the_settings():
    assert EDM(sigma_data=1.3).sigma_data == 1.3
    assert DDPM(50).discrete_steps == 50
    assert not dataclasses.is_dataclass(ForwardProcess)
    assert not isinstance(object(), ForwardProcess)


@pytest.mark.parametrize("process", [VP(), SubVP(), VE(), EDM(), DDPM(20)], ids=lambda p: p.name)
def test_t_from_log_sigma_inverts_the_noise_level(process):
    t = jnp.linspace(process.t_min, process.t_max, 7)
    log_sigma = jnp.log(process.sigma(t) / process.alpha(t))
    np.testing.assert_allclose(process.t_from_log_sigma(log_sigma), t, rtol=1e-4, atol=1e-5)


def test_edm_time_is_the_noise_level_beyond_its_range():
    assert float(EDM().t_from_log_sigma(jnp.log(200.0))) == pytest.approx(200.0)
    assert float(VP().t_from_log_sigma(jnp.log(1e6))) == pytest.approx(VP().t_max)


def test_sampling_grid_snaps_only_discrete_processes():
    np.testing.assert_allclose(DDPM(10).sampling_grid(9), np.arange(10, 0, -1) / 10, rtol=1e-6)
    vp = VP()
    np.testing.assert_array_equal(vp.sampling_grid(5, "log-snr"), vp.time_grid(5, "log-snr"))
    with pytest.raises(UnknownNameError, match="default, edm, log-snr, uniform"):
        vp.time_grid(4, "cosine")
    grid = vp.time_grid(4, "edm", t_end=1e-4)
    assert float(grid[0]) == vp.t_max and float(grid[-1]) == pytest.approx(1e-4)
    assert bool(jnp.all(jnp.diff(grid) < 0))
