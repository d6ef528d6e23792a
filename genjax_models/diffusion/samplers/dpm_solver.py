"""DPM-Solver++ multistep (data prediction; Lu et al. 2022, "DPM-Solver++"), orders 1, 2 and 3.

With lambda_t = log(alpha_t / sigma_t) (half the log-SNR, increasing as t decreases) the
probability-flow ODE has the exact solution from s to t

    x_t = (sigma_t / sigma_s) x_s + sigma_t int_{lambda_s}^{lambda_t} e^lambda x0(lambda) dlambda,

and, with h = lambda_t - lambda_s, the weights of a polynomial x0(lambda_s + v) = m0 + v d1 + v^2 d2
are alpha_t int_0^h e^{-(h - v)} v^k dv = alpha_t (-phi_1, h phi_2, -2 h^2 phi_3) for k = 0, 1, 2,
where phi_1 = expm1(-h), phi_2 = phi_1 / h + 1, phi_3 = phi_2 / h - 1/2. The multistep solvers
reuse the denoiser outputs m0, m1, m2 of the current and previous grid points (steps h, h_1, h_2):

- order 1 (DPM-Solver-1): x_t = (sigma_t / sigma_s) x_s - alpha_t phi_1 m0, which is DDIM;
- order 2 (2M, Lu et al.'s Algorithm 2): r = h_1 / h,
  x_t = (sigma_t / sigma_s) x_s - alpha_t phi_1 [(1 + 1/(2r)) m0 - 1/(2r) m1];
- order 3 (3M): d1, d2 from the quadratic through (0, m0), (-h_1, m1), (-h_1 - h_2, m2):
  with r0 = h_1 / h, r1 = h_2 / h, D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1,
  D2 = (D1_0 - D1_1) / (r0 + r1): x_t = (sigma_t/sigma_s) x_s + alpha_t [-phi_1 m0
  + phi_2 (D1_0 + r0 D2) - 2 phi_3 D2].

The first steps fall back to the highest order their history allows (1, then 2). All
coefficients x_t = c_x x_s + c_0 m0 + c_1 m1 + c_2 m2 are precomputed, so a step is one denoiser
call and four axpys: K NFE for K intervals (+1 for ``denoise_final``). The default grid is the
process's ``solver_grid``: uniform in log-SNR, or EDM's rho-grid on EDM.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.diffusion.samplers.driver import Sampler, alpha_sigma, one_per_step_cost
from genjax_models.errors import ConfigError

ORDERS: tuple[int, ...] = (1, 2, 3)


def multistep_coefficients(
    alpha: Float[Array, " n"], sigma: Float[Array, " n"], order: int
) -> tuple[Float[Array, " k"], Float[Array, "k 3"]]:
    """Return DPM-Solver++ multistep coefficients for a grid (module docstring).

    Args:
      alpha: ``[K + 1]`` alpha at the grid times (decreasing t).
      sigma: ``[K + 1]`` sigma at the grid times.
      order: 1, 2 or 3.

    Returns:
      ``(c_x [K], c_m [K, 3])``: x_{i+1} = c_x[i] x_i + sum_j c_m[i, j] m_{i-j}.
    """
    lam = jnp.log(alpha) - jnp.log(sigma)
    h = lam[1:] - lam[:-1]
    num = h.shape[0]
    h_1 = jnp.concatenate([h[:1], h[:-1]])  # h_{i-1} (unused at i = 0)
    h_2 = jnp.concatenate([h[:2], h[:-2]])[:num]  # h_{i-2} (unused at i < 2)
    a_next = alpha[1:]
    phi_1 = jnp.expm1(-h)
    phi_2 = phi_1 / h + 1.0
    phi_3 = phi_2 / h - 0.5
    zero = jnp.zeros_like(h)

    first = jnp.stack([-a_next * phi_1, zero, zero], axis=-1)
    r = h_1 / h
    second = jnp.stack(
        [-a_next * phi_1 * (1.0 + 0.5 / r), a_next * phi_1 * 0.5 / r, zero], axis=-1
    )
    r0, r1 = h_1 / h, h_2 / h
    e0, e1, e2 = (jnp.eye(3, dtype=h.dtype)[j] for j in range(3))
    d1_0 = (e0 - e1)[None] / r0[:, None]
    d1_1 = (e1 - e2)[None] / r1[:, None]
    d2 = (d1_0 - d1_1) / (r0 + r1)[:, None]
    third = a_next[:, None] * (
        -phi_1[:, None] * e0[None]
        + phi_2[:, None] * (d1_0 + r0[:, None] * d2)
        - 2.0 * phi_3[:, None] * d2
    )
    step_order = jnp.minimum(order, jnp.arange(num) + 1)[:, None]
    c_m = jnp.where(step_order == 1, first, jnp.where(step_order == 2, second, third))
    return sigma[1:] / sigma[:-1], c_m


def _dpm_validate(*, order: Any, **_: Any) -> None:
    if order not in ORDERS:
        raise ConfigError(f"DPM-Solver++ order must be one of {ORDERS}, got {order!r}")


def _dpm_coefficients(process, ts, dtype, *, order: int, **_: Any):
    """Per step: (t, c_x, c_m [3]) of :func:`multistep_coefficients`."""
    a, s = alpha_sigma(process, ts, dtype)
    c_x, c_m = multistep_coefficients(a, s, order)
    return (ts[:-1], c_x, c_m), None


def _dpm_step(denoise, process, carry, inputs, key, *, order: int, **_: Any):
    """x_{i+1} = c_x x_i + c_m0 m_i (+ c_m1 m_{i-1} (+ c_m2 m_{i-2})); the history shifts."""
    del process, key
    x, m1, m2 = carry
    t, cx, cm = inputs
    m0 = denoise(x, t)
    x_next = cx * x + cm[0] * m0
    if order >= 2:
        x_next = x_next + cm[1] * m1
    if order >= 3:
        x_next = x_next + cm[2] * m2
    return x_next, m0, m1


DPM_SOLVER_PP = Sampler(
    name="dpm-solver++",
    # order: 1, 2 (2M) or 3 (3M).
    options={"order": 2},
    cost=one_per_step_cost,
    coefficients=_dpm_coefficients,
    step=_dpm_step,
    init=lambda x, constants, **_: (x, jnp.zeros_like(x), jnp.zeros_like(x)),
    finish=lambda carry, constants, **_: carry[0],
    state_x=lambda process, carry, t, **_: carry[0],
    with_x=lambda process, carry, x, t, **_: (x, *carry[1:]),
    default_grid=lambda process: process.solver_grid,
    validate=_dpm_validate,
)
