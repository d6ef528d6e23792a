"""Probability-flow ODE samplers: Euler, Heun (EDM) and RK4 on a fixed grid, one ``lax.scan``.

The probability-flow ODE of x_t = alpha_t x0 + sigma_t eps (Song et al. 2021) is, written with
the denoiser D(x, t) ~ E[x0 | x_t = x] and eps_hat = (x - alpha_t D) / sigma_t,

    dx/dt = f(t) x - 1/2 g(t)^2 score = alpha'(t) D + sigma'(t) eps_hat          (``variable="t"``)

or, in the scaled variables y = x / alpha and u = sigma / alpha (Karras et al. 2022, the DDIM
ODE of Song, Meng & Ermon 2021),

    dy/du = (y - D(alpha y, t(u))) / u                                            (``"sigma"``).

Both describe the same trajectories; the second is nearly straight (less truncation error), is
what EDM's samplers integrate, and makes Euler identical to DDIM on every process. On the VE and
EDM processes alpha = 1, and on EDM u = t, so the two coincide there. Each step is one explicit
Runge-Kutta step (the tableaus and stage loop of :mod:`genjax_models.ode.runge_kutta`) on the
grid from t_max to t_min (``driver.py``); with the field written as k = c_y y + c_0 D
(c_y = 1/u, c_0 = -1/u, or c_y = sigma'/sigma, c_0 = alpha' - sigma' alpha / sigma),
all stage times and coefficients are precomputed before the scan, so a step is denoiser calls and
axpys. NFE with K intervals (+1 for ``denoise_final``):

======  =========================================  ===========  =====
method  step                                       NFE          order
======  =========================================  ===========  =====
euler   y' = y + h k(y, u)                          K (+1)       1
heun    y' = y + h/2 [k(y, u) + k(y + h k, u + h)]  2K (+1)      2
rk4     classical Runge-Kutta                       4K (+1)      4
======  =========================================  ===========  =====

Heun with ``denoise_final=True`` is EDM's Algorithm 1 with N = K + 1 noise levels and 2N - 1 NFE:
its last step, the Euler step from u_min to u = 0, is y + (0 - u)(y - D) / u = D, i.e. exactly the
final denoising step; every earlier step is a Heun step (2 NFE).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax_models.diffusion.samplers.driver import Sampler, alpha_sigma, validate_choice
from genjax_models.ode import TABLEAUS, ButcherTableau, explicit_rk

VARIABLES: tuple[str, ...] = ("sigma", "t")
METHODS: tuple[str, ...] = ("euler", "heun", "rk4")


def _stage_coefficients(process, ts, nodes: tuple[float, ...], variable: str, dtype):
    """Precompute per-step stage data for ``k = c_y y + c_0 D(scale y, tau)``.

    Returns:
      ``(h, tau, scale, c_y, c_0)``: step sizes ``[K]`` in the integration variable and, per step
      and stage, the process time, input scale and field coefficients ``[K, S]``.
    """
    c = jnp.asarray(nodes, dtype)
    if variable == "t":
        u = ts
        h = u[1:] - u[:-1]
        tau = u[:-1, None] + c[None] * h[:, None]
        ones = jnp.ones_like(tau)
        a, da = jax.jvp(process.alpha, (tau,), (ones,))
        s, ds = jax.jvp(process.sigma, (tau,), (ones,))
        a, da, s, ds = (v.astype(dtype) for v in (a, da, s, ds))
        return h, tau, jnp.ones_like(tau), ds / s, da - ds * a / s
    a, s = alpha_sigma(process, ts, dtype)
    u = s / a
    h = u[1:] - u[:-1]
    u_stage = u[:-1, None] + c[None] * h[:, None]
    tau = jnp.where(c[None] == 0.0, ts[:-1, None], ts[1:, None])
    if any(node not in (0.0, 1.0) for node in nodes):
        inverted = process.t_from_log_snr(-2.0 * jnp.log(u_stage)).astype(dtype)
        tau = jnp.where((c[None] == 0.0) | (c[None] == 1.0), tau, inverted)
    scale = process.alpha(tau).astype(dtype)
    return h, tau, scale, 1.0 / u_stage, -1.0 / u_stage


def _state_x(process, y, t, *, variable: str, **_: Any):
    """x_t = alpha_t y in the sigma variable (y = x / alpha), y itself in t."""
    return process.alpha(t).astype(y.dtype) * y if variable == "sigma" else y


def _with_x(process, y, x, t, *, variable: str, **_: Any):
    """The state holding x_t: x / alpha_t in the sigma variable."""
    return x / process.alpha(t).astype(x.dtype) if variable == "sigma" else x


def _pf_ode_sampler(method: str) -> Sampler:
    """Return the PF-ODE sampler of the Runge-Kutta tableau ``method`` (module docstring)."""
    tableau: ButcherTableau = TABLEAUS[method]

    def coefficients(process, ts, dtype, *, variable: str, **_: Any):
        per_step = _stage_coefficients(process, ts, tableau.c, variable, dtype)
        if variable == "sigma":  # y = x / alpha_{t_max}; x_{t_min} = alpha_{t_min} y
            start = process.alpha(ts[0]).astype(dtype)
            end = process.alpha(ts[-1]).astype(dtype)
        else:
            start, end = None, jnp.ones((), dtype)
        return per_step, (start, end)

    def step(denoise, process, y, inputs, key, **_: Any):
        del process, key
        h, tau, scale, c_y, c_0 = inputs

        def slope(j: int, y_j):
            return c_y[j] * y_j + c_0[j] * denoise(scale[j] * y_j, tau[j])

        return explicit_rk(tableau, y, h, slope)

    return Sampler(
        name=method,
        # variable: "sigma" (integrate in u = sigma / alpha) or "t" (in process time).
        options={"variable": "sigma"},
        cost=lambda denoise_final=True, **_: (tableau.num_stages, int(denoise_final)),
        coefficients=coefficients,
        step=step,
        init=lambda x, constants, **_: x if constants[0] is None else x / constants[0],
        finish=lambda y, constants, **_: constants[1] * y,
        state_x=_state_x,
        with_x=_with_x,
        validate=lambda variable, **_: validate_choice("ODE variable", variable, VARIABLES),
    )


EULER, HEUN, RK4 = (_pf_ode_sampler(method) for method in METHODS)
