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
Runge-Kutta step on the grid from t_max to t_min (``grids.py``); with the field written as
k = c_y y + c_0 D (c_y = 1/u, c_0 = -1/u, or c_y = sigma'/sigma, c_0 = alpha' - sigma' alpha / sigma),
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

from genjax_models.diffusion.samplers.grids import (
    DenoiseFn,
    budget,
    coefficients,
    denoise,
    finish,
    initial_state,
    sampling_grid,
)
from genjax_models.errors import unknown_name

VARIABLES: tuple[str, ...] = ("sigma", "t")

# Explicit Runge-Kutta tableaux: (nodes c, matrix A (lower-triangular rows), weights b).
TABLEAUX: dict[str, tuple[tuple[float, ...], tuple[tuple[float, ...], ...], tuple[float, ...]]] = {
    "euler": ((0.0,), ((),), (1.0,)),
    "heun": ((0.0, 1.0), ((), (1.0,)), (0.5, 0.5)),
    "rk4": (
        (0.0, 0.5, 0.5, 1.0),
        ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
        (1 / 6, 1 / 3, 1 / 3, 1 / 6),
    ),
}


def ode_cost(method: str, denoise_final: bool = True, **_) -> tuple[int, int]:
    """Return ``(per_step, fixed)`` NFE of the ODE sampler ``method``."""
    return len(TABLEAUX[method][0]), int(denoise_final)


def _stage_coefficients(process, ts: jax.Array, nodes: tuple[float, ...], variable: str, dtype):
    """Precompute per-step stage data for ``k = c_y y + c_0 D(scale y, tau)``.

    Returns:
      ``(u, h, tau, scale, c_y, c_0)``: the integration variable ``[K + 1]``, step sizes ``[K]``
      and, per step and stage, the process time, input scale and field coefficients ``[K, S]``.
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
        return u, h, tau, jnp.ones_like(tau), ds / s, da - ds * a / s
    a, s = coefficients(process, ts, dtype)
    u = s / a
    h = u[1:] - u[:-1]
    u_stage = u[:-1, None] + c[None] * h[:, None]
    tau = jnp.where(c[None] == 0.0, ts[:-1, None], ts[1:, None])
    if any(node not in (0.0, 1.0) for node in nodes):
        inverted = process.t_from_log_snr(-2.0 * jnp.log(u_stage)).astype(dtype)
        tau = jnp.where((c[None] == 0.0) | (c[None] == 1.0), tau, inverted)
    scale = process.alpha(tau).astype(dtype)
    return u, h, tau, scale, 1.0 / u_stage, -1.0 / u_stage


def pf_ode(
    method: str,
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    grid: str = "default",
    rho: float = 7.0,
    variable: str = "sigma",
    denoise_final: bool = True,
    dtype=None,
) -> jax.Array:
    """Integrate the probability-flow ODE from t_max to t_min with ``method`` (module docstring).

    Args:
      method: ``"euler"``, ``"heun"`` or ``"rk4"``.
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key for the prior draw (may be ``None`` when ``x_init`` is given).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: denoiser evaluations (see the module table).
      x_init: optional x_T ``[B, *event]``.
      grid: time grid kind (``grids.GRIDS``); rho: the EDM grid's exponent.
      variable: ``"sigma"`` (integrate in u = sigma / alpha) or ``"t"`` (in process time).
      denoise_final: return x0_hat at ``t_min`` (one more NFE).
      dtype: dtype of the prior draw when ``x_init`` is not given.

    Returns:
      Samples ``[B, *event]``.
    """
    if method not in TABLEAUX:
        raise unknown_name("ODE method", method, TABLEAUX)
    if variable not in VARIABLES:
        raise unknown_name("ODE variable", variable, VARIABLES)
    nodes, matrix, weights = TABLEAUX[method]
    num_steps = budget(method, nfe, *ode_cost(method, denoise_final))
    x, _ = initial_state(process, key, shape, x_init, dtype)
    ts = sampling_grid(process, num_steps, grid, rho).astype(x.dtype)
    _, h, tau, scale, c_y, c_0 = _stage_coefficients(process, ts, nodes, variable, x.dtype)
    if variable == "sigma":
        end_scale = process.alpha(ts[-1]).astype(x.dtype)
        y = x / process.alpha(ts[0]).astype(x.dtype)
    else:
        end_scale, y = jnp.ones((), x.dtype), x

    def body(y, inputs):
        h, tau, scale, c_y, c_0 = inputs
        slopes = []
        for j, row in enumerate(matrix):
            y_j = y
            for weight, k in zip(row, slopes, strict=False):
                if weight != 0.0:
                    y_j = y_j + (h * weight) * k
            d = denoise(denoise_fn, scale[j] * y_j, tau[j])
            slopes.append(c_y[j] * y_j + c_0[j] * d)
        y_next = y
        for weight, k in zip(weights, slopes, strict=True):
            y_next = y_next + (h * weight) * k
        return y_next, None

    y, _ = jax.lax.scan(body, y, (h, tau, scale, c_y, c_0))
    return finish(denoise_fn, end_scale * y, ts[-1], denoise_final)


def euler(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    **options: Any,
) -> jax.Array:
    """Sample with Euler steps on the probability-flow ODE (1 NFE per step; see :func:`pf_ode`)."""
    return pf_ode("euler", denoise_fn, process, key, shape, nfe, **options)


def heun(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    **options: Any,
) -> jax.Array:
    """Sample with EDM's Heun steps on the probability-flow ODE (2 NFE per step; :func:`pf_ode`)."""
    return pf_ode("heun", denoise_fn, process, key, shape, nfe, **options)


def rk4(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    **options: Any,
) -> jax.Array:
    """Sample with classical RK4 steps on the probability-flow ODE (4 NFE per step; :func:`pf_ode`)."""
    return pf_ode("rk4", denoise_fn, process, key, shape, nfe, **options)
