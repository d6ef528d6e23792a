"""Exact conversions between the four prediction targets, EDM preconditioning, and the denoiser.

For a forward process x_t = a x0 + s eps (a = alpha(t), s = sigma(t), see ``processes.py``) a
network may predict any of four targets; given x_t each one determines the other three:

==========  ===========================  ============================  ============================
kind        prediction                   x0 from it                    eps from it
==========  ===========================  ============================  ============================
``eps``     eps                          (x_t - s eps) / a             eps
``x0``      x0 (the denoiser)            x0                            (x_t - a x0) / s
``v``       v = a eps - s x0             (a x_t - s v) / (a^2 + s^2)   (s x_t + a v) / (a^2 + s^2)
``score``   grad log p_t = -eps / s      (x_t + s^2 score) / a         -s score
==========  ===========================  ============================  ============================

The v formulas hold for any process (a^2 + s^2 = 1 only for VP/DDPM). Every conversion goes
through the pair (x0, eps) and reads off the component it needs, so eps <-> score never divides
by a. At the posterior means these are the exact relations between E[x0 | x_t], E[eps | x_t], E[v |
x_t] and the score (Tweedie), which the Gaussian-mixture oracle checks.

EDM preconditioning (Karras et al. 2022, Table 1), for noise level sigma and data std sigma_d:

    c_skip = sigma_d^2 / (sigma^2 + sigma_d^2)    c_out = sigma sigma_d / sqrt(sigma^2 + sigma_d^2)
    c_in   = 1 / sqrt(sigma^2 + sigma_d^2)        c_noise = log(sigma) / 4

    D(x, sigma) = c_skip x + c_out F(c_in x, c_noise),

chosen so the network's input and its regression target (x0 - c_skip x) / c_out both have unit
variance when the data have std sigma_d. A process with a != 1 is the same thing after rescaling:
x_t / a = x0 + (s / a) eps is an a = 1 process at noise level sigma = s / a, so here the
preconditioning is applied to x_t / a with sigma = s / a (for VE and EDM, a = 1 and nothing
changes).

The **denoiser** ``denoise_fn(x [B, *event], t [B] or scalar, cond=None) -> x0_hat [B, *event]``
(:class:`~genjax_models.diffusion.types.DenoiseFn`) is the interface between networks, samplers
and the likelihood; :func:`make_denoiser` builds it from a raw network
``apply_fn(x_in, noise_feature [B]) -> out`` (``apply_fn(x_in, noise_feature, cond)`` when a
conditioning is given; see :func:`noise_feature` for what the network is told about the noise
level).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.diffusion.processes import ForwardProcess
from genjax_models.diffusion.types import DenoiseFn, call_denoiser
from genjax_models.errors import ConfigError, ShapeError, unknown_name

PREDICTIONS: tuple[str, ...] = ("eps", "x0", "v", "score")
NOISE_FEATURES: tuple[str, ...] = ("time", "log-sigma")

Batch = Float[Array, " b *event"]
Times = Float[Array, "*b"]
# (x_in [B, *event], noise_feature [B]) -> out [B, *event]; (..., cond) with a conditioning.
ApplyFn = Callable[..., Batch]


def _check_kind(kind: str) -> None:
    if kind not in PREDICTIONS:
        raise unknown_name("prediction", kind, PREDICTIONS)


def _check_batch(x: jax.Array, t: jax.Array) -> jax.Array:
    """Validate ``x [B, *event]`` and ``t`` (scalar or ``[B]``); return t as an array."""
    if x.ndim < 2:
        raise ShapeError(f"expected a batch [B, *event], got shape {tuple(x.shape)}")
    t = jnp.asarray(t)
    if t.ndim != 0 and t.shape != x.shape[:1]:
        raise ShapeError(
            f"expected t to be a scalar or of shape [{x.shape[0]}], got {tuple(t.shape)}"
        )
    return t


def broadcast_alpha_sigma(
    process: ForwardProcess, t: Times, like: Batch
) -> tuple[Array, Array]:
    """Return alpha(t) and sigma(t) shaped to broadcast against ``like [B, *event]``.

    Args:
      process: a forward process (``processes.PROCESSES``).
      t: scalar or ``[B]`` times.
      like: the ``[B, *event]`` array the coefficients multiply.

    Returns:
      ``(alpha, sigma)`` in ``like.dtype``, scalars or ``[B, 1, ..., 1]``.
    """
    t = _check_batch(like, t)
    a = jnp.asarray(process.alpha(t)).astype(like.dtype)
    s = jnp.asarray(process.sigma(t)).astype(like.dtype)
    if t.ndim == 1:
        shape = t.shape + (1,) * (like.ndim - 1)
        a, s = a.reshape(shape), s.reshape(shape)
    return a, s


def _to_pair(kind, pred, x_t, a, s):
    """(x0, eps) determined by a prediction of ``kind`` at x_t (module table)."""
    if kind == "eps":
        return (x_t - s * pred) / a, pred
    if kind == "x0":
        return pred, (x_t - a * pred) / s
    if kind == "v":
        norm = a**2 + s**2
        return (a * x_t - s * pred) / norm, (s * x_t + a * pred) / norm
    eps = -s * pred  # score
    return (x_t + s**2 * pred) / a, eps


def _from_pair(kind, x0, eps, a, s):
    """The prediction of ``kind`` given the pair (x0, eps)."""
    if kind == "eps":
        return eps
    if kind == "x0":
        return x0
    if kind == "v":
        return a * eps - s * x0
    return -eps / s


def convert(
    pred: Batch, x_t: Batch, process: ForwardProcess, t: Times, source: str, target: str
) -> Batch:
    """Convert a prediction of kind ``source`` at ``(x_t, t)`` into one of kind ``target``.

    Args:
      pred: ``[B, *event]`` prediction of kind ``source`` (one of :data:`PREDICTIONS`).
      x_t: ``[B, *event]`` noisy input.
      process: the forward process.
      t: scalar or ``[B]`` times.
      source: the kind of ``pred``.
      target: the kind wanted.

    Returns:
      ``[B, *event]`` prediction of kind ``target`` (exact algebra, module table).
    """
    _check_kind(source)
    _check_kind(target)
    if pred.shape != x_t.shape:
        raise ShapeError(f"prediction shape {tuple(pred.shape)} != x_t shape {tuple(x_t.shape)}")
    if source == target:
        return pred
    a, s = broadcast_alpha_sigma(process, t, x_t)
    x0, eps = _to_pair(source, pred, x_t, a, s)
    return _from_pair(target, x0, eps, a, s)


def to_denoised(kind: str, pred: Batch, x_t: Batch, process: ForwardProcess, t: Times) -> Batch:
    """Return the x0 estimate implied by a prediction of ``kind`` (see :func:`convert`)."""
    return convert(pred, x_t, process, t, kind, "x0")


def from_denoised(kind: str, x0: Batch, x_t: Batch, process: ForwardProcess, t: Times) -> Batch:
    """Return the prediction of ``kind`` implied by the x0 estimate (see :func:`convert`)."""
    return convert(x0, x_t, process, t, "x0", kind)


def regression_target(
    kind: str, x0: Batch, eps: Batch, process: ForwardProcess, t: Times
) -> Batch:
    """Return the training target of ``kind`` for x_t = a x0 + s eps.

    eps -> eps, x0 -> x0, v -> a eps - s x0, score -> grad log q(x_t | x0) = -eps / s. A
    prediction of ``kind`` regressed on it converges to the corresponding posterior mean.
    """
    _check_kind(kind)
    a, s = broadcast_alpha_sigma(process, t, x0)
    return _from_pair(kind, x0, eps, a, s)


def edm_preconditioning(
    sigma: Float[Array, "*s"], sigma_data: float = 0.5
) -> tuple[Float[Array, "*s"], Float[Array, "*s"], Float[Array, "*s"], Float[Array, "*s"]]:
    """Return EDM's ``(c_skip, c_out, c_in, c_noise)`` for noise level ``sigma`` (module docstring).

    Args:
      sigma: noise level(s) of an a = 1 process, any shape.
      sigma_data: the data standard deviation sigma_d.

    Returns:
      Four arrays shaped like ``sigma``.
    """
    sigma = jnp.asarray(sigma)
    total = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / total
    c_out = sigma * sigma_data * jax.lax.rsqrt(total)
    c_in = jax.lax.rsqrt(total)
    c_noise = 0.25 * jnp.log(sigma)
    return c_skip, c_out, c_in, c_noise


def noise_feature(
    process: ForwardProcess, t: Times, kind: str = "log-sigma", batch: int | None = None
) -> Times:
    """Return the noise-level input the network gets at time ``t``.

    ``"time"`` is t itself (in [0, 1] for DDPM / VP / sub-VP / VE; a time embedding scales it);
    ``"log-sigma"`` is EDM's c_noise = log(sigma_t / alpha_t) / 4 = -log_snr(t) / 8, the same for
    every process (about [-1.6, 1.3] over the default processes' time ranges).

    Args:
      process: the forward process.
      t: scalar or ``[B]`` times.
      kind: one of :data:`NOISE_FEATURES`.
      batch: B, to broadcast a scalar ``t`` to ``[B]``.

    Returns:
      ``[B]`` (or the shape of ``t`` when ``batch`` is None).
    """
    if kind not in NOISE_FEATURES:
        raise unknown_name("noise feature", kind, NOISE_FEATURES)
    t = jnp.asarray(t)
    feat = t if kind == "time" else -0.125 * process.log_snr(t)
    return feat if batch is None else jnp.broadcast_to(feat, (batch,))


def make_denoiser(
    apply_fn: ApplyFn,
    process: ForwardProcess,
    prediction: str = "x0",
    preconditioning: bool = False,
    sigma_data: float | None = None,
    feature: str = "auto",
) -> DenoiseFn:
    """Turn a raw network into the denoiser ``denoise_fn(x, t, cond=None)`` ~ E[x0 | x_t = x].

    Without preconditioning the network sees x_t as it is, ``out = apply_fn(x_t, c)``, and ``out``
    is read as a prediction of kind ``prediction`` and converted to x0. (For VE / EDM, whose x_t
    reaches std sigma_max, use preconditioning.) With preconditioning, sigma = s_t / a_t and
    ``D = c_skip x_t / a_t + c_out apply_fn(c_in x_t / a_t, c_noise)`` (module docstring); the
    network's output is EDM's F, so ``prediction`` must be ``"x0"``.

    The noise feature c (``[B]``) is, with ``feature="auto"``, EDM's c_noise = log(sigma / a) / 4
    when preconditioning, and ``process.noise_feature_kind`` otherwise (the time t for DDPM / VP /
    sub-VP, c_noise for VE / EDM); pass ``"time"`` or ``"log-sigma"`` to choose
    (:func:`noise_feature`). A ``cond`` given to the denoiser is passed on as
    ``apply_fn(x_in, c, cond)``; with ``cond=None`` the network is called ``apply_fn(x_in, c)``.

    Args:
      apply_fn: ``(x_in [B, *event], noise_feature [B]) -> [B, *event]``, e.g.
        ``lambda x, c: net.apply(params, x, c)``.
      process: the forward process.
      prediction: what the network predicts without preconditioning (:data:`PREDICTIONS`).
      preconditioning: use EDM's c_skip / c_out / c_in / c_noise.
      sigma_data: sigma_d; defaults to ``process.sigma_data``.
      feature: ``"auto"`` or one of :data:`NOISE_FEATURES`.

    Returns:
      ``denoise_fn(x [B, *event], t scalar or [B], cond=None) -> [B, *event]``.
    """
    _check_kind(prediction)
    if preconditioning and prediction != "x0":
        raise ConfigError(
            f"with preconditioning the network predicts EDM's F (an x0-type target); "
            f"use prediction='x0', got {prediction!r}"
        )
    if feature == "auto":
        plain_time = not preconditioning and process.noise_feature_kind == "time"
        feature = "time" if plain_time else "log-sigma"
    elif feature not in NOISE_FEATURES:
        raise unknown_name("noise feature", feature, (*NOISE_FEATURES, "auto"))
    sd = float(process.sigma_data if sigma_data is None else sigma_data)

    def network(x_in: Batch, c: Array, cond: Any) -> Batch:
        return apply_fn(x_in, c) if cond is None else apply_fn(x_in, c, cond)

    def denoise_fn(x: Batch, t: Times, cond: Any = None) -> Batch:
        t = _check_batch(x, t)
        c = noise_feature(process, t, feature, batch=x.shape[0]).astype(x.dtype)
        if not preconditioning:
            return to_denoised(prediction, network(x, c, cond), x, process, t)
        a, s = broadcast_alpha_sigma(process, t, x)
        c_skip, c_out, c_in, _ = edm_preconditioning(s / a, sd)
        x_scaled = x / a
        return c_skip * x_scaled + c_out * network(c_in * x_scaled, c, cond)

    return denoise_fn


def make_predictor(denoise_fn: DenoiseFn, process: ForwardProcess, kind: str) -> DenoiseFn:
    """Return ``pred_fn(x, t, cond=None)``: the denoiser's implied prediction of ``kind``."""
    _check_kind(kind)

    def pred_fn(x: Batch, t: Times, cond: Any = None) -> Batch:
        return from_denoised(kind, call_denoiser(denoise_fn, x, t, cond), x, process, t)

    return pred_fn
