"""Diffusion samplers: each one ``lax.scan`` over a precomputed time grid, budgeted in NFE.

Every sampler has the signature

    sampler(denoise_fn, process, key, shape, nfe, *, x_init=None, **options) -> x [B, *event]

with ``denoise_fn(x [B, *event], t [B]) -> x0_hat`` (the estimate of E[x0 | x_t]), a forward
process from ``genjax_models.diffusion.processes`` and ``nfe`` the number of denoiser evaluations
it may spend (``grids.py`` explains the budget, the grids, the noise and the final denoising step).
All are pure, jittable (``shape``, ``nfe`` and options static) and vmappable.

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

import inspect
from collections.abc import Callable
from typing import Any

import jax

from genjax_models.diffusion.samplers.ancestral import ancestral, ancestral_cost, ddim
from genjax_models.diffusion.samplers.dpm_solver import (
    dpm_solver_cost,
    dpm_solver_pp,
    multistep_coefficients,
)
from genjax_models.diffusion.samplers.grids import GRIDS, DenoiseFn, budget, sampling_grid
from genjax_models.diffusion.samplers.ode import euler, heun, ode_cost, pf_ode, rk4
from genjax_models.diffusion.samplers.sde import (
    euler_maruyama,
    euler_maruyama_cost,
    langevin,
    langevin_cost,
    pc,
    pc_cost,
)
from genjax_models.errors import ConfigError, unknown_name

SAMPLERS: dict[str, Callable[..., jax.Array]] = {
    "ancestral": ancestral,
    "ddim": ddim,
    "euler-maruyama": euler_maruyama,
    "pc": pc,
    "langevin": langevin,
    "euler": euler,
    "heun": heun,
    "rk4": rk4,
    "dpm-solver++": dpm_solver_pp,
}
# Samplers that always draw noise (``ddim`` does too when eta > 0).
STOCHASTIC: frozenset[str] = frozenset({"ancestral", "euler-maruyama", "pc", "langevin"})

# name -> (function whose keyword-only parameters are the options, cost(**options)).
_SPECS: dict[str, tuple[Callable[..., Any], Callable[..., tuple[int, int]]]] = {
    "ancestral": (ancestral, ancestral_cost),
    "ddim": (ddim, ancestral_cost),
    "euler-maruyama": (euler_maruyama, euler_maruyama_cost),
    "pc": (pc, pc_cost),
    "langevin": (langevin, langevin_cost),
    "euler": (pf_ode, lambda **o: ode_cost("euler", **o)),
    "heun": (pf_ode, lambda **o: ode_cost("heun", **o)),
    "rk4": (pf_ode, lambda **o: ode_cost("rk4", **o)),
    "dpm-solver++": (dpm_solver_pp, dpm_solver_cost),
}


def sampler_options(name: str) -> dict[str, Any]:
    """Return the options of sampler ``name`` with their defaults (``x_init`` excluded)."""
    if name not in SAMPLERS:
        raise unknown_name("sampler", name, SAMPLERS)
    params = inspect.signature(_SPECS[name][0]).parameters.values()
    return {
        p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name != "x_init"
    }


def _resolve(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check ``options`` against the sampler's and return them merged over the defaults."""
    valid = sampler_options(name)
    bad = sorted(set(options) - set(valid) - {"x_init"})
    if bad:
        raise ConfigError(
            f"sampler {name!r} has no option(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}"
        )
    return {**valid, **options}


def steps_for_nfe(name: str, nfe: int, **options: Any) -> int:
    """Return how many grid intervals (levels, for ``langevin``) ``nfe`` evaluations buy.

    Args:
      name: one of :data:`SAMPLERS`.
      nfe: the budget.
      **options: the sampler's options that change its cost (``denoise_final``,
        ``corrector_steps``, ``steps_per_level``); others are accepted and ignored.

    Returns:
      K = (nfe - fixed) // per_step; raises ConfigError when the budget buys no step.
    """
    resolved = _resolve(name, options)
    return budget(name, nfe, *_SPECS[name][1](**resolved))


def nfe_for_steps(name: str, num_steps: int, **options: Any) -> int:
    """Return the NFE that ``num_steps`` intervals of sampler ``name`` spend (the inverse map)."""
    per_step, fixed = _SPECS[name][1](**_resolve(name, options))
    return int(num_steps) * per_step + fixed


def sample(
    name: str,
    denoise_fn: DenoiseFn,
    process,
    key: jax.Array | None,
    shape: tuple[int, ...] | None,
    nfe: int,
    *,
    x_init: jax.Array | None = None,
    **options: Any,
) -> jax.Array:
    """Draw samples with the sampler ``name`` (one of :data:`SAMPLERS`).

    Args:
      name: the sampler.
      denoise_fn: ``(x [B, *event], t [B]) -> x0_hat [B, *event]``.
      process: the forward process.
      key: PRNG key (may be ``None`` for a deterministic sampler given ``x_init``).
      shape: ``(B, *event)`` (or ``None`` with ``x_init``).
      nfe: the denoiser-evaluation budget (:func:`steps_for_nfe`).
      x_init: optional x_T ``[B, *event]`` at ``t_max``.
      **options: the sampler's options (:func:`sampler_options`).

    Returns:
      Samples ``[B, *event]``.
    """
    _resolve(name, options)
    return SAMPLERS[name](denoise_fn, process, key, shape, nfe, x_init=x_init, **options)


__all__ = [
    "GRIDS",
    "SAMPLERS",
    "STOCHASTIC",
    "ancestral",
    "ddim",
    "dpm_solver_pp",
    "euler",
    "euler_maruyama",
    "heun",
    "langevin",
    "multistep_coefficients",
    "nfe_for_steps",
    "pc",
    "pf_ode",
    "rk4",
    "sample",
    "sampler_options",
    "sampling_grid",
    "steps_for_nfe",
]
