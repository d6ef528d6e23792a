"""The shared maths of every forward process x_t = alpha(t) x0 + sigma(t) eps (``processes.py``).

:class:`ProcessBase` derives everything from ``alpha`` and ``sigma``: marginals, the forward SDE
(by autodiff), the Gaussian posterior, the prior, the inverse of the log-SNR (one bisection) and
the time grids (one implementation, with DDPM's snapping to step times), so a new process is
two functions and the answers to the questions of
:class:`~genjax_models.diffusion.processes.ForwardProcess`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError, unknown_name

GRIDS: tuple[str, ...] = ("default", "uniform", "log-snr", "edm")
Times = Float[Array, "*t"]


class ProcessBase:
    """Shared maths of x_t = alpha(t) x0 + sigma(t) eps given ``alpha`` and ``sigma``."""

    name: ClassVar[str]
    t_min: float
    t_max: float
    # The answers of :class:`ForwardProcess`'s questions for a continuous process.
    sigma_data: ClassVar[float] = 0.5
    default_grid: ClassVar[str] = "uniform"
    solver_grid: ClassVar[str] = "log-snr"
    likelihood_grid: ClassVar[str] = "log-snr"
    noise_feature_kind: ClassVar[str] = "log-sigma"

    # ------------------------------------------------------------- to override
    def alpha(self, t: Times) -> Times:  # pragma: no cover - abstract
        raise NotImplementedError

    def sigma(self, t: Times) -> Times:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def prior_std(self) -> float:
        """Standard deviation of the Gaussian prior N(0, prior_std^2 I) at ``t_max``."""
        return 1.0

    @property
    def discrete_steps(self) -> int | None:
        """N for a process on N discrete steps (sampling grids snap to n / N), else None."""
        return None

    # ------------------------------------------------------------------ shared
    def log_snr(self, t: Times) -> Times:
        """Return log(alpha_t^2 / sigma_t^2), decreasing in t."""
        return 2.0 * (jnp.log(self.alpha(t)) - jnp.log(self.sigma(t)))

    def marginal(
        self, x0: Float[Array, " b *event"], t: Times
    ) -> tuple[Float[Array, " b *event"], Array]:
        """Return the mean ``alpha_t x0`` and std ``sigma_t`` of q(x_t | x0).

        Args:
          x0: ``[B, *event]`` data.
          t: scalar or ``[B]`` times.

        Returns:
          ``(mean [B, *event], std)`` with std broadcastable against the mean.
        """
        a, s = _expand(self.alpha(t), x0), _expand(self.sigma(t), x0)
        return a * x0, s

    def perturb(
        self, key: Array, x0: Float[Array, " b *event"], t: Times
    ) -> tuple[Float[Array, " b *event"], Float[Array, " b *event"]]:
        """Draw x_t ~ q(x_t | x0); return ``(x_t, eps)`` with x_t = alpha_t x0 + sigma_t eps."""
        eps = jax.random.normal(key, x0.shape, x0.dtype)
        mean, std = self.marginal(x0, t)
        return mean + std * eps, eps

    def sde(self, t: Times) -> tuple[Times, Times]:
        """Return the forward SDE's coefficients ``(f(t), g(t)^2)``: dx = f x dt + g dW.

        f = d log alpha / dt and g^2 = d sigma^2 / dt - 2 f sigma^2, by forward-mode autodiff.
        """
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        ones = jnp.ones_like(t)
        _, dlog_a = jax.jvp(lambda u: jnp.log(self.alpha(u)), (t,), (ones,))
        var, dvar = jax.jvp(lambda u: self.sigma(u) ** 2, (t,), (ones,))
        return dlog_a, dvar - 2.0 * dlog_a * var

    def posterior(
        self, x_t: Float[Array, " b *event"], x0: Float[Array, " b *event"], t: Times, s: Times
    ) -> tuple[Float[Array, " b *event"], Array]:
        """Return the mean and std of q(x_s | x_t, x0) for times s < t (module docstring)."""
        a_t, s_t = _expand(self.alpha(t), x_t), _expand(self.sigma(t), x_t)
        a_s, s_s = _expand(self.alpha(s), x_t), _expand(self.sigma(s), x_t)
        a_ts = a_t / a_s
        var_ts = s_t**2 - a_ts**2 * s_s**2
        mean = (a_ts * s_s**2 / s_t**2) * x_t + (a_s * var_ts / s_t**2) * x0
        std = jnp.sqrt(jnp.maximum(var_ts * s_s**2 / s_t**2, 0.0))
        return mean, std

    def prior_sample(
        self, key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32
    ) -> Float[Array, " b *event"]:
        """Draw ``shape`` from the prior N(0, prior_std^2 I)."""
        return self.prior_std * jax.random.normal(key, shape, dtype)

    def prior_log_prob(self, x: Float[Array, " b *event"]) -> Float[Array, " b"]:
        """Return log N(x; 0, prior_std^2 I) summed over all but the first axis: ``[B]``."""
        d = math.prod(x.shape[1:])
        sq = jnp.sum((x / self.prior_std).reshape(x.shape[0], -1) ** 2, axis=-1)
        return -0.5 * sq - d * (math.log(self.prior_std) + 0.5 * math.log(2 * math.pi))

    def t_from_log_snr(
        self,
        log_snr: Times,
        iterations: int = 100,
        *,
        lo: float | None = None,
        hi: float | None = None,
    ) -> Times:
        """Invert ``log_snr`` (monotone decreasing) on [lo, hi] by bisection.

        Args:
          log_snr: the target log-SNR values, any shape.
          iterations: bisection steps (100 reach the float64 resolution on any unit interval).
          lo: the earliest time searched (default ``t_min``; may be below it, e.g. 0).
          hi: the latest time searched (default ``t_max``).

        Returns:
          t with log_snr(t) = the target, clamped to [lo, hi].
        """
        target = jnp.asarray(log_snr, dtype=jnp.result_type(float))
        lo_t = jnp.full_like(target, self.t_min if lo is None else lo)
        hi_t = jnp.full_like(target, self.t_max if hi is None else hi)

        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            above = self.log_snr(mid) > target  # still too little noise: go later
            return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

        lo_t, hi_t = jax.lax.fori_loop(0, iterations, body, (lo_t, hi_t))
        return 0.5 * (lo_t + hi_t)

    def t_from_log_sigma(self, log_sigma: Times) -> Times:
        """Return the time at which log(sigma_t / alpha_t) = ``log_sigma``, in [t_min, t_max].

        A process whose time is its noise level (EDM) returns exp(log_sigma) for any value.
        """
        t = self.t_from_log_snr(-2.0 * jnp.asarray(log_sigma))
        return jnp.clip(t, self.t_min, self.t_max)

    def time_grid(
        self, num_steps: int, kind: str = "default", rho: float = 7.0, *, t_end: float | None = None
    ) -> Float[Array, " n"]:
        """Return ``num_steps + 1`` decreasing times from ``t_max`` to ``t_end``.

        Args:
          num_steps: number of intervals N (>= 1).
          kind: one of :data:`GRIDS`: ``"uniform"`` in t, ``"log-snr"`` (uniform in log-SNR, the
            DPM-Solver grid), ``"edm"`` (sigma_i = (s_max^(1/rho) + i/N (s_min^(1/rho) -
            s_max^(1/rho)))^rho, Karras et al. 2022, in sigma / alpha, mapped to t) or
            ``"default"`` (the process's ``default_grid``).
          rho: the EDM grid's exponent.
          t_end: the last time (default ``t_min``; the likelihood may start below it).

        Returns:
          ``[N + 1]`` times in the default float dtype (continuous: see :meth:`sampling_grid`).
        """
        if kind not in GRIDS:
            raise unknown_name("time grid", kind, GRIDS)
        if num_steps < 1:
            raise ConfigError(f"a time grid needs num_steps >= 1, got {num_steps}")
        if kind == "default":
            kind = self.default_grid
        t_end = self.t_min if t_end is None else t_end
        frac = jnp.linspace(0.0, 1.0, num_steps + 1)
        if kind == "uniform":
            return self.t_max + frac * (t_end - self.t_max)
        if kind == "log-snr":
            hi, lo = self.log_snr(t_end), self.log_snr(self.t_max)
            ts = self.t_from_log_snr(lo + frac * (hi - lo), lo=t_end)
        else:  # "edm"
            ratio = lambda t: self.sigma(t) / self.alpha(t)  # noqa: E731
            r_max, r_min = ratio(self.t_max), ratio(t_end)
            r = (r_max ** (1 / rho) + frac * (r_min ** (1 / rho) - r_max ** (1 / rho))) ** rho
            ts = self.t_from_log_snr(-2.0 * jnp.log(r), lo=t_end)
        return ts.at[0].set(self.t_max).at[-1].set(t_end)

    def sampling_grid(
        self, num_steps: int, kind: str = "default", rho: float = 7.0
    ) -> Float[Array, " n"]:
        """Return the ``[num_steps + 1]`` decreasing times a sampler steps on.

        The :meth:`time_grid` from ``t_max`` to ``t_min``; on a process with ``discrete_steps``
        N it is rounded to distinct step times k / N (so K <= N - 1; a coarse grid strides them).
        """
        ts = jnp.asarray(self.time_grid(int(num_steps), kind, rho), dtype=jnp.result_type(float))
        if self.discrete_steps is not None:
            ts = _snap_to_steps(ts, self.discrete_steps)
        return ts


def _snap_to_steps(ts: Float[Array, " n"], n: int) -> Float[Array, " n"]:
    """Round a decreasing grid from 1 to 1/n to step times k/n, keeping it strictly decreasing.

    With steps k_i = round(n t_i), first k_i >= K + 1 - i (room for the points still to come),
    then k_i <- min(k_i, k_{i-1} - 1), i.e. k = cummin(k + i) - i.
    """
    num_steps = ts.shape[0] - 1
    if num_steps > n - 1:
        raise ConfigError(
            f"the ddpm process has {n} steps, so a sampling grid has at most {n - 1} intervals; "
            f"got {num_steps} (lower nfe)"
        )
    idx = jnp.arange(num_steps + 1, dtype=ts.dtype)
    steps = jnp.maximum(jnp.floor(ts * n + 0.5), num_steps + 1 - idx)
    return (jax.lax.cummin(steps + idx) - idx) / n


def _expand(coef: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape a scalar or ``[B]`` coefficient to broadcast against ``[B, *event]``."""
    coef = jnp.asarray(coef)
    if coef.ndim == 0:
        return coef
    return coef.reshape(coef.shape + (1,) * (like.ndim - coef.ndim))
