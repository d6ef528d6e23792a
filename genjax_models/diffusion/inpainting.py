"""Inpainting: sampling the missing part of x given the observed part, through every sampler.

Given x with a boolean mask m of observed entries (True = seen), the wanted draw is from
p(x_missing | x_observed). A diffusion model has no tractable conditional, so the samplers
condition at the level of the sampling path instead (Song et al. 2021, "replacement"; Lugmayr
et al. 2022, RePaint):

**Replacement.** After every step of the sampler (from t to s < t), the observed entries of the
state are overwritten by the observation noised to the new level,

    x_s <- m * (alpha_s x_obs + sigma_s z) + (1 - m) * x_s,        z ~ N(0, I) fresh,

starting from x_T with the same replacement at t_max; the final sample's observed entries are
x_obs exactly. The missing entries then follow the model's reverse dynamics given a *noised*
observation that is independent of them, which is why replacement is biased: the missing
part is pulled towards p(x_missing) rather than p(x_missing | x_obs) when the observed part
carries the information only at low noise. The bias is measured, not hidden
(``tests/diffusion/test_inpainting.py`` on a Gaussian-mixture oracle).

**RePaint resampling** (``resample`` = U >= 2, jump length 1): each step is repeated U times;
between repeats the harmonised x_s is sent back to level t by the forward transition

    x_t = (alpha_t / alpha_s) x_s + sqrt(sigma_t^2 - (alpha_t / alpha_s)^2 sigma_s^2) z,

which gives the network U chances to make the missing part agree with the observed one. The
cost is U times the sampler's NFE (``resample=1`` is plain replacement). The sampler's other
state (e.g. DPM-Solver's history) is the one before the step at every repeat.

Keys: ``run_key, replace_key = jax.random.split(key)``; the sampler runs on ``run_key`` with its
own per-step keys (repeat 0 of step i uses key_i, the others keys split from it), so with
nothing observed ``inpaint`` is the plain sampler on ``run_key``; replacement and renoising
noise come from ``replace_key``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from genjax_models.diffusion.processes import ForwardProcess
from genjax_models.diffusion.samplers.driver import Sampler, prepare_run
from genjax_models.diffusion.types import DenoiseFn
from genjax_models.errors import ConfigError, ShapeError

Batch = Float[Array, " b *event"]


def forward_transition(
    process: ForwardProcess, key: Array, x_s: Batch, s: Array, t: Array
) -> Batch:
    """Draw x_t ~ q(x_t | x_s) for t >= s: (a_t / a_s) x_s + sqrt(s_t^2 - (a_t/a_s)^2 s_s^2) z.

    Args:
      process: the forward process.
      key: PRNG key.
      x_s: ``[B, *event]`` at the lower level s.
      s, t: scalar times, t >= s (t = s returns x_s).

    Returns:
      ``[B, *event]`` at level t.
    """
    ratio = (process.alpha(t) / process.alpha(s)).astype(x_s.dtype)
    var = process.sigma(t) ** 2 - (ratio * process.sigma(s)) ** 2
    std = jnp.sqrt(jnp.maximum(var, 0.0)).astype(x_s.dtype)
    return ratio * x_s + std * jax.random.normal(key, x_s.shape, x_s.dtype)


def _noised(process: ForwardProcess, key: Array, x_obs: Batch, t: Array) -> Batch:
    a = process.alpha(t).astype(x_obs.dtype)
    s = process.sigma(t).astype(x_obs.dtype)
    return a * x_obs + s * jax.random.normal(key, x_obs.shape, x_obs.dtype)


def check_observation(x_obs: Any, observed: Any) -> tuple[Batch, Bool[Array, " b *event"]]:
    """Check ``x_obs [B, *event]`` and a boolean mask of its shape; missing entries may be NaN.

    Returns:
      ``(x_obs with missing entries set to 0, mask)``.
    """
    x_obs = jnp.asarray(x_obs)
    observed = jnp.asarray(observed)
    if x_obs.ndim < 2:
        raise ShapeError(f"inpainting needs a batch [B, *event], got shape {tuple(x_obs.shape)}")
    if observed.shape != x_obs.shape:
        raise ShapeError(
            f"the observed mask must have the data's shape {tuple(x_obs.shape)}, got "
            f"{tuple(observed.shape)}"
        )
    if observed.dtype != jnp.bool_:
        raise ShapeError(f"the observed mask must be boolean, got dtype {observed.dtype}")
    if not jnp.issubdtype(x_obs.dtype, jnp.floating):
        x_obs = x_obs.astype(jnp.result_type(float))
    return jnp.where(observed, x_obs, 0.0), observed


def inpaint(
    sampler: Sampler,
    denoise_fn: DenoiseFn,
    process: ForwardProcess,
    key: Array,
    x_obs: Batch,
    observed: Bool[Array, " b *event"],
    nfe: int,
    *,
    resample: int = 1,
    cond: Any = None,
    **options: Any,
) -> Batch:
    """Sample the missing entries of ``x_obs`` by replacement (+ RePaint resampling).

    Args:
      sampler: any sampler of :data:`~genjax_models.diffusion.samplers.SAMPLERS`.
      denoise_fn: ``(x, t, cond=None) -> x0_hat`` (guided denoisers too).
      process: the forward process.
      key: PRNG key (needed even for a deterministic sampler: replacement draws noise).
      x_obs: ``[B, *event]`` data in model space; entries where ``observed`` is False are
        ignored (NaN allowed).
      observed: ``[B, *event]`` booleans, True where the entry is observed.
      nfe: the sampler's budget for one pass (the run spends ``resample`` times as much).
      resample: U >= 1 repeats per step (1: replacement only; RePaint uses ~10).
      cond: conditioning for every denoiser call.
      **options: the sampler's options.

    Returns:
      ``[B, *event]`` samples whose observed entries equal ``x_obs``.
    """
    if isinstance(resample, bool) or not isinstance(resample, int) or resample < 1:
        raise ConfigError(f"resample must be an int >= 1, got {resample!r}")
    x_obs, observed = check_observation(x_obs, observed)
    run_key, replace_key = jax.random.split(key)
    run = prepare_run(sampler, denoise_fn, process, run_key, x_obs.shape, nfe, cond=cond,
                      **options)
    opts = run.options
    t_from, t_to = sampler.step_times(run.times, **opts)
    length = t_from.shape[0]
    replace_keys = jax.random.split(replace_key, length + 1)

    def harmonise(state: Any, t: Array, k: Array) -> Any:
        x = sampler.state_x(process, state, t, **opts)
        x = jnp.where(observed, _noised(process, k, x_obs, t), x)
        return sampler.with_x(process, state, x, t, **opts)

    def step(state: Any, scanned: Any) -> tuple[Any, None]:
        inputs, step_key, k, t0, t1 = scanned

        def repeat(carry: Any, scanned_u: Any) -> tuple[Any, None]:
            x_start, _ = carry
            u, u_key = scanned_u
            start = sampler.with_x(process, state, x_start, t0, **opts)
            replace_u, back_u = jax.random.split(jax.random.fold_in(k, u))
            new = harmonise(run.step(start, inputs, u_key), t1, replace_u)
            x_new = sampler.state_x(process, new, t1, **opts)
            return (forward_transition(process, back_u, x_new, t1, t0), new), None

        u_keys = None
        if step_key is not None:  # repeat 0 uses the sampler's own key
            u_keys = jnp.concatenate([step_key[None], jax.random.split(step_key, resample - 1)])
        x0 = sampler.state_x(process, state, t0, **opts)
        (_, new), _ = jax.lax.scan(repeat, (x0, state), (jnp.arange(resample), u_keys))
        return new, None

    state = harmonise(run.state, run.times[0], replace_keys[0])
    state, _ = jax.lax.scan(
        step, state, (run.inputs, run.keys, replace_keys[1:], t_from, t_to)
    )
    return jnp.where(observed, x_obs, run.finish(state))
