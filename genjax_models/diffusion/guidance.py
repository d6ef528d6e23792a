"""Guidance as denoiser wrappers: classifier-free and classifier guidance, for every sampler.

A guided model is another denoiser ``denoise_fn(x, t, cond) -> x0_hat``
(:mod:`genjax_models.diffusion.types`), so every sampler, the Picard solver and the likelihood
code use it unchanged; ``cond`` carries the labels (or any conditioning pytree).

**Classifier-free guidance** (Ho & Salimans, 2022), with guidance weight w >= 0:

    D_w(x, t, c) = D(x, t, c) + w (D(x, t, c) - D(x, t, null)).

w = 0 is the conditional model; the same line in eps or score form follows, since both are
affine in D at fixed (x, t). The other common convention writes a guidance *scale*
gamma = 1 + w: D_gamma = D(x, t, null) + gamma (D(x, t, c) - D(x, t, null)) (gamma = 1: the
conditional model, gamma = 0: the unconditional one). In score terms D_w follows
(1 + w) grad log p_t(x | c) - w grad log p_t(x), the score of p_t(x) p_t(c | x)^(1 + w) (up to
normalisation).

**Classifier guidance** (Dhariwal & Nichol, 2021; Song et al., 2021): with a noise-conditional
classifier log p(y | x_t, t) and scale s,

    score_s(x, t, y) = grad log p_t(x) + s grad_x log p(y | x_t = x, t),

and since score = (alpha_t D - x) / sigma_t^2, the denoiser moves by
(sigma_t^2 / alpha_t) s grad_x log p(y | x, t). With the exact classifier and s = 1 this is
exactly the conditional denoiser E[x0 | x_t, y] (Bayes: grad log p_t(x | y) = grad log p_t(x)
+ grad log p(y | x)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.diffusion.processes import ForwardProcess
from genjax_models.diffusion.types import DenoiseFn, call_denoiser
from genjax_models.errors import ConfigError

Batch = Float[Array, " b *event"]
# (x [B, *event], t [B], y) -> log p(y | x_t = x, t) per example, [B]
LogClassifier = Callable[[Batch, Float[Array, " b"], Any], Float[Array, " b"]]


def _check_scale(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}")


def classifier_free(denoise_fn: DenoiseFn, weight: float, null: Any = None) -> DenoiseFn:
    """Return D_w = D(x, t, c) + w (D(x, t, c) - D(x, t, null)) (module docstring).

    Args:
      denoise_fn: a conditional denoiser ``(x, t, cond) -> x0_hat`` that also accepts ``null``.
      weight: w >= 0 (static); 0 is the conditional model.
      null: the conditioning that means "unconditional" for ``denoise_fn`` (a network's null
        label, or ``None`` for a denoiser that takes ``cond=None`` as unconditional).

    Returns:
      The guided denoiser; called with ``cond=None`` it is the unconditional ``D(x, t, null)``.
    """
    _check_scale("classifier-free guidance weight", weight)

    def guided(x: Batch, t: Float[Array, " b"], cond: Any = None) -> Batch:
        unconditional = call_denoiser(denoise_fn, x, t, null)
        if cond is None:
            return unconditional
        conditional = denoise_fn(x, t, cond)
        return conditional + weight * (conditional - unconditional)

    return guided


def classifier_guidance(
    denoise_fn: DenoiseFn,
    log_classifier: LogClassifier,
    process: ForwardProcess,
    scale: float = 1.0,
) -> DenoiseFn:
    """Return the denoiser of score + s grad_x log p(y | x_t) (module docstring).

    Args:
      denoise_fn: the unconditional denoiser (called with ``cond=None``).
      log_classifier: ``(x [B, *event], t [B], y) -> [B]`` log p(y | x_t = x, t), differentiable
        in x (a noise-conditional classifier; ``y`` is the ``cond`` given to the sampler).
      process: the forward process (alpha_t, sigma_t).
      scale: s >= 0 (static); 1 with the exact classifier gives the exact conditional model.

    Returns:
      The guided denoiser ``D + (sigma_t^2 / alpha_t) s grad_x log p(y | x, t)``; called with
      ``cond=None`` it is ``denoise_fn`` itself.
    """
    _check_scale("classifier guidance scale", scale)

    def guided(x: Batch, t: Float[Array, " b"], cond: Any = None) -> Batch:
        unconditional = call_denoiser(denoise_fn, x, t)
        if cond is None:
            return unconditional
        grad = jax.grad(lambda v: jnp.sum(log_classifier(v, t, cond)))(x)
        t_batch = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
        a, s = process.alpha(t_batch).astype(x.dtype), process.sigma(t_batch).astype(x.dtype)
        shift = (s**2 / a).reshape((-1,) + (1,) * (x.ndim - 1))
        return unconditional + scale * shift * grad

    return guided
