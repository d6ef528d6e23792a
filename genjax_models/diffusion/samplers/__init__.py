"""Diffusion samplers: each one ``lax.scan`` over a precomputed time grid, budgeted in NFE.

Every sampler is a :class:`~genjax_models.diffusion.samplers.driver.Sampler` (a NamedTuple of
its options, cost, per-step coefficients, one step and whether it is stochastic) in the one registry
:data:`SAMPLERS`, and one generic driver runs them all:

    sample(name, denoise_fn, process, key, shape, nfe, *, x_init=None, cond=None, dtype=None,
           **options) -> x [B, *event]

with ``denoise_fn(x [B, *event], t [B], cond=None) -> x0_hat`` (the estimate of E[x0 | x_t];
``genjax_models.diffusion.types``), a forward process from ``genjax_models.diffusion.processes``
and ``nfe`` the number of denoiser evaluations it may spend (``driver.py`` explains the budget, the
grids, the noise and the final denoising step). All are pure, jittable (``shape``, ``nfe`` and
options static) and vmappable. Options: :func:`sampler_options`; every sampler also takes ``grid``
(``"default"``: the sampler's default grid on the process), ``rho`` and ``denoise_final``.

=================  ======================================================  ==================
name               method                                                  NFE (K intervals)
=================  ======================================================  ==================
``ancestral``      DDPM ancestral sampling through q(x_s | x_t, x0_hat)    K (+1)
``ddim``           DDIM, ``eta`` (0: deterministic)                        K (+1)
``euler-maruyama`` reverse-SDE Euler-Maruyama                              K (+1)
``pc``             predictor-corrector, M Langevin corrector steps        K (M + 1) (+1)
``langevin``       annealed Langevin dynamics, T steps per level           L T (+1)
``euler``          probability-flow ODE, Euler                             K (+1)
``heun``           probability-flow ODE, EDM's Heun                        2K (+1)
``rk4``            probability-flow ODE, classical RK4                     4K (+1)
``dpm-solver++``   DPM-Solver++ multistep, ``order`` 1/2 (2M)/3 (3M)       K (+1)
=================  ======================================================  ==================

"(+1)" is the final denoising step (``denoise_final=True``, the default). Heun with it is EDM's
Algorithm 1 on N = K + 1 noise levels: 2N - 1 NFE (its closing Euler step to sigma = 0 is the
denoising step). A budget that does not divide evenly leaves the remainder unspent
(:func:`nfe_for_steps` gives the NFE actually used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxtyping import Array, Float

from genjax_models.diffusion.processes import GRIDS, ForwardProcess
from genjax_models.diffusion.samplers.ancestral import ANCESTRAL, DDIM
from genjax_models.diffusion.samplers.dpm_solver import DPM_SOLVER_PP, multistep_coefficients
from genjax_models.diffusion.samplers.driver import (
    COMMON_OPTIONS,
    Sampler,
    budget,
    resolve_options,
    run_sampler,
)
from genjax_models.diffusion.samplers.ode import EULER, HEUN, RK4
from genjax_models.diffusion.samplers.picard import PicardResult, picard_sample
from genjax_models.diffusion.samplers.sde import EULER_MARUYAMA, LANGEVIN, PC
from genjax_models.diffusion.types import DenoiseFn
from genjax_models.errors import unknown_name

Batch = Float[Array, " b *event"]

SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (ANCESTRAL, DDIM, EULER_MARUYAMA, PC, LANGEVIN, EULER, HEUN, RK4, DPM_SOLVER_PP)
}
# Samplers that draw noise with their default options (``ddim`` does too when eta > 0).
STOCHASTIC: frozenset[str] = frozenset(
    name for name, s in SAMPLERS.items() if s.stochastic(**s.defaults())
)


def get_sampler(name: str) -> Sampler:
    """Return the sampler ``name`` (one of :data:`SAMPLERS`), or raise listing the choices."""
    if name not in SAMPLERS:
        raise unknown_name("sampler", name, SAMPLERS)
    return SAMPLERS[name]


def sampler_options(name: str) -> dict[str, Any]:
    """Return the options of sampler ``name`` with their defaults (its own, then the common ones).

    ``x_init``, ``cond`` and ``dtype`` are arguments of :func:`sample`, not options.
    """
    return get_sampler(name).defaults()


def steps_for_nfe(name: str, nfe: int, **options: Any) -> int:
    """Return how many grid intervals (levels, for ``langevin``) ``nfe`` evaluations buy.

    Args:
      name: one of :data:`SAMPLERS`.
      nfe: the budget.
      **options: the sampler's options; those that change its cost (``denoise_final``,
        ``corrector_steps``, ``steps_per_level``) matter, the others are checked and ignored.

    Returns:
      K = (nfe - fixed) // per_step; raises ConfigError when the budget buys no step.
    """
    sampler = get_sampler(name)
    return budget(name, nfe, *sampler.cost(**resolve_options(sampler, options)))


def nfe_for_steps(name: str, num_steps: int, **options: Any) -> int:
    """Return the NFE that ``num_steps`` intervals of sampler ``name`` spend (the inverse map)."""
    sampler = get_sampler(name)
    per_step, fixed = sampler.cost(**resolve_options(sampler, options))
    return int(num_steps) * per_step + fixed


def sample(
    name: str,
    denoise_fn: DenoiseFn,
    process: ForwardProcess,
    key: Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    **kwargs: Any,
) -> Batch:
    """Draw ``[B, *event]`` samples with the sampler ``name`` (one of :data:`SAMPLERS`).

    :func:`~genjax_models.diffusion.samplers.driver.run_sampler` of ``SAMPLERS[name]``: ``key``
    may be ``None`` for a deterministic sampler given ``x_init``, ``shape`` is ``(B, *event)`` (or
    ``None`` with ``x_init``), ``nfe`` the denoiser-evaluation budget (:func:`steps_for_nfe`), and
    ``kwargs`` are ``x_init`` (x_T at ``t_max``), ``cond`` (passed to every ``denoise_fn(x, t,
    cond)`` call; ``None``: ``denoise_fn(x, t)``), ``dtype`` (of the prior draw) and the
    sampler's options (:func:`sampler_options`).
    """
    return run_sampler(get_sampler(name), denoise_fn, process, key, shape, nfe, **kwargs)


def picard(
    name: str,
    denoise_fn: DenoiseFn,
    process: ForwardProcess,
    key: Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    **kwargs: Any,
) -> PicardResult:
    """Sample with ``name``'s steps solved in parallel over time (Picard / ParaDiGMS).

    :func:`~genjax_models.diffusion.samplers.picard.picard_sample` of ``SAMPLERS[name]``: the
    arguments of :func:`sample` plus ``window`` (steps per round) and ``tol``; returns the
    samples with the sequential ``rounds`` and the total ``nfe`` spent.
    """
    return picard_sample(get_sampler(name), denoise_fn, process, key, shape, nfe, **kwargs)


def sampling_grid(
    process: ForwardProcess, num_steps: int, grid: str = "default", rho: float = 7.0
) -> Float[Array, " n"]:
    """Return the ``[num_steps + 1]`` decreasing times a sampler steps on (``process``'s method).

    Args:
      process: the forward process.
      num_steps: K, the number of intervals (>= 1).
      grid: one of :data:`GRIDS` (``"default"``: ``process.default_grid``).
      rho: the exponent of the ``"edm"`` grid.

    Returns:
      ``[K + 1]`` times; on a process with ``discrete_steps`` rounded to distinct step times.
    """
    return process.sampling_grid(num_steps, grid, rho)


def _named_sampler_function(name: str) -> Callable[..., Batch]:
    """Return ``fn(denoise_fn, process, key, shape, nfe, **kwargs)``, :func:`sample` of ``name``."""

    def fn(denoise_fn, process, key, shape, nfe, **kwargs: Any) -> Batch:
        return sample(name, denoise_fn, process, key, shape, nfe, **kwargs)

    fn.__name__ = fn.__qualname__ = name.replace("-", "_").replace("+", "p")
    fn.__doc__ = f"Sample with ``{name}``: :func:`sample` with ``name={name!r}``."
    return fn


ancestral = _named_sampler_function("ancestral")
ddim = _named_sampler_function("ddim")
euler_maruyama = _named_sampler_function("euler-maruyama")
pc = _named_sampler_function("pc")
langevin = _named_sampler_function("langevin")
euler = _named_sampler_function("euler")
heun = _named_sampler_function("heun")
rk4 = _named_sampler_function("rk4")
dpm_solver_pp = _named_sampler_function("dpm-solver++")


def pf_ode(method: str, denoise_fn: DenoiseFn, *args: Any, **kwargs: Any) -> Batch:
    """Integrate the probability-flow ODE with ``method`` (``"euler"``, ``"heun"``, ``"rk4"``)."""
    if method not in ("euler", "heun", "rk4"):
        raise unknown_name("ODE method", method, ("euler", "heun", "rk4"))
    return sample(method, denoise_fn, *args, **kwargs)


__all__ = [
    "COMMON_OPTIONS",
    "GRIDS",
    "SAMPLERS",
    "STOCHASTIC",
    "DenoiseFn",
    "Sampler",
    "ancestral",
    "ddim",
    "dpm_solver_pp",
    "euler",
    "euler_maruyama",
    "get_sampler",
    "heun",
    "langevin",
    "multistep_coefficients",
    "nfe_for_steps",
    "PicardResult",
    "pc",
    "picard",
    "pf_ode",
    "rk4",
    "run_sampler",
    "sample",
    "sampler_options",
    "sampling_grid",
    "steps_for_nfe",
]
