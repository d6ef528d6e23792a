"""The denoiser interface shared by samplers, losses, likelihoods and guidance.

A **denoiser** ``denoise_fn(x [B, *event], t [B], cond=None) -> x0_hat [B, *event]`` returns the
estimate of E[x0 | x_t = x] (optionally given a conditioning pytree ``cond``: labels, a context
embedding, an observed part of x, ...). Score and noise follow from it and the forward process:
score = (alpha_t x0_hat - x) / sigma_t^2 and eps_hat = (x - alpha_t x0_hat) / sigma_t.

Everything in :mod:`genjax_models.diffusion` calls a denoiser through :func:`call_denoiser`: with
``cond=None`` it calls ``denoise_fn(x, t)``, so plain two-argument functions are denoisers too;
otherwise ``denoise_fn(x, t, cond)``. Guidance is a wrapper ``denoise_fn -> denoise_fn`` (e.g.
classifier-free: D_w(x, t, c) = D(x, t, None) + w (D(x, t, c) - D(x, t, None))): no sampler, loss
or likelihood needs to know about it.
"""

from __future__ import annotations

from typing import Any, Protocol

from jaxtyping import Array, Float


class DenoiseFn(Protocol):
    """``(x [B, *event], t [B], cond=None) -> x0_hat [B, *event]``, the estimate of E[x0 | x_t]."""

    def __call__(
        self, x: Float[Array, " b *event"], t: Float[Array, " b"], cond: Any = None
    ) -> Float[Array, " b *event"]: ...


def call_denoiser(
    denoise_fn: DenoiseFn, x: Float[Array, " b *event"], t: Float[Array, " b"], cond: Any = None
) -> Float[Array, " b *event"]:
    """Call ``denoise_fn(x, t)`` when ``cond`` is None, else ``denoise_fn(x, t, cond)``.

    Args:
      denoise_fn: the denoiser (two-argument functions are accepted when ``cond`` is None).
      x: ``[B, *event]`` noisy points.
      t: ``[B]`` (or scalar) times.
      cond: the conditioning pytree, or None.

    Returns:
      The denoiser's output, ``[B, *event]``.
    """
    return denoise_fn(x, t) if cond is None else denoise_fn(x, t, cond)
