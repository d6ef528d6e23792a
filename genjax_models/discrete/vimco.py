"""VIMCO (Mnih & Rezende, 2016): score-function gradients of the multi-sample IWAE objective.

With z_1..z_k ~ q_phi i.i.d. and log weights log w_i = log p(x, z_i) - log q_phi(z_i | x), the
objective is

    L = log (1/k sum_i w_i),       E[L] = L_k(x) <= log p(x)  (the IWAE-k bound),

whose gradient is

    grad E[L] = E[ sum_i L grad log q(z_i) + sum_i w~_i grad log w_i ],  w~_i = w_i / sum_j w_j.

VIMCO replaces the common learning signal L of sample i by L - L_{-i}, where the control
variate L_{-i} swaps w_i for the geometric mean of the other weights,

    L_{-i} = log (1/k (sum_{j != i} w_j + exp(1/(k-1) sum_{j != i} log w_j))),

a function of z_{-i} only, so the estimator stays unbiased for grad L_k. Computation is in log
space (logsumexp), O(k^2) per example.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.discrete.score_function import leave_one_out_baseline

_sg = jax.lax.stop_gradient


def iwae_objective(log_w: Float[Array, "k ..."], axis: int = 0) -> Float[Array, "..."]:
    """Return L = logsumexp_i log w_i - log k along ``axis`` (the k-sample IWAE estimate)."""
    return jax.nn.logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def vimco_control_variates(log_w: Float[Array, "k ..."]) -> Float[Array, "k ..."]:
    """Return the per-sample control variates L_{-i} (module docstring), with no gradient.

    Args:
      log_w: ``[k, ...]`` log weights, k >= 2, samples on axis 0.

    Returns:
      ``[k, ...]``: L_{-i} for i = 1..k.
    """
    log_w = _sg(log_w)
    k = log_w.shape[0]
    geo = leave_one_out_baseline(log_w, axis=0)  # [k, ...]: mean_{j != i} log w_j
    eye = jnp.eye(k, dtype=bool).reshape((k, k) + (1,) * (log_w.ndim - 1))
    # Row i: log w with its entry i replaced by the geometric mean of the others.
    swapped = jnp.where(eye, geo[:, None], log_w[None, :])  # [k, k, ...]
    return jax.nn.logsumexp(swapped, axis=1) - math.log(k)


def vimco_surrogate(
    log_q: Float[Array, "k ..."], log_w: Float[Array, "k ..."]
) -> Float[Array, "..."]:
    """Return the VIMCO surrogate L + sum_i sg(L - L_{-i}) (log q_i - sg(log q_i)).

    Its value is L = log(1/k sum_i w_i); its gradient is the VIMCO estimator

        sum_i (L - L_{-i}) grad log q(z_i) + sum_i w~_i grad log w_i,

    unbiased for grad E[L] = grad L_k(x). ``log_w`` must carry its own dependence on the
    parameters (through log p_theta(x, z_i) and -log q_phi(z_i | x)): that gives the second
    (pathwise) term; ``log_q`` gives the score term.

    Args:
      log_q: ``[k, ...]`` log q_phi(z_i) of the drawn samples.
      log_w: ``[k, ...]`` log importance weights of the same samples, k >= 2.

    Returns:
      ``[...]``.
    """
    objective = iwae_objective(log_w, axis=0)
    signal = _sg(objective[None] - vimco_control_variates(log_w))  # [k, ...]
    return objective + jnp.sum(signal * (log_q - _sg(log_q)), axis=0)
