"""Ancestral (DDPM) and DDIM sampling: steps through the Gaussian posterior q(x_s | x_t, x0_hat).

Both step from t to s < t on the grid (``driver.py``) after one denoiser call x0_hat = D(x_t, t):

- **ancestral** (Ho et al. 2020): x_s ~ q(x_s | x_t, x0 = x0_hat) = N(mean, std^2 I) from
  ``process.posterior``, with alpha_{t|s} = alpha_t / alpha_s, sigma_{t|s}^2 = sigma_t^2 -
  alpha_{t|s}^2 sigma_s^2,
  mean = alpha_{t|s} sigma_s^2 / sigma_t^2 x_t + alpha_s sigma_{t|s}^2 / sigma_t^2 x0_hat and
  std^2 = sigma_{t|s}^2 sigma_s^2 / sigma_t^2 (``variance="small"``, Ho's beta-tilde) or
  sigma_{t|s}^2 (``"large"``, Ho's beta). On ``DDPM(N)`` with ``nfe = N`` the grid is every step
  time n/N from t = 1 down to 1/N (N - 1 steps), and the final denoising step is Ho's last step
  (t = 1/N -> 0, no noise): exactly Ho et al.'s sampler. A smaller NFE strides the step times
  (K = nfe - 1 intervals).
- **DDIM** (Song, Meng & Ermon 2021): with eps_hat = (x_t - alpha_t x0_hat) / sigma_t and
  c = eta * std_small,
  x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z.
  eta = 0 is deterministic: it is the Euler method on the probability-flow ODE written in
  (x / alpha, sigma / alpha), hence exactly Euler on the VE / EDM ODE; eta = 1 is the ancestral
  sampler (same noise draws). Both cost 1 NFE per step (+1 for the final denoising step).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax_models.diffusion.samplers.driver import (
    Sampler,
    alpha_sigma,
    one_per_step_cost,
    validate_choice,
)

VARIANCES: tuple[str, ...] = ("small", "large")


def _ancestral_coefficients(process, ts, dtype, **_: Any):
    """Per step: (t, s, the "large" std sigma_{t|s}); the posterior is evaluated in the step."""
    a, s = alpha_sigma(process, ts, dtype)
    large_std = jnp.sqrt(jnp.maximum(s[:-1] ** 2 - (a[:-1] / a[1:]) ** 2 * s[1:] ** 2, 0.0))
    return (ts[:-1], ts[1:], large_std), None


def _ancestral_step(denoise, process, x, inputs, key, *, variance: str, **_: Any):
    """x_s ~ N(mean, std^2 I) of q(x_s | x_t, x0 = D(x_t, t))."""
    t, t_next, std_large = inputs
    mean, std = process.posterior(x, denoise(x, t), t, t_next)
    if variance == "large":
        std = std_large
    return mean + std * jax.random.normal(key, x.shape, x.dtype)


ANCESTRAL = Sampler(
    name="ancestral",
    # variance: "small" (posterior variance, Ho's beta-tilde) or "large" (the forward step's).
    options={"variance": "small"},
    cost=one_per_step_cost,
    coefficients=_ancestral_coefficients,
    step=_ancestral_step,
    stochastic=lambda **_: True,
    validate=lambda variance, **_: validate_choice("ancestral variance", variance, VARIANCES),
)


def _is_deterministic(eta: Any) -> bool:
    """DDIM draws no noise when eta is a Python 0 (a traced eta is taken as stochastic)."""
    return isinstance(eta, int | float) and eta == 0


def _ddim_coefficients(process, ts, dtype, *, eta: Any, **_: Any):
    """Per step: (t, c_x, c_0, c_z) of x_s = c_x x + c_0 D(x, t) + c_z z (module docstring)."""
    a, s = alpha_sigma(process, ts, dtype)
    a_t, s_t, a_s, s_s = a[:-1], s[:-1], a[1:], s[1:]
    var_ts = jnp.maximum(s_t**2 - (a_t / a_s) ** 2 * s_s**2, 0.0)
    c = jnp.minimum(jnp.asarray(eta, dtype) * jnp.sqrt(var_ts * s_s**2 / s_t**2), s_s)
    c_eps = jnp.sqrt(jnp.maximum(s_s**2 - c**2, 0.0))
    # x_s = alpha_s x0 + c_eps (x - alpha_t x0) / sigma_t + c z, as coefficients of x and x0.
    c_x = c_eps / s_t
    c_0 = a_s - c_eps * a_t / s_t
    return (ts[:-1], c_x, c_0, c), None


def _ddim_step(denoise, process, x, inputs, key, *, eta: Any, **_: Any):
    """x_s = c_x x + c_0 D(x, t) (+ c_z z when eta != 0)."""
    del process
    t, c_x, c_0, c_z = inputs
    x_next = c_x * x + c_0 * denoise(x, t)
    if not _is_deterministic(eta):
        x_next = x_next + c_z * jax.random.normal(key, x.shape, x.dtype)
    return x_next


DDIM = Sampler(
    name="ddim",
    # eta: c = eta * the posterior std (0: deterministic DDIM, 1: ancestral), capped at sigma_s.
    options={"eta": 0.0},
    cost=one_per_step_cost,
    coefficients=_ddim_coefficients,
    step=_ddim_step,
    stochastic=lambda eta, **_: not _is_deterministic(eta),
)
