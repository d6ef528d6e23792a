"""One generic sampler driver: budget -> prior draw -> grid -> ``lax.scan`` -> final denoising.

A sampler (:class:`Sampler`, optax style: a NamedTuple of pure functions) integrates from
``t_max`` down to ``t_min`` over a decreasing grid of K + 1 times t_0 = t_max > ... > t_K = t_min
(``process.sampling_grid``). Its public budget is the number of denoiser evaluations (NFE); a
sampler that spends ``per_step`` evaluations per grid interval and ``fixed`` more once (the optional
final denoising step) buys

    K = floor((nfe - fixed) / per_step)        intervals,  using  K * per_step + fixed <= nfe,

and a budget too small for one interval raises :class:`~genjax_models.errors.ConfigError`.
:func:`run_sampler` does, for every sampler,

1. options: merge the given ones over the sampler's declared defaults, reject unknown names and
   let the sampler validate them;
2. budget: K from ``sampler.cost``;
3. prior: ``prior_key, noise_key = jax.random.split(key)``; x_T = ``process.prior_sample(
   prior_key, shape)`` unless ``x_init`` is given;
4. grid: ``process.sampling_grid(K, grid, rho)`` (``grid="default"``: ``sampler.default_grid``);
5. ``sampler.coefficients`` precomputes every x-independent number per scan step (leading axis:
   the scan length, K or, for annealed Langevin, K T); step i of a stochastic sampler draws from
   ``jax.random.split(noise_key, length)[i]`` (split further when a step needs several draws), so
   samplers with the same grid share their noise (DDIM(eta=1) and ancestral sampling agree);
6. one ``lax.scan`` of ``sampler.step``, then ``sampler.finish`` maps the state back to x;
7. the optional final denoising step (``denoise_final=True``, one NFE) returns
   x0_hat(x_{t_min}, t_min) instead of x_{t_min}. For Ho et al.'s DDPM sampler it is the last step
   (t = 1/N -> 0, no noise); for EDM's Heun sampler it is the closing Euler step to sigma = 0.

Every denoiser call goes through one bound function ``denoise(x, t_scalar)``, which broadcasts t to
``[B]``, passes ``cond`` (see :mod:`genjax_models.diffusion.types`) and checks the output's shape;
a step never sees ``cond``, so a guided denoiser is just another ``denoise_fn``. On a process with
``discrete_steps`` (DDPM) the grid is snapped to distinct step times n / N, so a network trained on
the discrete steps is only queried there (K <= N - 1); intermediate stages of RK4 fall between.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.diffusion.processes import ForwardProcess
from genjax_models.diffusion.types import DenoiseFn, call_denoiser
from genjax_models.errors import ConfigError, ShapeError, unknown_name

PyTree = Any
Batch = Float[Array, " b *event"]
# (x [B, *event], t scalar) -> x0_hat [B, *event]: the denoiser as a step calls it.
BoundDenoiser = Callable[[Batch, Float[Array, ""]], Batch]
# Options every sampler takes: the time grid, the EDM grid's exponent, the final denoising step.
COMMON_OPTIONS: Mapping[str, Any] = {"grid": "default", "rho": 7.0, "denoise_final": True}


def _identity(x: Any, constants: Any, **options: Any) -> Any:
    del constants, options
    return x


def _never(**options: Any) -> bool:
    del options
    return False


def _process_default_grid(process: ForwardProcess) -> str:
    return process.default_grid


def _state_is_x(process: ForwardProcess, state: Any, t: Any, **options: Any) -> Any:
    del process, t, options
    return state


def _x_is_state(process: ForwardProcess, state: Any, x: Any, t: Any, **options: Any) -> Any:
    del process, state, t, options
    return x


def _grid_intervals(ts: Any, **options: Any) -> tuple[Any, Any]:
    del options
    return ts[:-1], ts[1:]


class Sampler(NamedTuple):
    """A sampler: its options and the pure functions that the driver runs (module docstring).

    Attributes:
      name: the registry name.
      options: the sampler's own options and their defaults (besides :data:`COMMON_OPTIONS`).
      cost: ``(**options) -> (per_step, fixed)`` denoiser evaluations.
      coefficients: ``(process, ts [K + 1], dtype, **options) -> (per_step, constants)``: the
        precomputed scan inputs (a pytree with the scan length as leading axis) and any
        constants ``init`` / ``finish`` need.
      step: ``(denoise, process, state, inputs, key, **options) -> state``, one scan step;
        ``denoise(x, t)`` is the bound denoiser, ``key`` is None for a deterministic sampler.
      init: ``(x_T, constants, **options) -> state`` (default: the state is x).
      finish: ``(state, constants, **options) -> x_{t_min}`` (default: the state is x).
      stochastic: ``(**options) -> bool``, whether steps draw noise (and need a key).
      default_grid: ``(process) -> grid kind`` used for ``grid="default"``.
      validate: ``(**options) -> None``, raising ConfigError on a bad option value.
      state_x: ``(process, state, t, **options) -> x_t``, the sample a state holds at time t
        (default: the state is x); used by inpainting to edit the observed part.
      with_x: ``(process, state, x_t, t, **options) -> state``, ``state`` holding ``x_t``
        instead (its other parts, e.g. a multistep history, kept).
      step_times: ``(ts [K + 1], **options) -> (t_from [L], t_to [L])``, the time each scan
        step starts and ends at (default: the grid's intervals).
    """

    name: str
    options: Mapping[str, Any]
    cost: Callable[..., tuple[int, int]]
    coefficients: Callable[..., tuple[PyTree, PyTree]]
    step: Callable[..., PyTree]
    init: Callable[..., PyTree] = _identity
    finish: Callable[..., Batch] = _identity
    stochastic: Callable[..., bool] = _never
    default_grid: Callable[[ForwardProcess], str] = _process_default_grid
    validate: Callable[..., None] = lambda **options: None
    state_x: Callable[..., Batch] = _state_is_x
    with_x: Callable[..., PyTree] = _x_is_state
    step_times: Callable[..., tuple[Array, Array]] = _grid_intervals

    def defaults(self) -> dict[str, Any]:
        """Return every option of the sampler with its default (own options, then common)."""
        return {**self.options, **COMMON_OPTIONS}


def resolve_options(sampler: Sampler, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``options`` merged over ``sampler``'s defaults; raise on an unknown option name."""
    valid = sampler.defaults()
    bad = sorted(set(options) - set(valid))
    if bad:
        raise ConfigError(
            f"sampler {sampler.name!r} has no option(s) {', '.join(bad)}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return {**valid, **options}


def one_per_step_cost(denoise_final: bool = True, **_: Any) -> tuple[int, int]:
    """Return ``(1, denoise_final)``: one NFE per step, plus the final denoising step."""
    return 1, int(denoise_final)


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
            f"sampler {name!r} needs nfe >= {need} ({per_step} per step x {minimum} step(s)"
            f"{extra}), got {nfe}"
        )
    return steps


def initial_state(
    process: ForwardProcess,
    key: Array | None,
    shape: tuple[int, ...] | None,
    x_init: Batch | None,
    dtype: Any,
) -> tuple[Batch, Array | None]:
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
            raise ShapeError(
                f"x_init has shape {tuple(x.shape)} but shape={tuple(shape)} was asked for"
            )
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


def bind_denoiser(denoise_fn: DenoiseFn, cond: Any) -> BoundDenoiser:
    """Return ``denoise(x, t)``: ``denoise_fn`` with ``cond`` bound and ``t`` broadcast to [B].

    The output is checked to have the input's shape and cast to its dtype.
    """

    def denoise(x: Batch, t: Float[Array, ""]) -> Batch:
        t_batch = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
        out = call_denoiser(denoise_fn, x, t_batch, cond)
        if tuple(out.shape) != tuple(x.shape):
            raise ShapeError(
                f"denoise_fn must return the input's shape {tuple(x.shape)}, "
                f"got {tuple(out.shape)}"
            )
        return out.astype(x.dtype)

    return denoise


def alpha_sigma(
    process: ForwardProcess, ts: Float[Array, " n"], dtype: Any
) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """Return ``(alpha(ts), sigma(ts))`` cast to ``dtype``."""
    return process.alpha(ts).astype(dtype), process.sigma(ts).astype(dtype)


def event_norm(v: Batch) -> Float[Array, "b ..."]:
    """Return the per-example Euclidean norm over all event axes, shaped ``[B, 1, ..., 1]``."""
    axes = tuple(range(1, v.ndim))
    return jnp.sqrt(jnp.sum(v * v, axis=axes, keepdims=True))


def run_sampler(
    sampler: Sampler,
    denoise_fn: DenoiseFn,
    process: ForwardProcess,
    key: Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: Batch | None = None,
    cond: Any = None,
    dtype: Any = None,
    **options: Any,
) -> Batch:
    """Draw samples with ``sampler`` (module docstring).

    Args:
      sampler: the sampler.
      denoise_fn: ``(x [B, *event], t [B], cond=None) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key (may be ``None`` for a deterministic sampler given ``x_init``).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: the denoiser-evaluation budget.
      x_init: optional x_T ``[B, *event]`` at ``t_max``.
      cond: conditioning passed to every denoiser call (``None``: ``denoise_fn(x, t)``).
      dtype: dtype of the prior draw when ``x_init`` is not given.
      **options: the sampler's options (:meth:`Sampler.defaults`).

    Returns:
      Samples ``[B, *event]``.
    """
    run = prepare_run(sampler, denoise_fn, process, key, shape, nfe, x_init=x_init, cond=cond,
                      dtype=dtype, **options)

    def body(state, scanned):
        step_inputs, step_key = scanned
        return run.step(state, step_inputs, step_key), None

    state, _ = jax.lax.scan(body, run.state, (run.inputs, run.keys))
    return run.finish(state)


class PreparedRun(NamedTuple):
    """A sampler run set up up to its loop (steps 1-5 of the module docstring).

    Attributes:
      state: the initial state ``sampler.init(x_T, constants)``.
      inputs: the per-step scan inputs (leading axis: the scan length L).
      keys: ``[L]`` per-step PRNG keys (``None`` for a deterministic sampler).
      step: ``(state, inputs_i, key_i) -> state``, one step with the options bound.
      finish: ``state -> x``: ``sampler.finish``, then the final denoising step if enabled.
      options: the resolved options.
      times: the grid ``[K + 1]``, t_max down to t_min.
    """

    state: PyTree
    inputs: PyTree
    keys: Array | None
    step: Callable[[PyTree, PyTree, Array | None], PyTree]
    finish: Callable[[PyTree], Batch]
    options: dict[str, Any]
    times: Array


def prepare_run(
    sampler: Sampler,
    denoise_fn: DenoiseFn,
    process: ForwardProcess,
    key: Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: Batch | None = None,
    cond: Any = None,
    dtype: Any = None,
    **options: Any,
) -> PreparedRun:
    """Resolve options, budget, prior draw, grid, coefficients and keys (:func:`run_sampler`).

    The sequential driver scans ``step`` over ``(inputs, keys)``; the parallel-in-time one
    (:mod:`~genjax_models.diffusion.samplers.picard`) iterates the same steps, with the same
    per-step keys, to their fixed point.
    """
    opts = resolve_options(sampler, options)
    sampler.validate(**opts)
    num_steps = budget(sampler.name, nfe, *sampler.cost(**opts))
    x, noise_key = initial_state(process, key, shape, x_init, dtype)
    grid = sampler.default_grid(process) if opts["grid"] == "default" else opts["grid"]
    ts = process.sampling_grid(num_steps, grid, opts["rho"]).astype(x.dtype)
    inputs, constants = sampler.coefficients(process, ts, x.dtype, **opts)
    length = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    keys = None
    if sampler.stochastic(**opts):
        if noise_key is None:
            raise ConfigError(f"sampler {sampler.name!r} is stochastic: pass a PRNG key")
        keys = jax.random.split(noise_key, length)
    denoise = bind_denoiser(denoise_fn, cond)

    def step(state: PyTree, step_inputs: PyTree, step_key: Array | None) -> PyTree:
        return sampler.step(denoise, process, state, step_inputs, step_key, **opts)

    def finish(state: PyTree) -> Batch:
        x = sampler.finish(state, constants, **opts)
        return denoise(x, ts[-1]) if opts["denoise_final"] else x

    return PreparedRun(sampler.init(x, constants, **opts), inputs, keys, step, finish, opts, ts)


def validate_choice(what: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise the standard unknown-name error unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise unknown_name(what, value, choices)


def validate_count(what: str, value: Any, minimum: int) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} must be an int >= {minimum}, got {value!r}")
