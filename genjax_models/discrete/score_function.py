"""Score-function (REINFORCE) gradient estimators with baselines, as surrogate objectives.

For z ~ q_phi and a learning signal f(z) (which may itself depend on parameters, e.g. a
decoder log p_theta(x | z)), the score-function identity gives

    d/dphi E_q[f(z)] = E_q[(f(z) - b) d/dphi log q_phi(z)] + E_q[d/dphi f(z)]

for any baseline b that does not depend on z (E_q[d log q] = 0). Every function here returns a
*surrogate*: an array whose value is the objective's Monte Carlo estimate (f, or the mean of the
k samples' f) and whose ``jax.grad`` is that estimator, so a loss can be written as
``-surrogate`` and differentiated as usual (the DiCE form of Foerster et al., 2018):

    surrogate = f + stop_gradient(f - b) * (log q - stop_gradient(log q)).

Baselines (each keeps the estimator unbiased; each is measured against none in the tests):

- none: b = 0;
- moving average: b is a running mean of f, a pure input; :func:`moving_average_update` returns
  the next average (no hidden state);
- learned, input-dependent: b = b_psi(x) is an input; :func:`baseline_regression_loss` fits psi
  by (f - b)^2 with f stopped, and the surrogate stops b, so neither loss leaks into the other;
- leave-one-out over k samples: b_i = mean_{j != i} f(z_j), independent of z_i
  (:func:`leave_one_out_surrogate`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError

_sg = jax.lax.stop_gradient


def score_function_surrogate(
    log_q: Float[Array, "..."],
    f: Float[Array, "..."],
    baseline: Float[Array, "..."] | float = 0.0,
) -> Float[Array, "..."]:
    """Return the REINFORCE surrogate f + sg(f - b) (log q - sg(log q)).

    Its value is f; its gradient is (f - b) grad log q(z) + grad f, an unbiased estimate of
    grad E_q[f(z)] for any b independent of z. The baseline receives no gradient.

    Args:
      log_q: log q_phi(z) of the drawn z (differentiable in phi), ``[...]``.
      f: learning signal f(z), ``[...]`` (its own gradient, if any, is kept).
      baseline: b, broadcastable to ``f`` (0: plain REINFORCE).

    Returns:
      ``[...]``, equal in value to ``f``.
    """
    return f + _sg(f - baseline) * (log_q - _sg(log_q))


def moving_average_update(
    average: Float[Array, ""] | float, f: Float[Array, "..."], decay: float = 0.9
) -> Float[Array, ""]:
    """Return the next moving-average baseline: decay * average + (1 - decay) * mean(f).

    Pure: the caller keeps ``average`` (e.g. in a training state) and uses the *old* value as
    the baseline of this step's surrogate, which keeps it independent of this step's z.

    Args:
      average: the current average (a scalar).
      f: this step's learning signals, any shape (averaged); no gradient flows through.
      decay: in [0, 1); 0 keeps only the current mean.

    Returns:
      a scalar.
    """
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"decay must be in [0, 1), got {decay!r}")
    return decay * average + (1.0 - decay) * jnp.mean(_sg(f))


def baseline_regression_loss(
    f: Float[Array, "..."], baseline: Float[Array, "..."]
) -> Float[Array, "..."]:
    """Return the learned baseline's regression loss (sg(f) - b)^2, elementwise.

    Its gradient reaches only the baseline's parameters (f is stopped); pair it with
    :func:`score_function_surrogate`, which stops b, so the baseline fit and the policy
    gradient do not interfere. The minimiser over input-dependent b(x) is E_q[f | x].

    Args:
      f: learning signals, ``[...]``.
      baseline: b(x), broadcastable to ``f``.

    Returns:
      ``[...]`` (broadcast shape); average it into the loss.
    """
    return jnp.square(_sg(f) - baseline)


def leave_one_out_baseline(f: Float[Array, "k ..."], axis: int = 0) -> Float[Array, "k ..."]:
    """Return b_i = 1/(k-1) sum_{j != i} f_j along ``axis`` (k >= 2), with no gradient.

    Raises:
      ConfigError: fewer than 2 samples along ``axis``.
    """
    k = f.shape[axis]
    if k < 2:
        raise ConfigError(f"a leave-one-out baseline needs at least 2 samples, got {k}")
    f = _sg(f)
    return (jnp.sum(f, axis=axis, keepdims=True) - f) / (k - 1)


def leave_one_out_surrogate(
    log_q: Float[Array, "k ..."], f: Float[Array, "k ..."], axis: int = 0
) -> Float[Array, "..."]:
    """Return the k-sample REINFORCE surrogate with leave-one-out baselines, averaged.

    With z_1..z_k ~ q i.i.d. and b_i = mean_{j != i} f(z_j),

        grad = 1/k sum_i [(f_i - b_i) grad log q(z_i) + grad f_i],

    unbiased for grad E_q[f(z)] because b_i is independent of z_i (Kool et al., 2019; the
    "RLOO" estimator). Equivalently (f_i - mean_j f_j) * k / (k - 1) multiplies each score.

    Args:
      log_q: ``[k, ...]`` log q(z_i) (differentiable).
      f: ``[k, ...]`` f(z_i).
      axis: the sample axis.

    Returns:
      ``[...]``: the mean of f over the samples in value.
    """
    baseline = leave_one_out_baseline(f, axis=axis)
    return jnp.mean(score_function_surrogate(log_q, f, baseline), axis=axis)
