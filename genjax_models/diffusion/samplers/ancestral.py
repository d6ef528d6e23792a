"""Ancestral (DDPM) and DDIM sampling: steps through the Gaussian posterior q(x_s | x_t, x0_hat).

Both step from t to s < t on the grid (``grids.py``) after one denoiser call x0_hat = D(x_t, t):

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
    step_keys,
)
from genjax_models.errors import unknown_name

VARIANCES: tuple[str, ...] = ("small", "large")


def ancestral_cost(denoise_final: bool = True, **_) -> tuple[int, int]:
    """Return ``(per_step, fixed)`` NFE of :func:`ancestral` and :func:`ddim`."""
    return 1, int(denoise_final)


def ancestral(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    grid: str = "default",
    rho: float = 7.0,
    variance: str = "small",
    denoise_final: bool = True,
    dtype=None,
) -> jax.Array:
    """Sample by ancestral steps x_s ~ q(x_s | x_t, x0_hat) over the grid (module docstring).

    Args:
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key (prior draw and step noise).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: denoiser evaluations: K = nfe - denoise_final intervals.
      x_init: optional x_T ``[B, *event]``.
      grid: time grid kind (``grids.GRIDS``); rho: the EDM grid's exponent.
      variance: ``"small"`` (posterior variance) or ``"large"`` (the forward step's variance).
      denoise_final: return x0_hat at ``t_min`` (one more NFE).
      dtype: dtype of the prior draw when ``x_init`` is not given.

    Returns:
      Samples ``[B, *event]``.
    """
    if variance not in VARIANCES:
        raise unknown_name("ancestral variance", variance, VARIANCES)
    num_steps = budget("ancestral", nfe, *ancestral_cost(denoise_final))
    x, noise_key = initial_state(process, key, shape, x_init, dtype)
    ts = sampling_grid(process, num_steps, grid, rho).astype(x.dtype)
    keys = step_keys(noise_key, num_steps, "ancestral")
    a, s = coefficients(process, ts, x.dtype)
    large_std = jnp.sqrt(jnp.maximum(s[:-1] ** 2 - (a[:-1] / a[1:]) ** 2 * s[1:] ** 2, 0.0))

    def body(x, inputs):
        t, t_next, std_large, k = inputs
        x0 = denoise(denoise_fn, x, t)
        mean, std = process.posterior(x, x0, t, t_next)
        if variance == "large":
            std = std_large
        return mean + std * jax.random.normal(k, x.shape, x.dtype), None

    x, _ = jax.lax.scan(body, x, (ts[:-1], ts[1:], large_std, keys))
    return finish(denoise_fn, x, ts[-1], denoise_final)


def ddim(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    eta: float = 0.0,
    grid: str = "default",
    rho: float = 7.0,
    denoise_final: bool = True,
    dtype=None,
) -> jax.Array:
    """Sample with DDIM steps x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z.

    Args:
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key; may be ``None`` when ``eta == 0`` and ``x_init`` is given.
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: denoiser evaluations: K = nfe - denoise_final intervals.
      x_init: optional x_T ``[B, *event]``.
      eta: c = eta * the posterior std (0: deterministic DDIM, 1: ancestral); c is capped at
        sigma_s.
      grid: time grid kind (``grids.GRIDS``); rho: the EDM grid's exponent.
      denoise_final: return x0_hat at ``t_min`` (one more NFE).
      dtype: dtype of the prior draw when ``x_init`` is not given.

    Returns:
      Samples ``[B, *event]``.
    """
    num_steps = budget("ddim", nfe, *ancestral_cost(denoise_final))
    x, noise_key = initial_state(process, key, shape, x_init, dtype)
    ts = sampling_grid(process, num_steps, grid, rho).astype(x.dtype)
    stochastic = not (isinstance(eta, int | float) and eta == 0)
    keys = step_keys(noise_key, num_steps, "ddim") if stochastic else jnp.zeros((num_steps,))
    a, s = coefficients(process, ts, x.dtype)
    a_t, s_t, a_s, s_s = a[:-1], s[:-1], a[1:], s[1:]
    var_ts = jnp.maximum(s_t**2 - (a_t / a_s) ** 2 * s_s**2, 0.0)
    c = jnp.minimum(jnp.asarray(eta, x.dtype) * jnp.sqrt(var_ts * s_s**2 / s_t**2), s_s)
    c_eps = jnp.sqrt(jnp.maximum(s_s**2 - c**2, 0.0))
    # x_s = alpha_s x0 + c_eps (x - alpha_t x0) / sigma_t + c z, as coefficients of x and x0.
    c_x = c_eps / s_t
    c_0 = a_s - c_eps * a_t / s_t

    def body(x, inputs):
        t, cx, c0, cz, k = inputs
        x_next = cx * x + c0 * denoise(denoise_fn, x, t)
        if stochastic:
            x_next = x_next + cz * jax.random.normal(k, x.shape, x.dtype)
        return x_next, None

    x, _ = jax.lax.scan(body, x, (ts[:-1], c_x, c_0, c, keys))
    return finish(denoise_fn, x, ts[-1], denoise_final)
