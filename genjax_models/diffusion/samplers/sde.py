"""Stochastic samplers: reverse-SDE Euler-Maruyama, predictor-corrector and annealed Langevin.

With the denoiser D(x, t) ~ E[x0 | x_t = x], the score is s(x, t) = (alpha_t D - x) / sigma_t^2, and
the forward SDE dx = f x dt + g dW (``process.sde``) has the reverse-time SDE
dx = [f x - g^2 s] dt + g dW_bar (Anderson 1982). On the grid t_0 = t_max > ... > t_K = t_min
(``driver.py``), with h = t_{i+1} - t_i < 0 and z ~ N(0, I):

- **euler-maruyama**: x' = x + (f x - g^2 s) h + g sqrt(-h) z, coefficients at t_i.
  1 NFE per step.
- **pc** (Song et al. 2021, Algorithms 2-5): at each t_i, M Langevin corrector steps
  x <- x + e s + sqrt(2 e) z with e = 2 a_i (snr ||z|| / ||s||)^2, a_i = alpha_{i|i+1}^2
  (1 - beta_i on VP, 1 on VE); then one predictor step to t_{i+1}: ``"reverse-diffusion"``
  x' = (2 - alpha_{t|s}) x + sigma_{t|s}^2 s + sigma_{t|s} z (the reverse of the discretised
  forward step x_t = alpha_{t|s} x_s + sigma_{t|s} z) or ``"euler-maruyama"``. The norms are over
  all event axes, averaged over the batch as in Song et al.'s code (``snr_norm="batch"``: robust
  in low dimension, where a single example's ||s|| is often near 0) or per example
  (``"example"``: samples stay independent, the paper's per-sample Algorithm 5). Every corrector
  step and every predictor step costs one NFE: K (M + 1) NFE.
- **langevin** (annealed Langevin dynamics, NCSN; Song & Ermon 2019): L noise levels
  tau_1 > ... > tau_L = t_min (the grid's points after t_max; by default geometric in
  sigma / alpha, the ``"log-snr"`` grid, as NCSN's), T steps each,
  x <- x + a_i / 2 s(x, tau_i) + sqrt(a_i) z with a_i = eps sigma_i^2 / sigma_L^2. L T NFE.

Each adds one NFE for the final denoising step (``denoise_final``). Coefficients that do not depend
on x are precomputed, so a step is one denoiser call and a few axpys; the corrector's M steps are
an inner ``lax.scan``. Annealed Langevin is one scan over the L T steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from genjax_models.diffusion.samplers.driver import (
    Sampler,
    alpha_sigma,
    event_norm,
    one_per_step_cost,
    validate_choice,
    validate_count,
)

PREDICTORS: tuple[str, ...] = ("reverse-diffusion", "euler-maruyama")
SNR_NORMS: tuple[str, ...] = ("batch", "example")
# Default annealed-Langevin step relative to each level's variance: eps = sigma_L^2, so a_i =
# sigma_i^2 (tuned on 2-D mixtures with 1 step per level; NCSN's eps = 2e-5 at sigma_L = 0.01 with
# T = 100 is a relative step of 0.2).
_LANGEVIN_RELATIVE_STEP = 1.0


def _always(**_: Any) -> bool:
    return True


def _linear_step(x, d, z, cx, c0, cz):
    """Return cx x + c0 d + cz z."""
    return cx * x + c0 * d + cz * z


def _linear_noisy_step(denoise, process, x, inputs, key, **_: Any):
    """x' = c_x x + c_0 D(x, t) + c_z z: one step of Euler-Maruyama or annealed Langevin."""
    del process
    t, cx, c0, cz = inputs
    z = jax.random.normal(key, x.shape, x.dtype)
    return _linear_step(x, denoise(x, t), z, cx, c0, cz)


def _em_coefficients(process, ts, dtype):
    """Per-step (c_x, c_0, c_z) of the reverse-SDE Euler-Maruyama step, score written via D."""
    t, h = ts[:-1], ts[1:] - ts[:-1]
    f, g2 = process.sde(t)
    f, g2 = f.astype(dtype), g2.astype(dtype)
    a, s = alpha_sigma(process, t, dtype)
    # x + (f x - g2 (a D - x) / s^2) h + sqrt(g2 (-h)) z
    return 1.0 + f * h + g2 * h / s**2, -g2 * h * a / s**2, jnp.sqrt(jnp.maximum(-g2 * h, 0.0))


def _reverse_diffusion_coefficients(process, ts, dtype):
    """Per-step (c_x, c_0, c_z) of x' = (2 - a_ts) x + var_ts s + sqrt(var_ts) z."""
    a, s = alpha_sigma(process, ts, dtype)
    a_ts = a[:-1] / a[1:]
    var_ts = jnp.maximum(s[:-1] ** 2 - a_ts**2 * s[1:] ** 2, 0.0)
    return 2.0 - a_ts - var_ts / s[:-1] ** 2, var_ts * a[:-1] / s[:-1] ** 2, jnp.sqrt(var_ts)


EULER_MARUYAMA = Sampler(
    name="euler-maruyama",
    options={},
    cost=one_per_step_cost,
    coefficients=lambda process, ts, dtype, **_: (
        (ts[:-1], *_em_coefficients(process, ts, dtype)), None
    ),
    step=_linear_noisy_step,
    stochastic=_always,
)


def _pc_cost(corrector_steps: int = 1, denoise_final: bool = True, **_: Any) -> tuple[int, int]:
    """M corrector steps + 1 predictor step per interval, plus the final denoising step."""
    return 1 + int(corrector_steps), int(denoise_final)


def _pc_validate(*, predictor: str, snr_norm: str, corrector_steps: Any, **_: Any) -> None:
    validate_choice("predictor", predictor, PREDICTORS)
    validate_choice("snr_norm", snr_norm, SNR_NORMS)
    validate_count("corrector_steps", corrector_steps, 0)


def _pc_coefficients(process, ts, dtype, *, predictor: str, **_: Any):
    """Per step: (t, alpha_t, sigma_t, the corrector's a_i, predictor c_x, c_0, c_z)."""
    if predictor == "reverse-diffusion":
        cx, c0, cz = _reverse_diffusion_coefficients(process, ts, dtype)
    else:
        cx, c0, cz = _em_coefficients(process, ts, dtype)
    a, s = alpha_sigma(process, ts, dtype)
    langevin_alpha = (a[:-1] / a[1:]) ** 2
    return (ts[:-1], a[:-1], s[:-1], langevin_alpha, cx, c0, cz), None


def _pc_step(denoise, process, x, inputs, key, *, corrector_steps, snr, snr_norm, **_: Any):
    """M Langevin corrector steps at t, then one predictor step to the next grid time."""
    del process
    t, a_t, s_t, alpha, cx, c0, cz = inputs
    k_pred, k_corr = jax.random.split(key)
    tiny = jnp.finfo(x.dtype).tiny

    def corrector_step(x, k):
        z = jax.random.normal(k, x.shape, x.dtype)
        score = (a_t * denoise(x, t) - x) / s_t**2
        z_norm, s_norm = event_norm(z), event_norm(score)
        if snr_norm == "batch":
            z_norm, s_norm = jnp.mean(z_norm), jnp.mean(s_norm)
        ratio = snr * z_norm / jnp.maximum(s_norm, tiny)
        e = 2.0 * alpha * ratio**2
        return x + e * score + jnp.sqrt(2.0 * e) * z, None

    if corrector_steps:
        x, _ = jax.lax.scan(corrector_step, x, jax.random.split(k_corr, corrector_steps))
    z = jax.random.normal(k_pred, x.shape, x.dtype)
    return _linear_step(x, denoise(x, t), z, cx, c0, cz)


PC = Sampler(
    name="pc",
    # predictor: one of PREDICTORS; corrector_steps: M >= 0 Langevin steps per grid time;
    # snr: the corrector's signal-to-noise ratio r (Song et al. use 0.16 on VE, 0.01 on VP);
    # snr_norm: "batch" (norms averaged over the batch) or "example" (per example).
    options={
        "predictor": "reverse-diffusion",
        "corrector_steps": 1,
        "snr": 0.16,
        "snr_norm": "batch",
    },
    cost=_pc_cost,
    coefficients=_pc_coefficients,
    step=_pc_step,
    stochastic=_always,
    validate=_pc_validate,
)


def _langevin_cost(steps_per_level: int = 1, denoise_final: bool = True, **_) -> tuple[int, int]:
    """T steps per noise level, plus the final denoising step."""
    return int(steps_per_level), int(denoise_final)


def _langevin_coefficients(process, ts, dtype, *, steps_per_level, step_size, **_: Any):
    """Per step (L T of them): (tau_i, c_x, c_0, c_z), each level's values repeated T times."""
    levels = ts[1:]
    a, s = alpha_sigma(process, levels, dtype)
    if step_size is None:
        step = _LANGEVIN_RELATIVE_STEP * s**2
    else:
        step = jnp.asarray(step_size, dtype) * s**2 / s[-1] ** 2
    # x + step / 2 (a D - x) / s^2 + sqrt(step) z, repeated T times per level.
    cx = 1.0 - 0.5 * step / s**2
    c0 = 0.5 * step * a / s**2
    cz = jnp.sqrt(step)
    per_level = (levels, cx, c0, cz)
    return tuple(jnp.repeat(v, steps_per_level) for v in per_level), None


LANGEVIN = Sampler(
    name="langevin",
    # steps_per_level: T >= 1; step_size: NCSN's eps, the step at the last level (a_i = eps
    # sigma_i^2 / sigma_L^2); None: sigma_L^2, i.e. a relative step of 1 at every level.
    options={"steps_per_level": 1, "step_size": None},
    cost=_langevin_cost,
    coefficients=_langevin_coefficients,
    step=_linear_noisy_step,
    stochastic=_always,
    default_grid=lambda process: "log-snr",
    # every Langevin step starts and ends at its level (levels ts[1:], each T times)
    step_times=lambda ts, steps_per_level, **_: (
        jnp.repeat(ts[1:], steps_per_level), jnp.repeat(ts[1:], steps_per_level)
    ),
    validate=lambda steps_per_level, **_: validate_count("steps_per_level", steps_per_level, 1),
)
