"""Samplers: SDE samplers' weak convergence, exact identities, NFE accounting, jit / vmap, errors.

The data are a Gaussian mixture with the oracle's exact denoiser (ORACLES.md item 4), or Gaussian
data N(0, c^2 I), whose exact denoiser is D(x, t) = alpha c^2 x / (alpha^2 c^2 + sigma^2) and whose
probability-flow ODE is the linear map x_t = x_s sqrt(v_t / v_s), v_t = alpha_t^2 c^2 + sigma_t^2.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import oracle
from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.processes import DDPM, EDM, VE, VP
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from genjax_models.eval.sample_metrics import mmd2
from tests.diffusion.oracle_callback import host_denoiser, x64_on_every_thread  # noqa: F401

DATA_STD = 0.7


def _gaussian_denoiser(process):
    """Exact E[x0 | x_t] for x0 ~ N(0, DATA_STD^2 I)."""

    def denoise(x, t):
        a, s = process.alpha(t), process.sigma(t)
        gain = a * DATA_STD**2 / (a**2 * DATA_STD**2 + s**2)
        return gain.reshape((-1,) + (1,) * (x.ndim - 1)) * x

    return denoise


@functools.lru_cache
def _mixture_problem(name):
    """(mixture, process, denoiser, jitted oracle): the oracle's denoiser behind a host callback."""
    process = {"vp": VP(), "ve": VE(), "edm": EDM(), "ddpm": DDPM(10, "cosine")}[name]
    mix = oracle.example_mixture(2, 3, dtype=jnp.float64)
    return (mix, process, *host_denoiser(mix, process))


# --------------------------------------------------------------------- SDE samplers: weak error
_BANDWIDTHS = (0.25, 0.5, 1.0)
_NUM = 1000


@functools.lru_cache
def _exact_reference():
    """Exact mixture samples and the MMD^2 noise floor: max |MMD^2| between independent sets."""
    mix = _mixture_problem("vp")[0]
    ref = mix.sample(jax.random.key(100), 2 * _NUM)
    metric = jax.jit(lambda x: mmd2(x, ref, _BANDWIDTHS))
    floor = max(abs(float(metric(mix.sample(jax.random.key(200 + i), _NUM)))) for i in range(4))
    return metric, floor


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ancestral", "euler-maruyama", "pc", "langevin"])
def test_sde_samplers_converge_weakly(name):
    """MMD^2 to exact samples falls from clearly biased (10 NFE) to the noise floor (400 NFE)."""
    metric, floor = _exact_reference()
    _, process, denoise, _ = _mixture_problem("vp")
    errors = {}
    for nfe in (10, 100, 400):
        run = jax.jit(lambda k, nfe=nfe: smp.sample(name, denoise, process, k, (_NUM, 2), nfe))
        errors[nfe] = float(metric(run(jax.random.key(5))))
    assert errors[10] > 10 * floor, (errors, floor)
    assert errors[100] < errors[10], errors
    assert errors[400] < errors[100] + floor, (errors, floor)
    assert errors[400] < 3 * floor, (errors, floor)


# ------------------------------------------------------------------------------ exact identities
def test_ancestral_on_ddpm_is_ho_et_al():
    """With nfe = N on DDPM(N), ancestral sampling is Ho et al.'s sampler, draw for draw."""
    _, process, denoise, exact = _mixture_problem("ddpm")
    n, key = process.num_steps, jax.random.key(3)
    for variance in ("small", "large"):
        run = functools.partial(
            smp.ancestral, denoise, process, shape=(16, 2), nfe=n, variance=variance
        )
        got = jax.jit(lambda k, run=run: run(key=k))(key)
        prior_key, noise_key = jax.random.split(key)
        x = jax.random.normal(prior_key, (16, 2), jnp.float64)
        keys = jax.random.split(noise_key, n - 1)
        betas = np.asarray(process.betas)
        alpha_bar = np.cumprod(1.0 - betas)
        for step in range(n, 0, -1):  # Ho et al.'s Algorithm 2, steps N..1
            b, ab = betas[step - 1], alpha_bar[step - 1]
            ab_prev = alpha_bar[step - 2] if step > 1 else 1.0
            x0 = exact(x, jnp.full((16,), step / n))
            eps = (x - np.sqrt(ab) * x0) / np.sqrt(1 - ab)
            mean = (x - b / np.sqrt(1 - ab) * eps) / np.sqrt(1 - b)
            if step > 1:
                var = b if variance == "large" else (1 - ab_prev) / (1 - ab) * b
                z = jax.random.normal(keys[n - step], (16, 2), jnp.float64)
                x = mean + np.sqrt(var) * z
            else:
                x = mean
        np.testing.assert_allclose(np.asarray(got), np.asarray(x), rtol=1e-9, atol=1e-9)


def test_ddim_with_eta_one_is_ancestral():
    _, process, denoise, _ = _mixture_problem("vp")
    key = jax.random.key(4)
    anc = jax.jit(lambda k: smp.ancestral(denoise, process, k, (16, 2), 12))(key)
    ddim = jax.jit(lambda k: smp.ddim(denoise, process, k, (16, 2), 12, eta=1.0))(key)
    np.testing.assert_allclose(np.asarray(ddim), np.asarray(anc), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "name, options, nfe, order",
    [
        ("euler", {}, 20, 1),
        ("heun", {}, 41, 2),
        ("rk4", {}, 41, 4),
        ("dpm-solver++", {"order": 2}, 20, 2),
        ("dpm-solver++", {"order": 3}, 20, 3),
    ],
)
@pytest.mark.parametrize("process", [VP(), VE()], ids=["vp", "ve"])  # EDM: test_solver_order.py
def test_ode_samplers_converge_to_the_exact_gaussian_flow(name, options, nfe, order, process):
    """On Gaussian data the probability-flow ODE is x_t = x_T sqrt(v_t / v_T) in closed form.

    Quadrupling the number of steps must cut the error by about 4^order (at least half that).
    """
    x_T = process.prior_sample(jax.random.key(0), (8, 3), jnp.float64)
    var = lambda t: process.alpha(t) ** 2 * DATA_STD**2 + process.sigma(t) ** 2  # noqa: E731
    want = x_T * jnp.sqrt(var(process.t_min) / var(process.t_max))
    errors, base = [], smp.steps_for_nfe(name, nfe, denoise_final=False)
    for steps in (base, 4 * base):
        used = smp.nfe_for_steps(name, steps, denoise_final=False)
        run = functools.partial(
            smp.sample, name, _gaussian_denoiser(process), process, None, None, used,
            denoise_final=False, **options,
        )
        got = jax.jit(lambda x, run=run: run(x_init=x))(x_T)
        errors.append(float(jnp.max(jnp.abs(got - want))))
    assert errors[1] < 0.05 * float(jnp.max(jnp.abs(want))), errors
    assert errors[0] / errors[1] > 0.5 * 4**order, errors


def test_ddpm_grid_strides_the_step_times():
    np.testing.assert_allclose(smp.sampling_grid(DDPM(10), 9), np.arange(10, 0, -1) / 10)
    for steps, kind in ((9, "uniform"), (59, "log-snr"), (99, "edm")):
        grid = np.asarray(smp.sampling_grid(DDPM(100), steps, kind))
        np.testing.assert_allclose(grid * 100, np.round(grid * 100), atol=1e-9)  # step times
        assert grid[0] == 1.0 and abs(grid[-1] - 0.01) < 1e-12 and np.all(np.diff(grid) < 0)
    with pytest.raises(ConfigError, match="at most 99 intervals"):
        smp.sampling_grid(DDPM(100), 100)


# ------------------------------------------------------------------------ NFE, jit, vmap, shapes
@pytest.mark.parametrize(
    "name, nfe, options, used",
    [
        ("ancestral", 12, {}, 12),
        ("ddim", 12, {"denoise_final": False}, 12),
        ("euler-maruyama", 12, {}, 12),
        ("pc", 13, {"corrector_steps": 2}, 13),  # 4 x (2 + 1) + 1
        ("pc", 12, {}, 11),  # 5 x (1 + 1) + 1; one NFE left unspent
        ("langevin", 13, {"steps_per_level": 3}, 13),
        ("euler", 12, {}, 12),
        ("heun", 35, {}, 35),  # EDM: 18 noise levels, 2 x 18 - 1
        ("heun", 12, {"denoise_final": False}, 12),
        ("rk4", 14, {}, 13),
        ("dpm-solver++", 12, {"order": 3}, 12),
    ],
)
def test_nfe_accounting(name, nfe, options, used):
    """Count denoiser calls in the traced program: calls in a scan body count ``length`` times."""
    process = EDM()
    exact = _gaussian_denoiser(process)

    def counted_denoiser(x, t):
        assert t.shape == x.shape[:1]
        return exact(x, t)

    run = lambda k: smp.sample(name, jax.jit(counted_denoiser), process, k, (3, 2), nfe, **options)  # noqa: E731
    calls = _count_calls(jax.make_jaxpr(run)(jax.random.key(0)).jaxpr, "counted_denoiser")
    steps = smp.steps_for_nfe(name, nfe, **options)
    assert calls == used == smp.nfe_for_steps(name, steps, **options)
    assert calls <= nfe


def _count_calls(jaxpr, name):
    """Return how often the jitted function ``name`` runs in ``jaxpr`` (scan bodies x length)."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.params.get("name") == name:
            total += 1
            continue
        inner = 0
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    inner += _count_calls(sub, name)
        total += inner * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
    return total


@pytest.mark.parametrize("name", sorted(smp.SAMPLERS))
def test_samplers_jit_and_vmap_on_image_batches(name):
    """vmap over keys (stochastic samplers) or over x_T (deterministic ones), on [B, H, W, C]."""
    process = VP()
    denoise = _gaussian_denoiser(process)
    shape = (2, 3, 3, 2)
    keys = jax.random.split(jax.random.key(1), 3)
    if name in smp.STOCHASTIC:
        one = lambda k: smp.sample(name, denoise, process, k, shape, 8)  # noqa: E731
        inputs = keys
    else:
        one = lambda x: smp.sample(name, denoise, process, None, None, 8, x_init=x)  # noqa: E731
        inputs = jax.random.normal(keys[0], (3, *shape))
    out = jax.jit(jax.vmap(one))(inputs)
    assert out.shape == (3, *shape) and bool(jnp.all(jnp.isfinite(out)))
    if name in ("pc", "heun"):  # vmapped draws are the per-input draws
        single = jax.jit(one)(inputs[1])
        np.testing.assert_allclose(np.asarray(out[1]), np.asarray(single), rtol=1e-9, atol=1e-9)


def test_x_init_is_shared_and_deterministic_samplers_need_no_key():
    process = EDM()
    denoise = _gaussian_denoiser(process)
    x_T = process.prior_sample(jax.random.key(0), (4, 2))
    a = smp.sample("heun", denoise, process, None, None, 9, x_init=x_T)
    b = smp.sample("heun", denoise, process, jax.random.key(7), (4, 2), 9, x_init=x_T)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors():
    process = VP()
    denoise = _gaussian_denoiser(process)
    key = jax.random.key(0)
    with pytest.raises(UnknownNameError, match="dpm-solver\\+\\+.*euler-maruyama"):
        smp.sample("nope", denoise, process, key, (2, 2), 10)
    with pytest.raises(UnknownNameError, match="choose one of"):
        smp.steps_for_nfe("nope", 10)
    with pytest.raises(ConfigError, match="no option.*valid: .*eta"):
        smp.sample("ddim", denoise, process, key, (2, 2), 10, etta=0.5)
    with pytest.raises(ConfigError, match="nfe >= 3"):
        smp.sample("heun", denoise, process, key, (2, 2), 2)
    with pytest.raises(ConfigError, match="nfe >= 3"):
        smp.sample("pc", denoise, process, key, (2, 2), 2)
    with pytest.raises(ConfigError, match="positive int"):
        smp.sample("euler", denoise, process, key, (2, 2), 0)
    with pytest.raises(UnknownNameError, match="log-snr"):
        smp.sample("euler", denoise, process, key, (2, 2), 10, grid="cosine")
    with pytest.raises(UnknownNameError, match="reverse-diffusion"):
        smp.sample("pc", denoise, process, key, (2, 2), 10, predictor="ode")
    with pytest.raises(ShapeError, match="x_init"):
        smp.sample("euler", denoise, process, key, (3, 2), 10, x_init=jnp.zeros((2, 2)))
    with pytest.raises(ShapeError, match="denoise_fn"):
        smp.sample("euler", lambda x, t: x[:, :1], process, key, (3, 2), 10)
    with pytest.raises(ConfigError, match="stochastic"):
        smp.sample("ancestral", denoise, process, None, None, 10, x_init=jnp.zeros((2, 2)))
