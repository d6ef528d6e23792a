"""Diffusion models through the common protocol: ``ddpm``, ``score-sde`` and ``edm``.

One class, :class:`DiffusionModel`, holds the whole recipe; the three registered models are the same
class with the defaults of their papers:

===============  ==========================  ==========  ==============  ====================
model            forward process             loss        network output  default sampler
===============  ==========================  ==========  ==============  ====================
``ddpm``         DDPM, N = 1000, linear      ``ddpm``    eps             ``ancestral``
``score-sde``    ``sde`` = vp | subvp | ve   ``dsm``     eps (ve: EDM    ``pc``
                                                         preconditioned)
``edm``          EDM, sigma in [0.002, 80]   ``edm``     preconditioned  ``heun`` (35 NFE)
===============  ==========================  ==========  ==============  ====================

Every model reduces its network to the denoiser ``D(x_t, t) ~ E[x0 | x_t]``
(:func:`~genjax_models.diffusion.parameterization.make_denoiser`), and the losses, samplers and
likelihood all take that denoiser, so any piece can be swapped with ``--set``.

**Data space.** Image data in [0, 1] (quantised datasets, usually uniformly dequantised) are
modelled as y = 2 x - 1 in [-1, 1]; ``log_prob`` returns the density of x, i.e. it adds the
Jacobian D log 2 of that rescaling. The dequantisation term -D log L is added by the evaluator
(``eval.nll_in_data_space``), in one place for every family. Low-dimensional continuous data are
modelled as they are.

**Likelihood.** ``log_prob(..., estimator="pf-ode")`` solves the probability-flow ODE from
``t_min`` to ``t_max`` with the instantaneous change of variables (exact divergence for D <= 16,
Hutchinson's estimate with Rademacher probes otherwise; ``trace=`` chooses) and the Gaussian prior
at ``t_max``: the density of the data as perturbed to ``t_min`` (1e-3 for VP, sigma = 0.002 for
EDM), the usual convention of Song et al. (2021). ``estimator="vlb"`` (``ddpm`` only) is DDPM's
discrete-time variational bound.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Self

import jax
import jax.numpy as jnp

from genjax_models.data.spec import DataSpec
from genjax_models.diffusion import samplers as sampler_lib
from genjax_models.diffusion.likelihood import ddpm_vlb, pf_ode_log_prob
from genjax_models.diffusion.losses import LOSSES, TIME_SAMPLING, WEIGHTINGS, get_loss
from genjax_models.diffusion.networks import make_network
from genjax_models.diffusion.parameterization import PREDICTIONS, make_denoiser
from genjax_models.diffusion.processes import get_process
from genjax_models.errors import ConfigError, ShapeError, unknown_name
from genjax_models.model import LogProbKind, Metrics, Params, check_overrides
from genjax_models.validation import positive_int

ESTIMATORS: tuple[str, ...] = ("pf-ode", "vlb")
TRACES: tuple[str, ...] = ("auto", "exact", "hutchinson")
NETWORKS: tuple[str, ...] = ("auto", "mlp", "unet")
SDES: tuple[str, ...] = ("vp", "subvp", "ve")
# Largest D for which trace="auto" uses the exact divergence (D JVPs per ODE stage).
EXACT_TRACE_MAX_DIMS = 16


@dataclasses.dataclass(frozen=True)
class DiffusionModel:
    """A denoising diffusion / score-based model (see the module docstring).

    Attributes:
      event_shape: shape of one example: ``(D,)`` for vectors, ``(H, W, C)`` for images.
      process: forward process name (``ddpm``, ``vp``, ``subvp``, ``ve``, ``edm``).
      num_steps: DDPM's N (``process="ddpm"`` only).
      schedule: DDPM's beta schedule, ``"linear"`` or ``"cosine"``.
      objective: the training loss, ``"ddpm"``, ``"dsm"``, ``"v"`` or ``"edm"`` (:mod:`~genjax_models.diffusion.losses`).
      weighting: lambda(t) of the ``dsm`` objective: ``"unit"``, ``"sigma2"`` or ``"likelihood"``.
      time_sampling: ``"uniform"``, ``"antithetic"`` or ``"stratified"``.
      prediction: what the raw network predicts without preconditioning (eps, x0, v, score).
      preconditioning: EDM's c_skip / c_out / c_in / c_noise around the network.
      network: ``"auto"`` (MLP for vectors, U-Net for images), ``"mlp"`` or ``"unet"``.
      hidden: MLP hidden widths.
      channels: U-Net base width; ``channel_mult`` its per-level multipliers.
      image_scaling: model [0, 1] image data as 2 x - 1 (``None``: automatic from the data spec).
      sampler, nfe: ``sample``'s default sampler and budget.
      eval_steps: ODE steps of the ``pf-ode`` likelihood (RK4, 4 NFE each).
      trace: divergence in the ``pf-ode`` likelihood: ``"auto"``, ``"exact"`` or ``"hutchinson"``.
      num_probes: Rademacher probes per example for the Hutchinson trace.
    """

    event_shape: tuple[int, ...]
    process: str = "vp"
    num_steps: int = 1000
    schedule: str = "linear"
    objective: str = "dsm"
    weighting: str = "sigma2"
    time_sampling: str = "antithetic"
    prediction: str = "eps"
    preconditioning: bool = False
    network: str = "auto"
    hidden: tuple[int, ...] = (256, 256, 256)
    channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    image_scaling: bool | None = None
    sampler: str = "euler-maruyama"
    nfe: int = 200
    eval_steps: int = 100
    trace: str = "auto"
    num_probes: int = 1

    name: ClassVar[str] = "diffusion"
    log_prob_kind: ClassVar[LogProbKind] = "exact"
    preview_options: ClassVar[dict[str, Any]] = {}
    default_run: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(n) for n in self.event_shape)
            hidden = tuple(int(n) for n in self.hidden)
            mult = tuple(int(n) for n in self.channel_mult)
        except TypeError as err:
            raise ConfigError(
                f"event_shape, hidden and channel_mult must be sequences of ints, got "
                f"{self.event_shape!r}, {self.hidden!r}, {self.channel_mult!r}"
            ) from err
        if not shape or any(n < 1 for n in shape):
            raise ConfigError(f"event_shape must be a non-empty tuple of positive ints, got {shape}")
        object.__setattr__(self, "event_shape", shape)
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "channel_mult", mult)
        kwargs = {"num_steps": self.num_steps, "schedule": self.schedule} if self.process == "ddpm" else {}
        get_process(self.process, **kwargs)  # validates the name and DDPM settings
        if self.objective not in LOSSES:
            raise unknown_name("objective", self.objective, LOSSES)
        if self.objective == "ddpm" and self.process != "ddpm":
            raise ConfigError(f"objective='ddpm' needs process='ddpm' (got {self.process!r}); use objective='dsm'")
        for field, choices in (
            ("weighting", WEIGHTINGS),
            ("time_sampling", TIME_SAMPLING),
            ("prediction", PREDICTIONS),
            ("network", NETWORKS),
            ("trace", TRACES),
            ("sampler", tuple(sampler_lib.SAMPLERS)),
        ):
            if getattr(self, field) not in choices:
                raise unknown_name(field, getattr(self, field), choices)
        if self.preconditioning and self.prediction != "x0":
            raise ConfigError("preconditioning=True needs prediction='x0' (the network is EDM's F)")
        if len(shape) != 3 and self.network == "unet":
            raise ConfigError(f"network='unet' needs image data [H, W, C], got event_shape {shape}")
        for field in ("nfe", "eval_steps", "num_probes", "channels"):
            positive_int(field, getattr(self, field))
        sampler_lib.steps_for_nfe(self.sampler, self.nfe)  # a budget too small fails here

    @classmethod
    def from_spec(cls, spec: DataSpec, **overrides: Any) -> Self:
        """Build the model for data described by ``spec``; ``overrides`` win.

        Image-like data (quantised, values in [0, 1]) are rescaled to [-1, 1]; binary data are
        rejected (a diffusion model needs a density: dequantise instead).
        """
        check_overrides(cls, overrides)
        if spec.data_type == "binary":
            raise ConfigError(
                f"{cls.name} models continuous data; got binarised data. Use "
                "--set data.binarize=none --set data.dequantize=uniform"
            )
        kwargs: dict[str, Any] = {"event_shape": tuple(spec.event_shape)}
        kwargs["image_scaling"] = spec.num_levels is not None
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------------ pieces
    @property
    def num_dims(self) -> int:
        """D, the number of scalar dimensions of one example."""
        return math.prod(self.event_shape)

    @property
    def forward_process(self):
        """The forward process object."""
        kwargs = {"num_steps": self.num_steps, "schedule": self.schedule} if self.process == "ddpm" else {}
        return get_process(self.process, **kwargs)

    @property
    def scales_images(self) -> bool:
        """Whether data are modelled as 2 x - 1."""
        if self.image_scaling is None:
            return len(self.event_shape) == 3
        return bool(self.image_scaling)

    def network_module(self):
        """Return the Flax network ``(x [B, *event], noise_feature [B]) -> [B, *event]``."""
        kind = self.network
        if kind == "auto":
            kind = "unet" if len(self.event_shape) == 3 else "mlp"
        if kind == "mlp":
            return make_network(self.event_shape, kind="mlp", hidden=self.hidden)
        return make_network(self.event_shape, kind="unet", base_width=self.channels, channel_mults=self.channel_mult)

    def check_batch(self, batch: jax.Array) -> jax.Array:
        """Check ``batch`` is ``[B, *event_shape]`` and return it as floats in model space."""
        batch = jnp.asarray(batch)
        if batch.ndim != len(self.event_shape) + 1 or tuple(batch.shape[1:]) != self.event_shape:
            raise ShapeError(
                f"expected batch of shape [B, {', '.join(map(str, self.event_shape))}] "
                f"(i.e. [B, *event_shape]), got {tuple(batch.shape)}"
            )
        if not jnp.issubdtype(batch.dtype, jnp.floating):
            batch = batch.astype(jnp.float32)
        return 2.0 * batch - 1.0 if self.scales_images else batch

    def to_data_space(self, y: jax.Array) -> jax.Array:
        """Map model-space samples back to data space (images clipped to [0, 1])."""
        return jnp.clip((y + 1.0) / 2.0, 0.0, 1.0) if self.scales_images else y

    def denoiser(self, params: Params):
        """Return ``denoise_fn(x, t) -> E[x0 | x_t]`` estimate (model space) for ``params``."""
        net = self.network_module()
        return make_denoiser(
            lambda x, c: net.apply({"params": params}, x, c),
            self.forward_process,
            prediction="x0" if self.preconditioning else self.prediction,
            preconditioning=self.preconditioning,
        )

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: jax.Array) -> Params:
        """Initialise the network's Flax ``params`` on a batch."""
        y = self.check_batch(batch)
        return self.network_module().init(key, y, jnp.zeros(y.shape[:1], y.dtype))["params"]

    def loss(self, params: Params, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, Metrics]:
        """Compute the configured diffusion loss on a batch (mean over batch and dimensions).

        The metrics include the loss's own breakdown and, for continuous-time losses, an unbiased
        estimate of the negative ELBO in bits/dim of model space (``bound_bpd``).
        """
        y = self.check_batch(batch)
        options: dict[str, Any] = {"prediction": "x0", "time_sampling": self.time_sampling}
        if self.objective == "dsm":
            options["weighting"] = self.weighting
        loss, metrics = get_loss(self.objective)(self.denoiser(params), self.forward_process, y, key, **options)
        return loss, dict(metrics)

    def sample(
        self,
        params: Params,
        key: jax.Array,
        num: int,
        sampler: str | None = None,
        nfe: int | None = None,
        **options: Any,
    ) -> jax.Array:
        """Draw ``num`` examples with a sampler of :mod:`~genjax_models.diffusion.samplers`.

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          sampler: sampler name (default: the model's ``sampler``).
          nfe: network-evaluation budget (default: the model's ``nfe``).
          **options: the sampler's own options (e.g. ``eta`` for ddim, ``grid``, ``order``).

        Returns:
          ``[num, *event_shape]`` in data space (images clipped to [0, 1]).
        """
        name = self.sampler if sampler is None else sampler
        budget = self.nfe if nfe is None else int(nfe)
        if name not in sampler_lib.SAMPLERS:
            raise unknown_name("sampler", name, sampler_lib.SAMPLERS)
        y = sampler_lib.sample(
            name, self.denoiser(params), self.forward_process, key, (num, *self.event_shape), budget, **options
        )
        return self.to_data_space(y)

    def _resolve_trace(self, trace: str | None) -> str:
        trace = self.trace if trace is None else trace
        if trace not in TRACES:
            raise unknown_name("trace", trace, TRACES)
        if trace == "auto":
            return "exact" if self.num_dims <= EXACT_TRACE_MAX_DIMS else "hutchinson"
        return trace

    def _check_estimator(self, estimator: str) -> None:
        if estimator not in ESTIMATORS:
            raise unknown_name("estimator", estimator, ESTIMATORS)
        if estimator == "vlb" and self.process != "ddpm":
            raise ConfigError(f"estimator 'vlb' is DDPM's discrete bound: it needs process='ddpm' (got {self.process!r}); use 'pf-ode'")

    def log_prob(
        self,
        params: Params,
        batch: jax.Array,
        key: jax.Array,
        estimator: str = "pf-ode",
        trace: str | None = None,
        num_steps: int | None = None,
        num_probes: int | None = None,
    ) -> jax.Array:
        """Compute log p(x) per example in nats, in data space (see the module docstring).

        Args:
          params: model parameters.
          batch: ``[B, *event_shape]`` data.
          key: PRNG key (Hutchinson probes; VLB noise).
          estimator: ``"pf-ode"`` (default) or ``"vlb"`` (``process="ddpm"`` only).
          trace: ``"auto"``, ``"exact"`` or ``"hutchinson"`` (pf-ode; default the model's).
          num_steps: RK4 steps of the pf-ode solve (default ``eval_steps``).
          num_probes: Hutchinson probes per example (default ``num_probes``).

        Returns:
          ``[B]`` log-densities: exact up to ODE error (pf-ode, exact trace), an unbiased estimate
          (Hutchinson) or a stochastic lower bound (vlb).
        """
        self._check_estimator(estimator)
        y = self.check_batch(batch)
        jacobian = self.num_dims * math.log(2.0) if self.scales_images else 0.0
        denoise = self.denoiser(params)
        if estimator == "vlb":
            log_p, _ = ddpm_vlb(denoise, self.forward_process, y, key)
            return log_p + jacobian
        log_p = pf_ode_log_prob(
            denoise,
            self.forward_process,
            y,
            key,
            num_steps=self.eval_steps if num_steps is None else int(num_steps),
            method="rk4",
            divergence=self._resolve_trace(trace),
            num_probes=self.num_probes if num_probes is None else int(num_probes),
        )
        return log_p + jacobian

    def estimator(self, estimator: str = "pf-ode", trace: str | None = None, num_steps: int | None = None, num_probes: int | None = None) -> str:
        """Name the estimator: ``"pf-ode"`` or ``"vlb"``."""
        del trace, num_steps, num_probes
        self._check_estimator(estimator)
        return estimator

    def estimator_kind(self, estimator: str = "pf-ode", trace: str | None = None, **_: Any) -> LogProbKind:
        """Return what ``log_prob`` with these options is: exact, an estimate or a lower bound."""
        self._check_estimator(estimator)
        if estimator == "vlb":
            return "lower-bound"
        return "exact" if self._resolve_trace(trace) == "exact" else "estimate"

    def estimator_details(self, estimator: str = "pf-ode", trace: str | None = None, num_steps: int | None = None, num_probes: int | None = None) -> dict[str, Any]:
        """Return the settings behind the estimate (for the eval record)."""
        self._check_estimator(estimator)
        if estimator == "vlb":
            return {"num_steps": self.num_steps, "reverse_variance": "beta", "decoder_variance": "posterior"}
        resolved = self._resolve_trace(trace)
        details: dict[str, Any] = {
            "trace": resolved,
            "ode_method": "rk4",
            "ode_steps": self.eval_steps if num_steps is None else int(num_steps),
            "t_min": float(self.forward_process.t_min),
        }
        if resolved == "hutchinson":
            details["num_probes"] = self.num_probes if num_probes is None else int(num_probes)
        return details


_TRAIN_2D = {"steps": 4000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.999, "log_every": 100,
             "checkpoint_every": 1000, "steps_per_call": 50, "num_preview_samples": 1000}
_TRAIN_IMAGES = {"steps": 3000, "batch_size": 64, "lr": 2e-3, "ema_decay": 0.999, "log_every": 100,
                 "checkpoint_every": 1000, "steps_per_call": 20, "num_preview_samples": 64}


@dataclasses.dataclass(frozen=True)
class DDPMModel(DiffusionModel):
    """DDPM (Ho et al. 2020): discrete linear-beta process, eps loss, ancestral sampling."""

    process: str = "ddpm"
    objective: str = "ddpm"
    sampler: str = "ancestral"
    nfe: int = 1000
    time_sampling: str = "uniform"

    name: ClassVar[str] = "ddpm"
    default_run: ClassVar[dict[str, Any]] = {
        "data": "digits", "quantised_data_config": {"dequantize": "uniform"}, "train": dict(_TRAIN_IMAGES),
    }


@dataclasses.dataclass(frozen=True)
class ScoreSDE(DiffusionModel):
    """Score SDE (Song et al. 2021): ``sde`` = vp | subvp | ve, DSM loss, predictor-corrector sampling.

    ``sde`` selects the forward process; VE uses EDM preconditioning (its x_t reaches std 50).
    """

    sde: str = "vp"
    process: str = ""
    sampler: str = "pc"
    nfe: int = 400

    name: ClassVar[str] = "score-sde"
    default_run: ClassVar[dict[str, Any]] = {
        "data": "eight-gaussians", "quantised_data_config": {"dequantize": "uniform"}, "train": dict(_TRAIN_2D),
    }

    def __post_init__(self) -> None:
        if self.sde not in SDES:
            raise unknown_name("sde", self.sde, SDES)
        if self.process not in ("", self.sde):
            raise ConfigError(f"score-sde chooses its process with sde=...; got process={self.process!r}, sde={self.sde!r}")
        object.__setattr__(self, "process", self.sde)
        if self.sde == "ve" and not self.preconditioning and self.prediction == "eps":
            object.__setattr__(self, "preconditioning", True)
            object.__setattr__(self, "prediction", "x0")
        super().__post_init__()


@dataclasses.dataclass(frozen=True)
class EDMModel(DiffusionModel):
    """EDM (Karras et al. 2022): sigma(t) = t, preconditioned denoiser, EDM loss, Heun on the rho grid."""

    process: str = "edm"
    objective: str = "edm"
    prediction: str = "x0"
    preconditioning: bool = True
    time_sampling: str = "uniform"
    sampler: str = "heun"
    nfe: int = 35

    name: ClassVar[str] = "edm"
    default_run: ClassVar[dict[str, Any]] = {
        "data": "digits", "quantised_data_config": {"dequantize": "uniform"}, "train": dict(_TRAIN_IMAGES),
    }


__all__ = ["DDPMModel", "DiffusionModel", "EDMModel", "ESTIMATORS", "ScoreSDE", "TRACES"]
