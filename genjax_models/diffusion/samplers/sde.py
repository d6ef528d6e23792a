"""Stochastic samplers: reverse-SDE Euler-Maruyama, predictor-corrector and annealed Langevin.

With the denoiser D(x, t) ~ E[x0 | x_t = x], the score is s(x, t) = (alpha_t D - x) / sigma_t^2, and
the forward SDE dx = f x dt + g dW (``process.sde``) has the reverse-time SDE
dx = [f x - g^2 s] dt + g dW_bar (Anderson 1982). On the grid t_0 = t_max > ... > t_K = t_min
(``grids.py``), with h = t_{i+1} - t_i < 0 and z ~ N(0, I):

- **euler-maruyama**: x' = x + (f x - g^2 s) h + g sqrt(-h) z, coefficients at t_i.
  1 NFE per step.
- **pc** (Song et al. 2021, Algorithms 2-5): at each t_i, M Langevin corrector steps
  x <- x + e s + sqrt(2 e) z with e = 2 a_i (snr ||z|| / ||s||)^2, a_i = alpha_{i|i+1}^2
  (1 - beta_i on VP, 1 on VE); then one predictor step to t_{i+1}: ``"reverse-diffusion"``
  x' = (2 - alpha_{t|s}) x + sigma_{t|s}^2 s + sigma_{t|s} z (the reverse of the discretised
  forward step x_t = alpha_{t|s} x_s + sigma_{t|s} z) or ``"euler-maruyama"``. The norms are over
  all event axes, averaged over the batch as in Song et al.'s code (``snr_norm="batch"``: robust
  in low dimension, where a single example's ||s|| is often near 0) or per example
  (``"example"``: samples stay independent, the paper's per-sample Algorithm 5). Every corrector step
  and every predictor step costs one NFE: K (M + 1) NFE.
- **langevin** (annealed Langevin dynamics, NCSN; Song & Ermon 2019): L noise levels
  tau_1 > ... > tau_L = t_min (the grid's points after t_max; by default geometric in
  sigma / alpha, the ``"log-snr"`` grid, as NCSN's), T steps each,
  x <- x + a_i / 2 s(x, tau_i) + sqrt(a_i) z with a_i = eps sigma_i^2 / sigma_L^2. L T NFE.

Each adds one NFE for the final denoising step (``denoise_final``). Coefficients that do not depend
on x are precomputed, so a step is one denoiser call and a few axpys; the corrector's M steps are
an inner ``lax.scan``. Annealed Langevin is one scan over the L T steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax_models.diffusion.samplers.grids import (
    DenoiseFn,
    budget,
    coefficients,
    denoise,
    event_norm,
    finish,
    initial_state,
    sampling_grid,
    step_keys,
)
from genjax_models.errors import ConfigError, unknown_name

PREDICTORS: tuple[str, ...] = ("reverse-diffusion", "euler-maruyama")
SNR_NORMS: tuple[str, ...] = ("batch", "example")
# Default annealed-Langevin step relative to each level's variance: eps = sigma_L^2, so a_i =
# sigma_i^2 (tuned on 2-D mixtures with 1 step per level; NCSN's eps = 2e-5 at sigma_L = 0.01 with
# T = 100 is a relative step of 0.2).
_LANGEVIN_RELATIVE_STEP = 1.0


def euler_maruyama_cost(denoise_final: bool = True, **_) -> tuple[int, int]:
    """Return ``(per_step, fixed)`` NFE of :func:`euler_maruyama`."""
    return 1, int(denoise_final)


def pc_cost(corrector_steps: int = 1, denoise_final: bool = True, **_) -> tuple[int, int]:
    """Return ``(per_step, fixed)`` NFE of :func:`pc`: M corrector steps + 1 predictor step."""
    return 1 + int(corrector_steps), int(denoise_final)


def langevin_cost(steps_per_level: int = 1, denoise_final: bool = True, **_) -> tuple[int, int]:
    """Return ``(per_level, fixed)`` NFE of :func:`langevin`."""
    return int(steps_per_level), int(denoise_final)


def _linear_step(x, d, z, cx, c0, cz):
    """Return cx x + c0 d + cz z."""
    return cx * x + c0 * d + cz * z


def _em_coefficients(process, ts, dtype):
    """Per-step (c_x, c_0, c_z) of the reverse-SDE Euler-Maruyama step, score written via D."""
    t, h = ts[:-1], ts[1:] - ts[:-1]
    f, g2 = process.sde(t)
    f, g2 = f.astype(dtype), g2.astype(dtype)
    a, s = coefficients(process, t, dtype)
    # x + (f x - g2 (a D - x) / s^2) h + sqrt(g2 (-h)) z
    return 1.0 + f * h + g2 * h / s**2, -g2 * h * a / s**2, jnp.sqrt(jnp.maximum(-g2 * h, 0.0))


def _reverse_diffusion_coefficients(process, ts, dtype):
    """Per-step (c_x, c_0, c_z) of x' = (2 - a_ts) x + var_ts s + sqrt(var_ts) z."""
    a, s = coefficients(process, ts, dtype)
    a_ts = a[:-1] / a[1:]
    var_ts = jnp.maximum(s[:-1] ** 2 - a_ts**2 * s[1:] ** 2, 0.0)
    return 2.0 - a_ts - var_ts / s[:-1] ** 2, var_ts * a[:-1] / s[:-1] ** 2, jnp.sqrt(var_ts)


def euler_maruyama(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    grid: str = "default",
    rho: float = 7.0,
    denoise_final: bool = True,
    dtype=None,
) -> jax.Array:
    """Sample with Euler-Maruyama steps on the reverse-time SDE (module docstring).

    Args:
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key (prior draw and step noise).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: denoiser evaluations: K = nfe - denoise_final steps.
      x_init: optional x_T ``[B, *event]``.
      grid: time grid kind (``grids.GRIDS``); rho: the EDM grid's exponent.
      denoise_final: return x0_hat at ``t_min`` (one more NFE).
      dtype: dtype of the prior draw when ``x_init`` is not given.

    Returns:
      Samples ``[B, *event]``.
    """
    num_steps = budget("euler-maruyama", nfe, *euler_maruyama_cost(denoise_final))
    x, noise_key = initial_state(process, key, shape, x_init, dtype)
    ts = sampling_grid(process, num_steps, grid, rho).astype(x.dtype)
    keys = step_keys(noise_key, num_steps, "euler-maruyama")
    cx, c0, cz = _em_coefficients(process, ts, x.dtype)

    def body(x, inputs):
        t, cx, c0, cz, k = inputs
        z = jax.random.normal(k, x.shape, x.dtype)
        return _linear_step(x, denoise(denoise_fn, x, t), z, cx, c0, cz), None

    x, _ = jax.lax.scan(body, x, (ts[:-1], cx, c0, cz, keys))
    return finish(denoise_fn, x, ts[-1], denoise_final)


def pc(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    predictor: str = "reverse-diffusion",
    corrector_steps: int = 1,
    snr: float = 0.16,
    snr_norm: str = "batch",
    grid: str = "default",
    rho: float = 7.0,
    denoise_final: bool = True,
    dtype=None,
) -> jax.Array:
    """Sample with a predictor-corrector scheme: M Langevin steps, then one predictor step.

    Args:
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key (prior draw and step noise).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: denoiser evaluations: K = (nfe - denoise_final) // (M + 1) steps.
      x_init: optional x_T ``[B, *event]``.
      predictor: one of :data:`PREDICTORS`.
      corrector_steps: M >= 0 Langevin corrector steps at each grid time (M = 0: predictor only).
      snr: the corrector's signal-to-noise ratio r (Song et al. use 0.16 on VE, 0.01 on VP).
      snr_norm: ``"batch"`` (norms averaged over the batch) or ``"example"`` (per example).
      grid: time grid kind (``grids.GRIDS``); rho: the EDM grid's exponent.
      denoise_final: return x0_hat at ``t_min`` (one more NFE).
      dtype: dtype of the prior draw when ``x_init`` is not given.

    Returns:
      Samples ``[B, *event]``.
    """
    if predictor not in PREDICTORS:
        raise unknown_name("predictor", predictor, PREDICTORS)
    if snr_norm not in SNR_NORMS:
        raise unknown_name("snr_norm", snr_norm, SNR_NORMS)
    if isinstance(corrector_steps, bool) or not isinstance(corrector_steps, int) or corrector_steps < 0:
        raise ConfigError(f"corrector_steps must be an int >= 0, got {corrector_steps!r}")
    num_steps = budget("pc", nfe, *pc_cost(corrector_steps, denoise_final))
    x, noise_key = initial_state(process, key, shape, x_init, dtype)
    ts = sampling_grid(process, num_steps, grid, rho).astype(x.dtype)
    keys = step_keys(noise_key, num_steps, "pc")
    if predictor == "reverse-diffusion":
        cx, c0, cz = _reverse_diffusion_coefficients(process, ts, x.dtype)
    else:
        cx, c0, cz = _em_coefficients(process, ts, x.dtype)
    a, s = coefficients(process, ts, x.dtype)
    langevin_alpha = (a[:-1] / a[1:]) ** 2
    tiny = jnp.finfo(x.dtype).tiny

    def corrector(x, t, a_t, s_t, alpha, key):
        def one(x, k):
            z = jax.random.normal(k, x.shape, x.dtype)
            score = (a_t * denoise(denoise_fn, x, t) - x) / s_t**2
            z_norm, s_norm = event_norm(z), event_norm(score)
            if snr_norm == "batch":
                z_norm, s_norm = jnp.mean(z_norm), jnp.mean(s_norm)
            ratio = snr * z_norm / jnp.maximum(s_norm, tiny)
            e = 2.0 * alpha * ratio**2
            return x + e * score + jnp.sqrt(2.0 * e) * z, None

        x, _ = jax.lax.scan(one, x, jax.random.split(key, corrector_steps))
        return x

    def body(x, inputs):
        t, a_t, s_t, alpha, cx, c0, cz, k = inputs
        k_pred, k_corr = jax.random.split(k)
        if corrector_steps:
            x = corrector(x, t, a_t, s_t, alpha, k_corr)
        z = jax.random.normal(k_pred, x.shape, x.dtype)
        return _linear_step(x, denoise(denoise_fn, x, t), z, cx, c0, cz), None

    inputs = (ts[:-1], a[:-1], s[:-1], langevin_alpha, cx, c0, cz, keys)
    x, _ = jax.lax.scan(body, x, inputs)
    return finish(denoise_fn, x, ts[-1], denoise_final)


def langevin(
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    steps_per_level: int = 1,
    step_size: float | None = None,
    grid: str = "log-snr",
    rho: float = 7.0,
    denoise_final: bool = True,
    dtype=None,
) -> jax.Array:
    """Sample with annealed Langevin dynamics over the grid's noise levels (module docstring).

    Args:
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key (prior draw and step noise).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: denoiser evaluations: L = (nfe - denoise_final) // T levels.
      x_init: optional x_T ``[B, *event]``.
      steps_per_level: T >= 1.
      step_size: NCSN's eps, the step at the last level (a_i = eps sigma_i^2 / sigma_L^2);
        default ``sigma_L^2``, i.e. a_i = sigma_i^2 (a relative step of 1 at every level).
      grid: time grid kind for the levels (``grids.GRIDS``); rho: the EDM grid's exponent.
      denoise_final: return x0_hat at ``t_min`` (one more NFE).
      dtype: dtype of the prior draw when ``x_init`` is not given.

    Returns:
      Samples ``[B, *event]``.
    """
    if isinstance(steps_per_level, bool) or not isinstance(steps_per_level, int) or steps_per_level < 1:
        raise ConfigError(f"steps_per_level must be an int >= 1, got {steps_per_level!r}")
    num_levels = budget("langevin", nfe, *langevin_cost(steps_per_level, denoise_final))
    x, noise_key = initial_state(process, key, shape, x_init, dtype)
    levels = sampling_grid(process, num_levels, grid, rho).astype(x.dtype)[1:]
    a, s = coefficients(process, levels, x.dtype)
    if step_size is None:
        step = _LANGEVIN_RELATIVE_STEP * s**2
    else:
        step = jnp.asarray(step_size, x.dtype) * s**2 / s[-1] ** 2
    # x + step / 2 (a D - x) / s^2 + sqrt(step) z, repeated T times per level.
    cx = 1.0 - 0.5 * step / s**2
    c0 = 0.5 * step * a / s**2
    cz = jnp.sqrt(step)
    repeat = lambda v: jnp.repeat(v, steps_per_level)  # noqa: E731
    num_steps = num_levels * steps_per_level
    keys = step_keys(noise_key, num_steps, "langevin")

    def body(x, inputs):
        t, cx, c0, cz, k = inputs
        z = jax.random.normal(k, x.shape, x.dtype)
        return _linear_step(x, denoise(denoise_fn, x, t), z, cx, c0, cz), None

    x, _ = jax.lax.scan(body, x, (repeat(levels), repeat(cx), repeat(c0), repeat(cz), keys))
    return finish(denoise_fn, x, levels[-1], denoise_final)
