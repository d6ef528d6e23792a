"""Fixed-grid ODE integration (``lax.scan``), divergences and the continuous change of variables."""

from genjax_models.ode.cnf import DIVERGENCES, change_of_variables
from genjax_models.ode.divergence import exact_divergence, hutchinson_divergence, rademacher
from genjax_models.ode.integrators import (
    EVALS_PER_STEP,
    STEPPERS,
    euler_step,
    heun_step,
    integrate,
    midpoint_step,
    num_evals,
    rk4_step,
    steps_for_budget,
)

__all__ = [
    "DIVERGENCES",
    "EVALS_PER_STEP",
    "STEPPERS",
    "change_of_variables",
    "euler_step",
    "exact_divergence",
    "heun_step",
    "hutchinson_divergence",
    "integrate",
    "midpoint_step",
    "num_evals",
    "rademacher",
    "rk4_step",
    "steps_for_budget",
]
