"""Forward (noising) processes x_t = alpha(t) x0 + sigma(t) eps, eps ~ N(0, I).

Every process here is Gaussian given x0, so it is fully described by two scalar functions of time,
the signal scale ``alpha(t)`` and the noise scale ``sigma(t)``; from them

- the marginal q(x_t | x0) = N(alpha_t x0, sigma_t^2 I) and the log signal-to-noise ratio
  ``log_snr(t) = log(alpha_t^2 / sigma_t^2)`` (decreasing in t);
- the forward SDE dx = f(t) x dt + g(t) dW with f = d log alpha / dt and
  g^2 = d sigma^2 / dt - 2 f sigma^2 (computed by autodiff, so every process gets it for free);
- the Gaussian posterior q(x_s | x_t, x0) for s < t (what an ancestral sampler steps with):
  alpha_{t|s} = alpha_t / alpha_s, sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2,
  mean = alpha_{t|s} sigma_s^2 / sigma_t^2 x_t + alpha_s sigma_{t|s}^2 / sigma_t^2 x0,
  var = sigma_{t|s}^2 sigma_s^2 / sigma_t^2;
- the prior N(0, prior_std^2 I) that sampling starts from at ``t_max`` and its log-density.

Processes (all frozen dataclasses, hashable, so they can be static under jit):

=========  ===============================================  ==========================
name       alpha(t), sigma(t)                               time domain, prior std
=========  ===============================================  ==========================
``ddpm``   discrete beta_1..beta_N (linear or cosine);      t in [0, 1], t_n = n / N;
           alpha_bar_n = prod (1 - beta_i), alpha(t_n) =     prior std 1
           sqrt(alpha_bar_n), log alpha_bar linear between
           grid points; sigma = sqrt(1 - alpha^2)
``vp``     alpha = exp(-1/2 int_0^t beta), beta linear       t in [t_min, 1], prior std 1
           from beta_min to beta_max; sigma^2 = 1 - alpha^2
``subvp``  alpha as VP; sigma = 1 - alpha^2                  t in [t_min, 1], prior std 1
``ve``     alpha = 1; sigma = sigma_min (sigma_max /          t in [t_min, 1], prior std
           sigma_min)^t                                      sigma_max
``edm``    alpha = 1; sigma(t) = t (Karras et al. 2022)      t = sigma in [sigma_min,
                                                             sigma_max], prior std sigma_max
=========  ===============================================  ==========================

Times may be scalars or arrays; every method broadcasts elementwise.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ConfigError, unknown_name


class _Process:
    """Shared maths of x_t = alpha(t) x0 + sigma(t) eps given ``alpha`` and ``sigma``."""

    name: ClassVar[str]
    t_min: float
    t_max: float

    # ------------------------------------------------------------- to override
    def alpha(self, t: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def sigma(self, t: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def prior_std(self) -> float:
        """Standard deviation of the Gaussian prior N(0, prior_std^2 I) at ``t_max``."""
        return 1.0

    # ------------------------------------------------------------------ shared
    def log_snr(self, t: jax.Array) -> jax.Array:
        """Return log(alpha_t^2 / sigma_t^2), decreasing in t."""
        return 2.0 * (jnp.log(self.alpha(t)) - jnp.log(self.sigma(t)))

    def marginal(self, x0: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return the mean ``alpha_t x0`` and std ``sigma_t`` of q(x_t | x0).

        Args:
          x0: ``[B, *event]`` data.
          t: scalar or ``[B]`` times.

        Returns:
          ``(mean [B, *event], std)`` with std broadcastable against the mean.
        """
        a, s = _expand(self.alpha(t), x0), _expand(self.sigma(t), x0)
        return a * x0, s

    def perturb(self, key: jax.Array, x0: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Draw x_t ~ q(x_t | x0); return ``(x_t, eps)`` with x_t = alpha_t x0 + sigma_t eps."""
        eps = jax.random.normal(key, x0.shape, x0.dtype)
        mean, std = self.marginal(x0, t)
        return mean + std * eps, eps

    def sde(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return the forward SDE's coefficients ``(f(t), g(t)^2)``: dx = f x dt + g dW.

        f = d log alpha / dt and g^2 = d sigma^2 / dt - 2 f sigma^2, by forward-mode autodiff.
        """
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        ones = jnp.ones_like(t)
        log_a, dlog_a = jax.jvp(lambda u: jnp.log(self.alpha(u)), (t,), (ones,))
        var, dvar = jax.jvp(lambda u: self.sigma(u) ** 2, (t,), (ones,))
        del log_a
        return dlog_a, dvar - 2.0 * dlog_a * var

    def posterior(
        self, x_t: jax.Array, x0: jax.Array, t: jax.Array, s: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Return the mean and std of q(x_s | x_t, x0) for times s < t (module docstring)."""
        a_t, s_t = _expand(self.alpha(t), x_t), _expand(self.sigma(t), x_t)
        a_s, s_s = _expand(self.alpha(s), x_t), _expand(self.sigma(s), x_t)
        a_ts = a_t / a_s
        var_ts = s_t**2 - a_ts**2 * s_s**2
        mean = (a_ts * s_s**2 / s_t**2) * x_t + (a_s * var_ts / s_t**2) * x0
        std = jnp.sqrt(jnp.maximum(var_ts * s_s**2 / s_t**2, 0.0))
        return mean, std

    def prior_sample(self, key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        """Draw ``shape`` from the prior N(0, prior_std^2 I)."""
        return self.prior_std * jax.random.normal(key, shape, dtype)

    def prior_log_prob(self, x: jax.Array) -> jax.Array:
        """Return log N(x; 0, prior_std^2 I) summed over all but the first axis: ``[B]``."""
        d = math.prod(x.shape[1:])
        sq = jnp.sum((x / self.prior_std).reshape(x.shape[0], -1) ** 2, axis=-1)
        return -0.5 * sq - d * (math.log(self.prior_std) + 0.5 * math.log(2 * math.pi))

    def t_from_log_snr(self, log_snr: jax.Array, iterations: int = 100) -> jax.Array:
        """Invert ``log_snr`` on [t_min, t_max] by bisection (it is monotone decreasing)."""
        target = jnp.asarray(log_snr, dtype=jnp.result_type(float))
        lo = jnp.full_like(target, self.t_min)
        hi = jnp.full_like(target, self.t_max)

        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            above = self.log_snr(mid) > target  # still too little noise: go later
            return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

        lo, hi = jax.lax.fori_loop(0, iterations, body, (lo, hi))
        return 0.5 * (lo + hi)

    def time_grid(self, num_steps: int, kind: str = "default", rho: float = 7.0) -> jax.Array:
        """Return ``num_steps + 1`` decreasing times from ``t_max`` to ``t_min``.

        Args:
          num_steps: number of intervals N (>= 1).
          kind: ``"uniform"`` in t, ``"log-snr"`` (uniform in log-SNR, the DPM-Solver grid),
            ``"edm"`` (sigma_i = (s_max^(1/rho) + i/N (s_min^(1/rho) - s_max^(1/rho)))^rho, Karras
            et al. 2022, mapped to t through sigma/alpha) or ``"default"`` (the process's usual grid:
            ``"edm"`` for ``edm``, ``"uniform"`` otherwise).
          rho: the EDM grid's exponent.
        """
        if num_steps < 1:
            raise ConfigError(f"a time grid needs num_steps >= 1, got {num_steps}")
        if kind == "default":
            kind = "edm" if self.name == "edm" else "uniform"
        frac = jnp.linspace(0.0, 1.0, num_steps + 1)
        if kind == "uniform":
            return self.t_max + frac * (self.t_min - self.t_max)
        if kind == "log-snr":
            hi, lo = self.log_snr(self.t_min), self.log_snr(self.t_max)
            ts = self.t_from_log_snr(lo + frac * (hi - lo))
            return ts.at[0].set(self.t_max).at[-1].set(self.t_min)
        if kind == "edm":
            ratio = lambda t: self.sigma(t) / self.alpha(t)  # noqa: E731
            r_max, r_min = ratio(self.t_max), ratio(self.t_min)
            r = (r_max ** (1 / rho) + frac * (r_min ** (1 / rho) - r_max ** (1 / rho))) ** rho
            ts = self.t_from_log_snr(-2.0 * jnp.log(r))
            return ts.at[0].set(self.t_max).at[-1].set(self.t_min)
        raise unknown_name("time grid", kind, ("default", "uniform", "log-snr", "edm"))


def _expand(coef: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape a scalar or ``[B]`` coefficient to broadcast against ``[B, *event]``."""
    coef = jnp.asarray(coef)
    if coef.ndim == 0:
        return coef
    return coef.reshape(coef.shape + (1,) * (like.ndim - coef.ndim))


def _vp_log_alpha(t: jax.Array, beta_min: float, beta_max: float) -> jax.Array:
    """log alpha(t) = -1/2 int_0^t beta(u) du with beta linear from beta_min to beta_max."""
    return -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min


@dataclasses.dataclass(frozen=True)
class VP(_Process):
    """Variance-preserving SDE (Song et al. 2021): dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW.

    alpha(t) = exp(-1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min), sigma^2 = 1 - alpha^2.
    DDPM's linear schedule with N = 1000 is its discretisation with beta_n = beta(n/N)/N.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3
    t_max: float = 1.0
    name: ClassVar[str] = "vp"

    def alpha(self, t):
        return jnp.exp(_vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max))

    def sigma(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * _vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max)))


@dataclasses.dataclass(frozen=True)
class SubVP(_Process):
    """Sub-VP SDE (Song et al. 2021): alpha as VP, sigma = 1 - alpha^2 (<= the VP sigma)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3
    t_max: float = 1.0
    name: ClassVar[str] = "subvp"

    def alpha(self, t):
        return jnp.exp(_vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max))

    def sigma(self, t):
        return -jnp.expm1(2.0 * _vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max))


@dataclasses.dataclass(frozen=True)
class VE(_Process):
    """Variance-exploding SDE (NCSN as an SDE): alpha = 1, sigma(t) = s_min (s_max / s_min)^t.

    dx = sqrt(d sigma^2 / dt) dW. The data distribution is taken at t = 0 (where sigma = s_min);
    samplers stop at ``t_min``.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float = 1e-5
    t_max: float = 1.0
    name: ClassVar[str] = "ve"

    def alpha(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def sigma(self, t):
        t = jnp.asarray(t)
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    @property
    def prior_std(self) -> float:
        return float(self.sigma_max)


@dataclasses.dataclass(frozen=True)
class EDM(_Process):
    """The EDM process (Karras et al. 2022): alpha = 1, sigma(t) = t, so time is the noise level.

    dx = sqrt(2 t) dW; the probability-flow ODE is dx/dt = (x - D(x, t)) / t with D the denoiser.
    ``sigma_data`` is the data standard deviation used by EDM's preconditioning and loss weight.
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    name: ClassVar[str] = "edm"

    @property
    def t_min(self) -> float:
        return float(self.sigma_min)

    @property
    def t_max(self) -> float:
        return float(self.sigma_max)

    def alpha(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=jnp.result_type(float)))

    def sigma(self, t):
        return jnp.asarray(t, dtype=jnp.result_type(float))

    @property
    def prior_std(self) -> float:
        return float(self.sigma_max)


def ddpm_betas(num_steps: int, schedule: str) -> np.ndarray:
    """Return DDPM's ``[N]`` betas: ``"linear"`` 1e-4 -> 0.02 scaled by 1000 / N (Ho et al. 2020;
    the same total noise for any N) or ``"cosine"`` (Nichol & Dhariwal 2021, s = 0.008); both are
    clipped at 0.999."""
    if schedule == "linear":
        scale = 1000.0 / num_steps
        betas = np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)
        return np.minimum(betas, 0.999)  # N < 51 would otherwise reach beta >= 1
    if schedule == "cosine":
        s = 0.008
        steps = np.arange(num_steps + 1, dtype=np.float64) / num_steps
        f = np.cos((steps + s) / (1 + s) * np.pi / 2) ** 2
        alpha_bar = f / f[0]
        return np.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.0, 0.999)
    raise unknown_name("beta schedule", schedule, ("linear", "cosine"))


@dataclasses.dataclass(frozen=True)
class DDPM(_Process):
    """The discrete DDPM forward process (Ho et al. 2020) on N steps, read in continuous time.

    q(x_n | x_{n-1}) = N(sqrt(1 - beta_n) x_{n-1}, beta_n I), so q(x_n | x0) =
    N(sqrt(alpha_bar_n) x0, (1 - alpha_bar_n) I) with alpha_bar_n = prod_{i<=n} (1 - beta_i).
    Step n sits at time t_n = n / N; between grid points log alpha_bar is linear in t, which makes
    alpha(t) exact at every step and gives continuous-time samplers and the PF-ODE a well-defined
    process. ``t_min = 1/N`` (the first noisy step), ``t_max = 1``.
    """

    num_steps: int = 1000
    schedule: str = "linear"
    name: ClassVar[str] = "ddpm"

    def __post_init__(self) -> None:
        if isinstance(self.num_steps, bool) or int(self.num_steps) < 2:
            raise ConfigError(f"DDPM needs num_steps >= 2, got {self.num_steps!r}")
        ddpm_betas(2, self.schedule)  # validates the schedule name

    @property
    def t_min(self) -> float:
        return 1.0 / self.num_steps

    @property
    def t_max(self) -> float:
        return 1.0

    @property
    def betas(self) -> jax.Array:
        """The ``[N]`` betas beta_1..beta_N."""
        return jnp.asarray(ddpm_betas(self.num_steps, self.schedule))

    def _log_alpha_bar_grid(self) -> np.ndarray:
        """log alpha_bar at t = 0, 1/N, ..., 1 (``[N + 1]``, starting at 0)."""
        log_ab = np.cumsum(np.log1p(-ddpm_betas(self.num_steps, self.schedule)))
        return np.concatenate([[0.0], log_ab])

    def alpha(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        grid = jnp.asarray(self._log_alpha_bar_grid(), dtype=t.dtype)
        times = jnp.linspace(0.0, 1.0, self.num_steps + 1, dtype=t.dtype)
        return jnp.exp(0.5 * jnp.interp(t, times, grid))

    def sigma(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * jnp.log(self.alpha(t))))

    def step_times(self) -> jax.Array:
        """The N + 1 grid times n / N, n = N..0 (decreasing), for ancestral sampling."""
        return jnp.linspace(1.0, 0.0, self.num_steps + 1)


PROCESSES: dict[str, type] = {"ddpm": DDPM, "vp": VP, "subvp": SubVP, "ve": VE, "edm": EDM}
ForwardProcess = Any  # any of the classes in PROCESSES


def get_process(name: str, **kwargs: Any) -> ForwardProcess:
    """Build the forward process ``name`` (one of :data:`PROCESSES`) with keyword settings."""
    if name not in PROCESSES:
        raise unknown_name("forward process", name, PROCESSES)
    cls = PROCESSES[name]
    valid = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(kwargs) - valid)
    if bad:
        raise ConfigError(f"process {name!r} has no setting(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
    return cls(**kwargs)
