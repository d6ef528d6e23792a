"""Probability-flow ODE samplers against the exact Gaussian-mixture denoiser (ORACLES.md item 3).

From a shared x_T, each solver's endpoint at t_min is compared with a fine RK4 reference solve;
the fitted slope of log error against log NFE is the solver's order. Reference figures (numpy
prototype, EDM ODE sigma 80 -> 0.002, rho = 7, 2-D, 3 components): Euler 0.98, Heun 2.28,
DPM-Solver++(2M) 2.06. Exact identities: DDIM is Euler on the ODE in (x / alpha, sigma / alpha), so
on VE / EDM (alpha = 1) it is plain Euler; DPM-Solver-1 (and the first step of 2M) is DDIM.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import oracle
from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.processes import EDM, VE, VP
from tests.diffusion.oracle_callback import host_denoiser, x64_on_every_thread  # noqa: F401

_PROCESSES = {"edm": EDM(), "ve": VE(), "vp": VP()}


@functools.lru_cache
def _denoiser(name):
    """The oracle's exact float64 denoiser on process ``name``, behind a host callback."""
    return host_denoiser(oracle.example_mixture(2, 3, dtype=jnp.float64), _PROCESSES[name])[0]


def _run(name, process, nfe, x_init, **options):
    """Run sampler ``name`` under jit from ``x_init``."""
    fn = functools.partial(
        smp.sample, name, _denoiser(process), _PROCESSES[process], None, None, nfe, **options
    )
    return jax.jit(lambda x: fn(x_init=x))(x_init)


def _x_T(name, batch=32):
    proc = _PROCESSES[name]
    return proc.prior_sample(jax.random.key(1), (batch, 2), jnp.float64)


@functools.lru_cache
def _reference(name):
    """RK4 with 300 steps (1200 NFE): its error (~1e-7) is far below the solvers' (>= 1e-4)."""
    return _run("rk4", name, 1200, _x_T(name), denoise_final=False)


def _rms(a, b):
    return float(jnp.sqrt(jnp.mean(jnp.sum((a - b) ** 2, axis=-1))))


@pytest.mark.parametrize(
    "process, name, options, nfes, order",
    [
        ("edm", "euler", {}, (32, 64, 128), 1.0),
        ("edm", "heun", {}, (32, 64, 128), 2.0),  # 16, 32, 64 Heun steps
        ("edm", "dpm-solver++", {"order": 2}, (32, 64, 128), 2.0),
        ("edm", "dpm-solver++", {"order": 3}, (32, 64, 128), 3.0),
        ("vp", "ddim", {}, (32, 64, 128), 1.0),
    ],
)
def test_ode_solvers_converge_at_their_order(process, name, options, nfes, order):
    x_T, ref = _x_T(process), _reference(process)
    errors = [_rms(_run(name, process, n, x_T, denoise_final=False, **options), ref) for n in nfes]
    assert all(e > 1e-5 for e in errors), errors  # far above the reference's own error
    slope = -np.polyfit(np.log(nfes), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (name, errors, slope)


@pytest.mark.parametrize(
    "process, variable, equal",
    [("edm", "t", True), ("edm", "sigma", True), ("ve", "sigma", True), ("vp", "sigma", True),
     ("ve", "t", False)],
)
def test_ddim_is_euler_on_the_scaled_ode(process, variable, equal):
    """DDIM == Euler in (x/alpha, sigma/alpha); in t that is only true when sigma(t) = t (EDM)."""
    x_T = _x_T(process, 8)
    ddim = _run("ddim", process, 10, x_T)
    eul = _run("euler", process, 10, x_T, variable=variable)
    if equal:
        np.testing.assert_allclose(np.asarray(eul), np.asarray(ddim), rtol=1e-10, atol=1e-10)
    else:
        assert float(jnp.max(jnp.abs(eul - ddim))) > 1e-3


@pytest.mark.parametrize("process, grid", [("vp", "log-snr"), ("edm", "edm"), ("ve", "uniform")])
def test_dpm_solver_1_is_ddim(process, grid):
    x_T = _x_T(process, 8)
    ddim = _run("ddim", process, 9, x_T, grid=grid)
    dpm1 = _run("dpm-solver++", process, 9, x_T, order=1, grid=grid)
    np.testing.assert_allclose(np.asarray(dpm1), np.asarray(ddim), rtol=1e-10, atol=1e-10)
    # The first step of the multistep solvers is DPM-Solver-1.
    one = _run("ddim", process, 1, x_T, grid=grid, denoise_final=False)
    for order in (2, 3):
        first = _run("dpm-solver++", process, 1, x_T, order=order, grid=grid, denoise_final=False)
        np.testing.assert_allclose(np.asarray(first), np.asarray(one), rtol=1e-10, atol=1e-10)


def test_multistep_coefficients_integrate_polynomials_exactly():
    """Order-k weights integrate e^lambda x0(lambda) exactly for x0 of degree k - 1 (1M, 3M)."""
    ts = np.array([3.0, 2.0, 1.2, 0.5, 0.1])  # EDM: alpha = 1, sigma = t
    lam = -np.log(ts)
    coefficients = jax.jit(smp.multistep_coefficients, static_argnums=2)
    for order, poly in ((1, (0.4, 0.0, 0.0)), (3, (0.3, -1.1, 0.7))):
        c_x, c_m = (np.asarray(v) for v in coefficients(np.ones_like(ts), ts, order))
        x0 = lambda v, p=poly: p[0] + p[1] * v + p[2] * v**2  # noqa: E731
        # int e^v (a + b v + c v^2) dv = e^v (a + b (v - 1) + c (v^2 - 2 v + 2))
        antiderivative = lambda v, p=poly: np.exp(v) * (  # noqa: E731
            p[0] + p[1] * (v - 1) + p[2] * (v**2 - 2 * v + 2)
        )
        for i in range(order - 1, len(ts) - 1):  # steps with enough history for this order
            x_s = 0.8
            got = c_x[i] * x_s + c_m[i] @ np.array([x0(lam[i]), x0(lam[i - 1]), x0(lam[i - 2])])
            integral = antiderivative(lam[i + 1]) - antiderivative(lam[i])
            want = ts[i + 1] / ts[i] * x_s + ts[i + 1] * integral
            np.testing.assert_allclose(got, want, rtol=1e-10)
