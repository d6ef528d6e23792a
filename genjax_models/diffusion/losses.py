"""Training losses for diffusion models: DDPM, weighted denoising score matching, v and EDM losses.

Every loss draws a time t and noise eps per example, forms x_t = a_t x0 + s_t eps, calls the model
``model_fn(x_t [B, *event], t [B], cond=None) -> prediction [B, *event]`` (of kind ``prediction``;
``cond``, when given, is passed to every call, see ``types.py``; one of
``parameterization.PREDICTIONS``; the default ``"x0"`` means ``model_fn`` is a denoiser) and
regresses it on the matching target. Reduction: **mean over the event dimensions, then mean over
the batch**, so a loss does not grow with resolution; the likelihood-weighted loss is then in nats
per dimension (divide by ln 2 for bits/dim). Each returns ``(loss, metrics)``.

=====================  =========================================================================
loss                   per-example objective (E over t and eps)
=====================  =========================================================================
:func:`ddpm_loss`      ||eps - eps_hat||^2, t = n / N with n uniform on {1..N} (Ho et al. 2020)
:func:`dsm_loss`       lambda(t) ||s_theta - grad log q(x_t | x0)||^2, t ~ U[t_min, t_max]
                       (Song et al. 2021) with ``weighting``: ``"unit"`` lambda = 1; ``"sigma2"``
                       lambda = s_t^2, i.e. ||eps - eps_hat||^2; ``"likelihood"`` lambda = g(t)^2
                       scaled by (t_max - t_min) / 2, i.e. 1/2 int g^2 ||...||^2 dt
:func:`v_loss`         ||v - v_hat||^2, v = a eps - s x0 (Salimans & Ho 2022), t ~ U
:func:`edm_loss`       lambda(sigma) ||D(x_t) - x0||^2, lambda = (sigma^2 + sd^2) / (sigma sd)^2,
                       log sigma ~ N(P_mean, P_std^2) (Karras et al. 2022)
=====================  =========================================================================

Each is minimised by the exact posterior mean (E[eps | x_t], E[x0 | x_t], ...), since each is a
weighted squared error on a target whose conditional mean given (x_t, t) is that prediction.

**Likelihood bound.** With lambda = g^2, since g^2 / s^2 = -d log_snr / dt,
1/2 int g^2 ||s_theta - grad log q||^2 dt = 1/2 int_{log_snr} ||eps - eps_hat||^2 d log_snr, which
is the diffusion term L_infinity of the variational bound (Kingma et al. 2021; Song et al. 2021,
"maximum likelihood training"). :func:`dsm_loss` and :func:`v_loss` (any weighting) report in
``metrics`` an unbiased estimate of the whole negative ELBO of continuous x0 (as given;
dequantisation and scaling Jacobians belong to ``eval``), summed over dimensions, in nats per
example, for the model "prior -> reverse diffusion to t_min -> x0 ~ N(x_tmin / a, (s / a)^2 I)":

    -log p(x0) <= KL(q(x_T | x0) || N(0, prior_std^2 I))       ``prior_nats``
                  + D/2 (log(2 pi s_tmin^2 / a_tmin^2) + 1)     ``recon_nats``
                  + 1/2 int ||eps - eps_hat||^2 d log_snr       ``diffusion_nats``

(``bound_nats``; ``bound_bpd`` = bound_nats / (D ln 2)). With the exact denoiser it is tight up
to the small t_min decoder and prior mismatch. Its variance is lowest with ``importance=True``.
(:func:`edm_loss` omits it: under the log-normal the estimate is too heavy-tailed to be useful.)

**Time sampling** (``time_sampling``): u in [0, 1) per example is ``"uniform"`` (i.i.d.),
``"antithetic"`` (pairs u, 1 - u: the first ceil(B/2) are i.i.d., the rest mirror them) or
``"stratified"`` (low-discrepancy, Kingma et al. 2021: u_i = (u_0 + i / B) mod 1, one per stratum);
then t = t_min + u (t_max - t_min). With ``importance=True`` u is mapped uniformly in log-SNR
instead and every term is multiplied by the density ratio U[t_min, t_max] / p(t), so expectations
are unchanged; this tames the likelihood weighting, whose integrand is bounded in log-SNR but
not in t.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.diffusion.parameterization import (
    PREDICTIONS,
    convert,
    regression_target,
)
from genjax_models.diffusion.processes import ForwardProcess
from genjax_models.diffusion.types import DenoiseFn, call_denoiser
from genjax_models.errors import ConfigError, ShapeError, unknown_name

TIME_SAMPLING: tuple[str, ...] = ("uniform", "antithetic", "stratified")
WEIGHTINGS: tuple[str, ...] = ("unit", "sigma2", "likelihood")

# A model predicts any kind (eps, x0, v, score) with the denoiser's signature.
ModelFn = DenoiseFn
Batch = Float[Array, " b *event"]
Metrics = dict[str, Array]
LossFn = Callable[..., tuple[Array, Metrics]]


def sample_uniform(
    key: Array, num: int, scheme: str = "uniform", dtype: Any = None
) -> Float[Array, " b"]:
    """Draw ``num`` numbers in [0, 1), each marginally uniform, with the given scheme.

    Args:
      key: PRNG key.
      num: B.
      scheme: ``"uniform"``, ``"antithetic"`` or ``"stratified"`` (module docstring).
      dtype: float dtype (default: jax's default float).

    Returns:
      ``[num]`` array.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    if scheme == "uniform":
        return jax.random.uniform(key, (num,), dtype)
    if scheme == "antithetic":
        half = jax.random.uniform(key, ((num + 1) // 2,), dtype)
        return jnp.concatenate([half, 1.0 - half])[:num]
    if scheme == "stratified":
        u0 = jax.random.uniform(key, (), dtype)
        return jnp.mod(u0 + jnp.arange(num, dtype=dtype) / num, 1.0)
    raise unknown_name("time sampling", scheme, TIME_SAMPLING)


def _log_snr_and_slope(process, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """log_snr(t) and d log_snr / dt (negative), by forward-mode autodiff."""
    return jax.jvp(process.log_snr, (t,), (jnp.ones_like(t),))


def sample_times(
    key: Array,
    process: ForwardProcess,
    num: int,
    scheme: str = "uniform",
    importance: bool = False,
    dtype: Any = None,
) -> tuple[Float[Array, " b"], Float[Array, " b"]]:
    """Draw ``num`` times in [t_min, t_max] with their density ratios to U[t_min, t_max].

    Args:
      key: PRNG key.
      process: the forward process.
      num: B.
      scheme: see :func:`sample_uniform`.
      importance: draw uniformly in log-SNR instead of t.
      dtype: float dtype of the times.

    Returns:
      ``(t [B], ratio [B])`` with E[ratio h(t)] = E_{t ~ U[t_min, t_max]}[h(t)] for any h
      (``ratio = 1`` without importance; (l_hi - l_lo) / ((t_max - t_min) |dl/dt|) with it).
    """
    u = sample_uniform(key, num, scheme, dtype)
    span = process.t_max - process.t_min
    if not importance:
        return process.t_min + u * span, jnp.ones_like(u)
    hi = process.log_snr(jnp.asarray(process.t_min, u.dtype))
    lo = process.log_snr(jnp.asarray(process.t_max, u.dtype))
    t = process.t_from_log_snr(hi + u * (lo - hi)).astype(u.dtype)
    _, slope = _log_snr_and_slope(process, t)
    return t, ((hi - lo) / (span * jnp.abs(slope))).astype(u.dtype)


def _check(process, x0: jax.Array, prediction: str) -> None:
    if x0.ndim < 2:
        raise ShapeError(f"expected a data batch [B, *event], got shape {tuple(x0.shape)}")
    if prediction not in PREDICTIONS:
        raise unknown_name("prediction", prediction, PREDICTIONS)


def _mean_dims(x: jax.Array) -> jax.Array:
    return jnp.mean(x.reshape(x.shape[0], -1), axis=-1)


def _sum_dims(x: jax.Array) -> jax.Array:
    return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def _predict(model_fn, process, x0, key, t, cond):
    """Noise x0 at t and run the model; return ``(x_t, eps, prediction)``."""
    x_t, eps = process.perturb(key, x0, t)
    x_t = x_t.astype(x0.dtype)
    pred = call_denoiser(model_fn, x_t, t, cond)
    if pred.shape != x0.shape:
        raise ShapeError(f"model_fn returned shape {tuple(pred.shape)}, expected {tuple(x0.shape)}")
    return x_t, eps, pred


def _bound_metrics(process, x0, eps, eps_hat, inv_density) -> Metrics:
    """The negative-ELBO breakdown (module docstring); ``inv_density`` = 1 / p(log_snr)."""
    d = math.prod(x0.shape[1:])
    diffusion = 0.5 * inv_density * _sum_dims((eps_hat - eps) ** 2)
    t_max = jnp.asarray(process.t_max, x0.dtype)
    a_max, s_max = process.alpha(t_max).astype(x0.dtype), process.sigma(t_max).astype(x0.dtype)
    var_ratio = (s_max / process.prior_std) ** 2
    mean_sq = _sum_dims((a_max * x0 / process.prior_std) ** 2)
    prior = 0.5 * (mean_sq + d * (var_ratio - 1.0 - jnp.log(var_ratio)))
    t_min = jnp.asarray(process.t_min, x0.dtype)
    ratio = process.sigma(t_min).astype(x0.dtype) / process.alpha(t_min).astype(x0.dtype)
    recon = 0.5 * d * (jnp.log(2 * math.pi * ratio**2) + 1.0)
    total = diffusion + prior + recon
    return {
        "diffusion_nats": jnp.mean(diffusion),
        "prior_nats": jnp.mean(prior),
        "recon_nats": jnp.asarray(recon),
        "bound_nats": jnp.mean(total),
        "bound_bpd": jnp.mean(total) / (d * math.log(2.0)),
    }


def _continuous(
    model_fn, process, x0, key, t, ratio, prediction, target, weight, inv_density, cond
):
    """Weighted MSE on ``target`` plus metrics, the body of every continuous-time loss.

    ``weight`` multiplies the per-example mean squared error; ``inv_density`` is 1 / p(log_snr)
    for the bound (None: no bound).
    """
    x_t, eps, pred = _predict(model_fn, process, x0, key, t, cond)
    pred_target = convert(pred, x_t, process, t, prediction, target)
    err = _mean_dims((pred_target - regression_target(target, x0, eps, process, t)) ** 2)
    loss = jnp.mean(weight * ratio * err)
    eps_hat = convert(pred, x_t, process, t, prediction, "eps")
    x0_hat = convert(pred, x_t, process, t, prediction, "x0")
    metrics = {
        "loss": loss,
        "mse_eps": jnp.mean((eps_hat - eps) ** 2),
        "mse_x0": jnp.mean((x0_hat - x0) ** 2),
    }
    if inv_density is not None:
        metrics.update(_bound_metrics(process, x0, eps, eps_hat, inv_density))
    return loss, metrics


def _continuous_times(key, process, x0, time_sampling, importance):
    """Return ``(key_eps, t, ratio, inv_density)``: times of :func:`sample_times` and the noise key.

    ``inv_density`` = 1 / p(log_snr) = (t_max - t_min) |dlog_snr/dt| ratio, for the bound.
    """
    key_t, key_eps = jax.random.split(key)
    t, ratio = sample_times(key_t, process, x0.shape[0], time_sampling, importance, x0.dtype)
    _, slope = _log_snr_and_slope(process, t)
    return key_eps, t, ratio, (process.t_max - process.t_min) * jnp.abs(slope) * ratio


def ddpm_loss(
    model_fn: ModelFn,
    process: ForwardProcess,
    x0: Batch,
    key: Array,
    *,
    prediction: str = "x0",
    time_sampling: str = "uniform",
    cond: Any = None,
) -> tuple[Array, Metrics]:
    """Return DDPM's simple loss: mean ||eps - eps_hat(x_{t_n}, t_n)||^2 with n ~ U{1..N}.

    Args:
      model_fn: ``(x_t [B, *event], t [B]) -> [B, *event]`` prediction of kind ``prediction``;
        t = n / N is the process's continuous time of step n.
      process: a :class:`~genjax_models.diffusion.processes.DDPM` process.
      x0: ``[B, *event]`` data.
      key: PRNG key.
      prediction: the kind ``model_fn`` predicts (converted to eps).
      time_sampling: how u in n = 1 + floor(u N) is drawn (:data:`TIME_SAMPLING`).
      cond: conditioning passed to every ``model_fn`` call (None: ``model_fn(x_t, t)``).

    Returns:
      ``(loss, {"loss", "mse_x0"})``, the loss averaged over dimensions and batch.
    """
    _check(process, x0, prediction)
    n = process.discrete_steps
    if n is None:
        raise ConfigError(
            f"ddpm_loss needs a discrete (DDPM) process, got {process.name!r}; "
            "use dsm_loss for continuous-time processes"
        )
    key_t, key_eps = jax.random.split(key)
    u = sample_uniform(key_t, x0.shape[0], time_sampling, x0.dtype)
    t = (1 + jnp.minimum(jnp.floor(u * n), n - 1)) / n
    x_t, eps, pred = _predict(model_fn, process, x0, key_eps, t, cond)
    loss = jnp.mean((convert(pred, x_t, process, t, prediction, "eps") - eps) ** 2)
    mse_x0 = jnp.mean((convert(pred, x_t, process, t, prediction, "x0") - x0) ** 2)
    return loss, {"loss": loss, "mse_x0": mse_x0}


def dsm_loss(
    model_fn: ModelFn,
    process: ForwardProcess,
    x0: Batch,
    key: Array,
    *,
    prediction: str = "x0",
    weighting: str = "sigma2",
    time_sampling: str = "uniform",
    importance: bool = False,
    cond: Any = None,
) -> tuple[Array, Metrics]:
    """Return the lambda-weighted denoising score-matching loss E_t[lambda(t) ||s - grad log q||^2].

    ``"unit"``: lambda = 1 (score MSE); ``"sigma2"``: lambda = s_t^2 (= the eps MSE, Song's
    default); ``"likelihood"``: lambda = g(t)^2 and the expectation times (t_max - t_min) / 2, i.e.
    1/2 int g^2 ||s - grad log q||^2 dt per dimension: the diffusion term of the negative ELBO in
    nats per dimension (module docstring). All are means over dimensions.

    Args:
      model_fn: ``(x_t, t [B]) -> [B, *event]`` prediction of kind ``prediction``.
      process: any forward process.
      x0: ``[B, *event]`` data.
      key: PRNG key.
      prediction: one of ``PREDICTIONS``.
      weighting: one of :data:`WEIGHTINGS`.
      time_sampling: one of :data:`TIME_SAMPLING`.
      importance: sample uniformly in log-SNR, reweighted (see :func:`sample_times`).
      cond: conditioning passed to every ``model_fn`` call (None: ``model_fn(x_t, t)``).

    Returns:
      ``(loss, metrics)``: metrics ``loss``, ``mse_eps``, ``mse_x0`` and the bound breakdown.
    """
    _check(process, x0, prediction)
    if weighting not in WEIGHTINGS:
        raise unknown_name("weighting", weighting, WEIGHTINGS)
    key_eps, t, ratio, inv_density = _continuous_times(key, process, x0, time_sampling, importance)
    s2 = process.sigma(t).astype(x0.dtype) ** 2
    if weighting == "unit":
        weight = 1.0 / s2  # ||s_theta - grad log q||^2 = ||eps_hat - eps||^2 / s^2
    elif weighting == "sigma2":
        weight = jnp.ones_like(s2)
    else:
        _, g2 = process.sde(t)
        weight = 0.5 * (process.t_max - process.t_min) * g2.astype(s2.dtype) / s2
    return _continuous(
        model_fn, process, x0, key_eps, t, ratio, prediction, "eps", weight, inv_density, cond
    )


def v_loss(
    model_fn: ModelFn,
    process: ForwardProcess,
    x0: Batch,
    key: Array,
    *,
    prediction: str = "x0",
    time_sampling: str = "uniform",
    importance: bool = False,
    cond: Any = None,
) -> tuple[Array, Metrics]:
    """Return the v-prediction loss E_t ||v - v_hat||^2 with v = a_t eps - s_t x0, t ~ U.

    Arguments and returns as :func:`dsm_loss` (no weighting: the v MSE, mean over dimensions).
    """
    _check(process, x0, prediction)
    key_eps, t, ratio, inv_density = _continuous_times(key, process, x0, time_sampling, importance)
    weight = jnp.ones_like(t)
    return _continuous(
        model_fn, process, x0, key_eps, t, ratio, prediction, "v", weight, inv_density, cond
    )


def edm_loss(
    model_fn: ModelFn,
    process: ForwardProcess,
    x0: Batch,
    key: Array,
    *,
    prediction: str = "x0",
    sigma_data: float | None = None,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    time_sampling: str = "uniform",
    cond: Any = None,
) -> tuple[Array, Metrics]:
    """Return EDM's loss E[lambda(sigma) ||D(x_t, t) - x0||^2], log sigma ~ N(p_mean, p_std^2).

    lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 = 1 / c_out^2, so with the preconditioned
    denoiser it is the unit-weighted MSE of F (Karras et al. 2022). sigma is the noise level of
    x_t / a_t, i.e. s_t / a_t, and t = ``process.t_from_log_sigma(log sigma)``: for ``edm``
    t = sigma; for other processes t solves log_snr(t) = -2 log sigma, clipped to
    [t_min, t_max] (lambda uses the clipped sigma). The normal
    draw is Phi^{-1}(u) with u from ``time_sampling`` (``"antithetic"`` pairs +n and -n).

    Args:
      model_fn, process, x0, key, prediction: as :func:`dsm_loss`.
      sigma_data: sd; default ``process.sigma_data``.
      p_mean, p_std: the log-normal's parameters.
      time_sampling: one of :data:`TIME_SAMPLING`.
      cond: conditioning passed to every ``model_fn`` call (None: ``model_fn(x_t, t)``).

    Returns:
      ``(loss, {"loss", "mse_eps", "mse_x0"})``.
    """
    _check(process, x0, prediction)
    sd = float(process.sigma_data if sigma_data is None else sigma_data)
    key_t, key_eps = jax.random.split(key)
    u = sample_uniform(key_t, x0.shape[0], time_sampling, x0.dtype)
    tiny = jnp.finfo(x0.dtype).eps
    normal = jax.scipy.special.ndtri(jnp.clip(u, tiny, 1.0 - tiny))
    log_sigma = p_mean + p_std * normal
    t = process.t_from_log_sigma(log_sigma).astype(x0.dtype)
    sigma = (process.sigma(t) / process.alpha(t)).astype(x0.dtype)
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    ones = jnp.ones_like(t)
    return _continuous(
        model_fn, process, x0, key_eps, t, ones, prediction, "x0", weight, None, cond
    )


LOSSES: dict[str, LossFn] = {
    "ddpm": ddpm_loss,
    "dsm": dsm_loss,
    "v": v_loss,
    "edm": edm_loss,
}


def get_loss(name: str) -> LossFn:
    """Return the loss function ``name`` (one of :data:`LOSSES`)."""
    if name not in LOSSES:
        raise unknown_name("diffusion loss", name, LOSSES)
    return LOSSES[name]
