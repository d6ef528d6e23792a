"""Fixed-grid ODE integration: one Runge-Kutta engine (Butcher tableaus), divergences, CNFs."""

from genjax_models.ode.cnf import DIVERGENCES, change_of_variables
from genjax_models.ode.divergence import (
    EXACT_TRACE_MAX_DIMS,
    TRACES,
    exact_divergence,
    hutchinson_divergence,
    rademacher,
    resolve_trace,
)
from genjax_models.ode.integrators import (
    EVALS_PER_STEP,
    STEPPERS,
    euler_step,
    heun_step,
    integrate,
    midpoint_step,
    rk4_step,
    tableau,
)
from genjax_models.ode.runge_kutta import (
    TABLEAUS,
    ButcherTableau,
    combine_stages,
    explicit_rk,
    rk_step,
)

__all__ = [
    "DIVERGENCES",
    "EVALS_PER_STEP",
    "EXACT_TRACE_MAX_DIMS",
    "STEPPERS",
    "TABLEAUS",
    "TRACES",
    "ButcherTableau",
    "change_of_variables",
    "combine_stages",
    "euler_step",
    "exact_divergence",
    "explicit_rk",
    "heun_step",
    "hutchinson_divergence",
    "integrate",
    "midpoint_step",
    "rademacher",
    "resolve_trace",
    "rk4_step",
    "rk_step",
    "tableau",
]
