"""The instantaneous change of variables of a continuous normalising flow (Chen et al. 2018).

For dx/dt = F(x, t) the log-density along a trajectory obeys d log p_t(x(t)) / dt = -div F(x(t), t),
so solving the augmented ODE

    d/dt [x, ell] = [F(x, t), div F(x, t)],   x(t0) = x,  ell(t0) = 0

from t0 to t1 gives  log p_{t0}(x) = log p_{t1}(x(t1)) + ell(t1).

This one function serves FFJORD (data at t0 = 0, base at t1 = 1) and the probability-flow ODE of a
diffusion model (data at t0 = eps, prior at t1 = T). The divergence is exact (small D) or
Hutchinson's estimate with Rademacher probes drawn once per solve (FFJORD, Grathwohl et al. 2019),
which makes ell(t1) an unbiased estimate of the exact integral.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError, unknown_name
from genjax_models.ode.divergence import exact_divergence, hutchinson_divergence, rademacher
from genjax_models.ode.integrators import integrate

DIVERGENCES: tuple[str, ...] = ("exact", "hutchinson")
Dynamics = Callable[[Float[Array, " b *event"], Float[Array, ""]], Float[Array, " b *event"]]


def change_of_variables(
    dynamics: Dynamics,
    x: Float[Array, " b *event"],
    ts: Float[Array, " n"],
    method: str = "rk4",
    divergence: str = "exact",
    key: jax.Array | None = None,
    num_probes: int = 1,
) -> tuple[Float[Array, " b *event"], Float[Array, " b"]]:
    """Transport ``x`` along dx/dt = dynamics(x, t) over ``ts`` and integrate the divergence.

    Args:
      dynamics: ``(x [B, *event], t scalar) -> [B, *event]``, per-example independent.
      x: ``[B, *event]`` points at time ``ts[0]``.
      ts: ``[N + 1]`` time grid (increasing or decreasing).
      method: fixed-step Runge-Kutta method (:data:`~genjax_models.ode.runge_kutta.TABLEAUS`).
      divergence: ``"exact"`` or ``"hutchinson"`` (Rademacher probes, needs ``key``).
      key: PRNG key for the probes (drawn once, fixed along the trajectory).
      num_probes: probes averaged per example for ``"hutchinson"``.

    Returns:
      ``(z [B, *event], delta [B])`` with z = x(ts[-1]) and delta = int_{ts[0]}^{ts[-1]} div F dt,
      so that ``log p_{ts[0]}(x) = log p_{ts[-1]}(z) + delta``.
    """
    if divergence not in DIVERGENCES:
        raise unknown_name("divergence", divergence, DIVERGENCES)
    if divergence == "exact":

        def field(state, t):
            return exact_divergence(lambda y: dynamics(y, t), state[0])

    else:
        if key is None:
            raise ConfigError("divergence='hutchinson' needs a PRNG key for its probes")
        if num_probes < 1:
            raise ConfigError(f"num_probes must be >= 1, got {num_probes}")
        probes = rademacher(key, (num_probes, *x.shape), x.dtype)

        def field(state, t):
            return hutchinson_divergence(lambda y: dynamics(y, t), state[0], probes)

    delta0 = jnp.zeros(x.shape[:1], x.dtype)
    z, delta = integrate(field, (x, delta0), ts, method=method)
    return z, delta
