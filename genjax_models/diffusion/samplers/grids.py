"""Shared pieces of every sampler: time grids, the NFE budget, the prior draw and denoiser calls.

A sampler integrates from ``t_max`` down to ``t_min`` over a decreasing grid of K + 1 times
t_0 = t_max > t_1 > ... > t_K = t_min (``process.time_grid``). Its public budget is the number of
denoiser evaluations (NFE); a sampler that spends ``per_step`` evaluations per grid interval and
``fixed`` more once (the optional final denoising step) buys

    K = floor((nfe - fixed) / per_step)        intervals,  using  K * per_step + fixed <= nfe,

and a budget too small for one interval raises :class:`~genjax_models.errors.ConfigError`.

Conventions shared by every sampler:

- ``denoise_fn(x [B, *event], t [B]) -> x0_hat [B, *event]`` (the estimate of E[x0 | x_t]); it is
  called with ``t`` broadcast to ``[B]``. Score and noise follow from it and the process:
  score = (alpha_t x0_hat - x) / sigma_t^2 and eps_hat = (x - alpha_t x0_hat) / sigma_t.
- Randomness: ``prior_key, noise_key = jax.random.split(key)``; x_T = ``process.prior_sample(
  prior_key, shape)`` unless ``x_init`` is given, and step i draws its noise from
  ``jax.random.split(noise_key, K)[i]`` (split further when a step needs several draws). Samplers
  with the same grid therefore share their noise, so e.g. DDIM(eta=1) and ancestral sampling agree.
- On the ``ddpm`` process the grid is snapped to distinct step times n / N, so a network trained on
  the discrete steps is only queried there (K <= N - 1; with K = N - 1 every step is used once).
  Intermediate stages of RK4 on ``ddpm`` fall between step times.
- The optional final denoising step (``denoise_final=True``, one NFE) returns
  x0_hat(x_{t_min}, t_min) instead of x_{t_min}. For Ho et al.'s DDPM sampler it is the last step
  (t = 1/N -> 0, no noise); for EDM's Heun sampler it is the closing Euler step to sigma = 0.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError, unknown_name

DenoiseFn = Callable[[jax.Array, jax.Array], jax.Array]
GRIDS: tuple[str, ...] = ("default", "uniform", "log-snr", "edm")


def sampling_grid(process, num_steps: int, grid: str = "default", rho: float = 7.0) -> jax.Array:
    """Return the ``[num_steps + 1]`` decreasing sampling times from ``t_max`` to ``t_min``.

    Args:
      process: a forward process (``genjax_models.diffusion.processes``).
      num_steps: K, the number of intervals (>= 1).
      grid: one of :data:`GRIDS` (see ``process.time_grid``).
      rho: the exponent of the ``"edm"`` grid.

    Returns:
      ``[K + 1]`` times in the default float dtype; on the ``ddpm`` process rounded to distinct
      step times k/N (so K <= N - 1; a coarse grid strides the N steps).
    """
    if grid not in GRIDS:
        raise unknown_name("time grid", grid, GRIDS)
    ts = process.time_grid(int(num_steps), kind=grid, rho=rho)
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    if getattr(process, "name", None) == "ddpm":
        ts = _snap_to_steps(ts, process.num_steps)
    return ts


def _snap_to_steps(ts: jax.Array, n: int) -> jax.Array:
    """Round a decreasing grid from 1 to 1/n to step times k/n, keeping it strictly decreasing.

    With steps k_i = round(n t_i), first k_i >= K + 1 - i (room for the points still to come),
    then k_i <- min(k_i, k_{i-1} - 1), i.e. k = cummin(k + i) - i.
    """
    num_steps = ts.shape[0] - 1
    if num_steps > n - 1:
        raise ConfigError(
            f"the ddpm process has {n} steps, so a sampling grid has at most {n - 1} intervals; "
            f"got {num_steps} (lower nfe)"
        )
    idx = jnp.arange(num_steps + 1, dtype=ts.dtype)
    steps = jnp.maximum(jnp.floor(ts * n + 0.5), num_steps + 1 - idx)
    return (jax.lax.cummin(steps + idx) - idx) / n


def budget(name: str, nfe: int, per_step: int, fixed: int, minimum: int = 1) -> int:
    """Return how many grid intervals ``nfe`` denoiser evaluations buy (module docstring).

    Args:
      name: the sampler's name, for the error message.
      nfe: the budget (a positive Python int).
      per_step: evaluations per interval.
      fixed: evaluations spent once (the final denoising step).
      minimum: the fewest intervals the method accepts.

    Returns:
      K = (nfe - fixed) // per_step.
    """
    if isinstance(nfe, bool) or not isinstance(nfe, numbers.Integral) or int(nfe) < 1:
        raise ConfigError(f"nfe must be a positive int, got {nfe!r}")
    steps = (int(nfe) - fixed) // per_step
    if steps < minimum:
        need = minimum * per_step + fixed
        extra = f" + {fixed} for the final denoising step" if fixed else ""
        raise ConfigError(
            f"sampler {name!r} needs nfe >= {need} ({per_step} per step x {minimum} step(s){extra}), "
            f"got {nfe}"
        )
    return steps


def initial_state(
    process, key: jax.Array | None, shape: tuple[int, ...] | None, x_init: jax.Array | None, dtype
) -> tuple[jax.Array, jax.Array | None]:
    """Return ``(x_T, noise_key)``: x_T from ``x_init`` or the prior, and the key for step noise.

    Args:
      process: the forward process.
      key: a PRNG key (may be ``None`` only for a deterministic sampler given ``x_init``).
      shape: ``(B, *event)``; may be ``None`` when ``x_init`` is given.
      x_init: optional ``[B, *event]`` starting point at ``t_max``.
      dtype: dtype of the prior draw (default: the default float dtype).
    """
    if key is not None:
        prior_key, noise_key = jax.random.split(key)
    else:
        prior_key = noise_key = None
    if x_init is not None:
        x = jnp.asarray(x_init)
        if shape is not None and tuple(shape) != tuple(x.shape):
            raise ShapeError(f"x_init has shape {tuple(x.shape)} but shape={tuple(shape)} was asked for")
        if x.ndim < 1:
            raise ShapeError(f"x_init must be [B, *event], got shape {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        return x, noise_key
    if shape is None:
        raise ConfigError("give either shape=(B, *event) or x_init")
    if len(tuple(shape)) < 1:
        raise ShapeError(f"shape must be (B, *event), got {tuple(shape)}")
    if key is None:
        raise ConfigError("a PRNG key is needed to draw x_T from the prior (or pass x_init)")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return process.prior_sample(prior_key, tuple(shape), dtype), noise_key


def step_keys(noise_key: jax.Array | None, num_steps: int, name: str) -> jax.Array:
    """Return ``[num_steps]`` per-step keys split from ``noise_key`` (a stochastic sampler's)."""
    if noise_key is None:
        raise ConfigError(f"sampler {name!r} is stochastic: pass a PRNG key")
    return jax.random.split(noise_key, num_steps)


def denoise(denoise_fn: DenoiseFn, x: jax.Array, t: jax.Array) -> jax.Array:
    """Call ``denoise_fn(x, t)`` with a scalar ``t`` broadcast to ``[B]``; check the output shape."""
    t_batch = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
    out = denoise_fn(x, t_batch)
    if tuple(out.shape) != tuple(x.shape):
        raise ShapeError(f"denoise_fn must return the input's shape {tuple(x.shape)}, got {tuple(out.shape)}")
    return out.astype(x.dtype)


def coefficients(process, ts: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """Return ``(alpha(ts), sigma(ts))`` cast to ``dtype``."""
    return process.alpha(ts).astype(dtype), process.sigma(ts).astype(dtype)


def finish(
    denoise_fn: DenoiseFn, x: jax.Array, t_min: jax.Array, denoise_final: bool
) -> jax.Array:
    """Return x0_hat(x, t_min) (one NFE) if ``denoise_final`` else ``x``."""
    return denoise(denoise_fn, x, t_min) if denoise_final else x


def event_norm(v: jax.Array) -> jax.Array:
    """Return the per-example Euclidean norm over all event axes, shaped ``[B, 1, ..., 1]``."""
    axes = tuple(range(1, v.ndim))
    return jnp.sqrt(jnp.sum(v * v, axis=axes, keepdims=True))
