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

Times may be scalars or arrays; every method broadcasts elementwise. The shared maths (posterior,
SDE, prior, log-SNR inverse, time grids) is :class:`~genjax_models.diffusion._process_maths.
ProcessBase`; what code outside may rely on is the :class:`ForwardProcess` protocol, whose
properties replace every test of a process's name:

=========  =======  =======  ==========  ========  ===========  ==========
name       default  solver   likelihood  discrete  noise        sigma_data
           grid     grid     grid        steps     feature
=========  =======  =======  ==========  ========  ===========  ==========
``ddpm``   uniform  log-snr  log-snr     N         time         0.5
``vp``     uniform  log-snr  uniform     None      time         0.5
``subvp``  uniform  log-snr  uniform     None      time         0.5
``ve``     uniform  log-snr  log-snr     None      log-sigma    0.5
``edm``    edm      edm      log-snr     None      log-sigma    field
=========  =======  =======  ==========  ========  ===========  ==========
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genjax_models.diffusion._process_maths import GRIDS, ProcessBase, Times
from genjax_models.errors import ConfigError, unknown_name


@runtime_checkable
class ForwardProcess(Protocol):
    """What samplers, losses and likelihoods may ask of a forward process (module docstring).

    Times are scalars or arrays; every method broadcasts elementwise. Besides the maths, a process
    answers the questions that would otherwise be tests of its name:

    - ``default_grid``: the time grid samplers step on by default (``"uniform"``; ``"edm"``, the
      rho-grid, on EDM);
    - ``solver_grid``: the grid of exponential integrators (DPM-Solver): ``"log-snr"``, or
      ``"edm"`` on EDM;
    - ``likelihood_grid``: the grid of the probability-flow log-likelihood (``"uniform"`` in t for
      VP / sub-VP, ``"log-snr"`` for VE, EDM and DDPM; see ``likelihood.pf_ode_log_prob``);
    - ``discrete_steps``: N for a process defined on N discrete steps t = n / N (DDPM), whose
      sampling grids are snapped to step times, else ``None``;
    - ``noise_feature_kind``: the noise-level input a network gets by default, ``"time"`` where t
      itself is a good feature (t in [0, 1] and the schedule spread over it: DDPM, VP, sub-VP) or
      ``"log-sigma"`` (EDM's c_noise = log(sigma / alpha) / 4; VE, EDM);
    - ``sigma_data``: the data standard deviation assumed by EDM's preconditioning and loss
      weight (0.5 unless the process sets it, as EDM does).
    """

    name: str

    @property
    def t_min(self) -> float: ...
    @property
    def t_max(self) -> float: ...
    @property
    def prior_std(self) -> float: ...
    @property
    def sigma_data(self) -> float: ...
    @property
    def default_grid(self) -> str: ...
    @property
    def solver_grid(self) -> str: ...
    @property
    def likelihood_grid(self) -> str: ...
    @property
    def discrete_steps(self) -> int | None: ...
    @property
    def noise_feature_kind(self) -> str: ...

    def alpha(self, t: Times) -> Times: ...
    def sigma(self, t: Times) -> Times: ...
    def log_snr(self, t: Times) -> Times: ...
    def t_from_log_snr(
        self, log_snr: Times, iterations: int = 100, *, lo: float | None = None,
        hi: float | None = None,
    ) -> Times: ...
    def t_from_log_sigma(self, log_sigma: Times) -> Times: ...
    def time_grid(
        self, num_steps: int, kind: str = "default", rho: float = 7.0, *, t_end: float | None = None
    ) -> Float[Array, " n"]: ...
    def sampling_grid(
        self, num_steps: int, kind: str = "default", rho: float = 7.0
    ) -> Float[Array, " n"]: ...
    def marginal(
        self, x0: Float[Array, " b *event"], t: Times
    ) -> tuple[Float[Array, " b *event"], Array]: ...
    def perturb(
        self, key: Array, x0: Float[Array, " b *event"], t: Times
    ) -> tuple[Float[Array, " b *event"], Float[Array, " b *event"]]: ...
    def sde(self, t: Times) -> tuple[Times, Times]: ...
    def posterior(
        self, x_t: Float[Array, " b *event"], x0: Float[Array, " b *event"], t: Times, s: Times
    ) -> tuple[Float[Array, " b *event"], Array]: ...
    def prior_sample(
        self, key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32
    ) -> Float[Array, " b *event"]: ...
    def prior_log_prob(self, x: Float[Array, " b *event"]) -> Float[Array, " b"]: ...


def _vp_log_alpha(t: jax.Array, beta_min: float, beta_max: float) -> jax.Array:
    """log alpha(t) = -1/2 int_0^t beta(u) du with beta linear from beta_min to beta_max."""
    return -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min


@dataclasses.dataclass(frozen=True)
class VP(ProcessBase):
    """Variance-preserving SDE (Song et al. 2021): dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW.

    alpha(t) = exp(-1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min), sigma^2 = 1 - alpha^2.
    DDPM's linear schedule with N = 1000 is its discretisation with beta_n = beta(n/N)/N.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3
    t_max: float = 1.0
    name: ClassVar[str] = "vp"
    likelihood_grid: ClassVar[str] = "uniform"
    noise_feature_kind: ClassVar[str] = "time"

    def alpha(self, t):
        return jnp.exp(_vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max))

    def sigma(self, t):
        log_alpha = _vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max)
        return jnp.sqrt(-jnp.expm1(2.0 * log_alpha))


@dataclasses.dataclass(frozen=True)
class SubVP(ProcessBase):
    """Sub-VP SDE (Song et al. 2021): alpha as VP, sigma = 1 - alpha^2 (<= the VP sigma)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3
    t_max: float = 1.0
    name: ClassVar[str] = "subvp"
    likelihood_grid: ClassVar[str] = "uniform"
    noise_feature_kind: ClassVar[str] = "time"

    def alpha(self, t):
        return jnp.exp(_vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max))

    def sigma(self, t):
        return -jnp.expm1(2.0 * _vp_log_alpha(jnp.asarray(t), self.beta_min, self.beta_max))


@dataclasses.dataclass(frozen=True)
class VE(ProcessBase):
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
class EDM(ProcessBase):
    """The EDM process (Karras et al. 2022): alpha = 1, sigma(t) = t, so time is the noise level.

    dx = sqrt(2 t) dW; the probability-flow ODE is dx/dt = (x - D(x, t)) / t with D the denoiser.
    ``sigma_data`` is the data standard deviation used by EDM's preconditioning and loss weight.
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    name: ClassVar[str] = "edm"
    default_grid: ClassVar[str] = "edm"
    solver_grid: ClassVar[str] = "edm"

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

    def t_from_log_sigma(self, log_sigma: Times) -> Times:
        """Return t = sigma = exp(log_sigma): the time is the noise level, for any value."""
        return jnp.exp(log_sigma)


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
class DDPM(ProcessBase):
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
    noise_feature_kind: ClassVar[str] = "time"

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
    def discrete_steps(self) -> int:
        """N: the process is defined on the step times n / N."""
        return int(self.num_steps)

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


PROCESSES: dict[str, type[ProcessBase]] = {
    "ddpm": DDPM, "vp": VP, "subvp": SubVP, "ve": VE, "edm": EDM,
}


def get_process(name: str, **kwargs: Any) -> ForwardProcess:
    """Build the forward process ``name`` (one of :data:`PROCESSES`) with keyword settings."""
    if name not in PROCESSES:
        raise unknown_name("forward process", name, PROCESSES)
    cls = PROCESSES[name]
    valid = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(kwargs) - valid)
    if bad:
        raise ConfigError(
            f"process {name!r} has no setting(s) {', '.join(bad)}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return cls(**kwargs)


__all__ = [
    "DDPM",
    "EDM",
    "GRIDS",
    "PROCESSES",
    "VE",
    "VP",
    "ForwardProcess",
    "ProcessBase",
    "SubVP",
    "ddpm_betas",
    "get_process",
]
