"""Diffusion models through the common protocol: :class:`DiffusionModel`.

One class holds the whole recipe; the three registered models (``ddpm``, ``score-sde``, ``edm``,
in :mod:`~genjax_models.diffusion.presets`) are the same class with the defaults of their papers:

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
Hutchinson's estimate with Rademacher probes otherwise; the ``trace`` option chooses) and the
Gaussian prior at ``t_max``: the density of the data as perturbed to ``t_min`` (1e-3 for VP,
sigma = 0.002 for EDM), the usual convention of Song et al. (2021). ``estimator="vlb"``
(``ddpm`` only) is DDPM's discrete-time variational bound.

**Class-conditional models** (``conditional=True``, on labelled data): the network gets a label
embedding (K classes plus a null label, :class:`~genjax_models.nn.time_embedding.LabelEmbedding`)
and is trained on batches whose labels are replaced by the null label with probability
``label_dropout``, so one network is both D(x_t, t, y) and the unconditional D(x_t, t, null).
``sample(labels=y, guidance=w)`` runs every sampler on the classifier-free guided denoiser
D + w (D(., y) - D(., null)) (:func:`~genjax_models.diffusion.guidance.classifier_free`; w = 0 is
the conditional model; the other convention's scale is gamma = 1 + w); ``labels=None`` samples
the unconditional model. ``log_prob`` of a batch with labels is log p(x | y), without labels the
unconditional model's log p(x).

**Conditioning by a vector** (``label_embeddings=PATH.npy``, a ``[K, E]`` float array: one fixed
vector per class, e.g. a frozen text encoder's embedding of each class name; nothing is
downloaded): the network takes ``[B, E]`` context vectors through a learned linear map instead of
a label table (:mod:`genjax_models.nn.conditioning`); labels are looked up in the file, and the
null label is the zero vector. Everything else (label dropout, guidance, ``--labels``) is
unchanged.

**Training metrics.** The continuous-time losses report an unbiased estimate of the negative ELBO
of model-space data (``bound_nats``); the model adds ``nll``, the same bound for the data as given
(the 2 x - 1 Jacobian included), which the trainer turns into data-space ``bits_per_dim``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, ClassVar, Self

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genjax_models.completion import Completion, check_observed, check_observed_array
from genjax_models.data.batch import Batch, check_labels
from genjax_models.data.spec import DataSpec
from genjax_models.diffusion import samplers as sampler_lib
from genjax_models.diffusion.guidance import classifier_free
from genjax_models.diffusion.inpainting import inpaint
from genjax_models.diffusion.likelihood import ddpm_vlb, pf_ode_log_prob
from genjax_models.diffusion.losses import LOSSES, TIME_SAMPLING, WEIGHTINGS, get_loss
from genjax_models.diffusion.networks import make_network
from genjax_models.diffusion.parameterization import PREDICTIONS, make_denoiser
from genjax_models.diffusion.processes import get_process
from genjax_models.errors import ConfigError, ShapeError, unknown_name
from genjax_models.fields import Option
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params
from genjax_models.nn.time_embedding import drop_labels
from genjax_models.ode import TRACES, resolve_trace
from genjax_models.validation import positive_int

ESTIMATORS: tuple[str, ...] = ("pf-ode", "vlb")
NETWORKS: tuple[str, ...] = ("auto", "mlp", "unet")


@functools.lru_cache(maxsize=8)
def load_class_vectors(path: str) -> np.ndarray:
    """Read a ``[K, E]`` float ``.npy`` of class vectors (``label_embeddings``), checked."""
    if not os.path.isfile(path):
        raise ConfigError(f"label_embeddings file {path!r} does not exist")
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read label_embeddings {path!r}: {err}") from None
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.floating) or not table.size:
        raise ConfigError(
            f"label_embeddings must be a [K, E] float array, got {table.dtype}{table.shape}"
        )
    if not np.all(np.isfinite(table)):
        raise ConfigError(f"label_embeddings {path!r} holds non-finite values")
    return table.astype(np.float32)


def _sampler_option_union() -> tuple[Option, ...]:
    """Every sampler's own options, each defaulting to ``None`` ("the sampler's default").

    The help text names the samplers that take the option and their defaults.
    """
    found: dict[str, dict[str, Any]] = {}
    for name in sampler_lib.SAMPLERS:
        for option, default in sampler_lib.sampler_options(name).items():
            if option not in ("dtype", "x_init", "cond"):
                found.setdefault(option, {})[name] = default
    out = []
    for option, users in sorted(found.items()):
        defaults = [d for d in users.values() if d is not None]
        tp = type(defaults[0]) if defaults else float
        if len(users) == len(sampler_lib.SAMPLERS) and len(set(map(repr, users.values()))) == 1:
            text = f"every sampler (default {next(iter(users.values()))!r})"
        else:
            text = ", ".join(f"{name} (default {d!r})" for name, d in users.items())
        out.append(Option(option, tp | None, None, f"sampler option of {text}"))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class DiffusionModel(ModelBase):
    """A denoising diffusion / score-based model (see the module docstring).

    Attributes:
      event_shape: shape of one example: ``(D,)`` for vectors, ``(H, W, C)`` for images.
      process: forward process name (``ddpm``, ``vp``, ``subvp``, ``ve``, ``edm``).
      num_steps: DDPM's N (``process="ddpm"`` only).
      schedule: DDPM's beta schedule, ``"linear"`` or ``"cosine"``.
      objective: the training loss, ``"ddpm"``, ``"dsm"``, ``"v"`` or ``"edm"``.
      weighting: lambda(t) of the ``dsm`` objective: ``"unit"``, ``"sigma2"`` or ``"likelihood"``.
      time_sampling: ``"uniform"``, ``"antithetic"`` or ``"stratified"``.
      prediction: what the raw network predicts without preconditioning (eps, x0, v, score).
      preconditioning: EDM's c_skip / c_out / c_in / c_noise around the network.
      network: ``"auto"`` (MLP for vectors, U-Net for images), ``"mlp"`` or ``"unet"``.
      hidden: MLP hidden widths.
      channels: U-Net base width.
      channel_mult: U-Net per-level width multipliers.
      image_scaling: model [0, 1] image data as 2 x - 1 (``None``: automatic from the data spec).
      sampler: ``sample``'s default sampler.
      nfe: ``sample``'s default budget in network evaluations.
      eval_steps: ODE steps of the ``pf-ode`` likelihood (RK4, 4 NFE each).
      trace: divergence in the ``pf-ode`` likelihood: ``"auto"``, ``"exact"`` or ``"hutchinson"``.
      num_probes: Rademacher probes per example for the Hutchinson trace.
      conditional: condition the network on class labels (classifier-free guidance).
      num_classes: K, the number of classes (default: the data's).
      label_dropout: probability that a training label is replaced by the null label.
      label_embeddings: optional ``.npy`` path of a ``[K, E]`` array: condition on these class
        vectors instead of a learned label table (module docstring).
    """

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
    conditional: bool = False
    num_classes: int | None = None
    label_dropout: float = 0.1
    label_embeddings: str | None = None

    name: ClassVar[str] = "diffusion"
    labels: ClassVar[str] = "accepts"
    sample_options: ClassVar[tuple[Option, ...]] = (
        Option("sampler", str | None, None, "sampler name (default: the model's sampler)"),
        Option("nfe", int | None, None, "budget in network evaluations (default: nfe)"),
        Option(
            "guidance", float, 0.0,
            "classifier-free guidance weight w >= 0 (conditional models, with labels): "
            "D + w (D(y) - D(null)); 0 is the conditional model",
        ),
        *_sampler_option_union(),
    )
    can_complete: ClassVar[bool] = True
    complete_options: ClassVar[tuple[Option, ...]] = (
        Option("sampler", str | None, None, "sampler name (default: the model's sampler)"),
        Option("nfe", int | None, None, "budget of one pass in network evaluations"),
        Option(
            "resample", int, 1,
            "RePaint repeats per step (1: replacement only; ~10 with a stochastic sampler "
            "removes most of replacement's bias, at 10x the NFE)",
        ),
        Option("guidance", float, 0.0, "classifier-free guidance weight (conditional models)"),
    )
    log_prob_options: ClassVar[tuple[Option, ...]] = (
        Option("estimator", str, "pf-ode", "pf-ode (probability-flow ODE) or vlb (ddpm only)"),
        Option("trace", str | None, None, "divergence: auto, exact or hutchinson (pf-ode)"),
        Option(
            "num_steps", int | None, None, "RK4 steps of the pf-ode solve (default: eval_steps)"
        ),
        Option("num_probes", int | None, None, "Hutchinson probes (default: num_probes)"),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.forward_process  # noqa: B018 - validates the name and the DDPM settings
        if self.objective not in LOSSES:
            raise unknown_name("objective", self.objective, LOSSES)
        if self.objective == "ddpm" and self.process != "ddpm":
            raise ConfigError(
                f"objective='ddpm' needs process='ddpm' (got {self.process!r}); use objective='dsm'"
            )
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
        if len(self.event_shape) != 3 and self.network == "unet":
            raise ConfigError(
                f"network='unet' needs image data [H, W, C], got event_shape {self.event_shape}"
            )
        for field in ("nfe", "eval_steps", "num_probes", "channels"):
            positive_int(field, getattr(self, field))
        sampler_lib.steps_for_nfe(self.sampler, self.nfe)  # a budget too small fails here
        if not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError(f"label_dropout must be in [0, 1), got {self.label_dropout!r}")
        if self.conditional and self.num_classes is None:
            raise ConfigError(
                "conditional=True needs labelled data (the data carry no classes) or "
                "num_classes=K (--set model.num_classes=K)"
            )
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1 or None, got {self.num_classes!r}")
        if self.label_embeddings is not None:
            if not self.conditional:
                raise ConfigError("label_embeddings needs conditional=True")
            table = load_class_vectors(self.label_embeddings)
            if table.shape[0] != self.num_classes:
                raise ConfigError(
                    f"label_embeddings {self.label_embeddings!r} holds {table.shape[0]} class "
                    f"vectors; the model has num_classes={self.num_classes}"
                )

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """The data's number of classes (used only when ``conditional=True``)."""
        return {**super().spec_defaults(spec), "num_classes": spec.num_classes}

    @classmethod
    def from_spec(cls, spec: DataSpec, **overrides: Any) -> Self:
        """Build the model for data described by ``spec``; ``overrides`` win.

        Image-like data (quantised, values in [0, 1]) are rescaled to [-1, 1]; binary data are
        rejected (a diffusion model needs a density: dequantise instead).
        """
        if spec.data_type == "binary":
            raise ConfigError(
                f"{cls.name} models continuous data; got binarised data. Use "
                "--set data.binarize=none --set data.dequantize=uniform"
            )
        return super().from_spec(
            spec, **{"image_scaling": spec.num_levels is not None, **overrides}
        )

    # ------------------------------------------------------------------ pieces
    @property
    def forward_process(self):
        """The forward process object."""
        if self.process == "ddpm":
            return get_process("ddpm", num_steps=self.num_steps, schedule=self.schedule)
        return get_process(self.process)

    @property
    def scales_images(self) -> bool:
        """Whether data are modelled as 2 x - 1."""
        if self.image_scaling is None:
            return len(self.event_shape) == 3
        return bool(self.image_scaling)

    @property
    def scaling_log_det(self) -> float:
        """log|det| of the map from data to model space per example: D log 2 for 2 x - 1."""
        return self.num_dims * math.log(2.0) if self.scales_images else 0.0

    def network_module(self):
        """Return the Flax network ``(x [B, *event], noise_feature [B]) -> [B, *event]``."""
        kind = self.network
        if kind == "auto":
            kind = "unet" if len(self.event_shape) == 3 else "mlp"
        labels: dict[str, Any] = {}
        if self.label_embeddings is not None:
            labels["context_dim"] = load_class_vectors(self.label_embeddings).shape[1]
        elif self.conditional:
            labels["num_classes"] = self.num_classes
        if kind == "mlp":
            return make_network(self.event_shape, kind="mlp", hidden=self.hidden, **labels)
        return make_network(
            self.event_shape, kind="unet", base_width=self.channels,
            channel_mults=self.channel_mult, **labels,
        )

    def to_model_space(self, batch: Batch | jax.Array) -> Float[Array, "b ..."]:
        """Check a batch (``[B, *event_shape]``) and return it as floats in model space."""
        return self.model_space_and_labels(batch)[0]

    def model_space_and_labels(
        self, batch: Batch | jax.Array
    ) -> tuple[Float[Array, "b ..."], jax.Array | None]:
        """Return the batch in model space and its labels (``None``: unconditional model)."""
        x, y = self.check_batch(batch)
        if not self.conditional:
            y = None
        elif y is not None:
            y = check_labels(y, x.shape[0], self.num_classes)
        return (2.0 * x - 1.0 if self.scales_images else x), y

    @property
    def samples_by_class(self) -> bool:
        """A conditional model previews every class in turn."""
        return self.conditional

    def check_sample_labels(self, labels: Any, num: int) -> jax.Array | None:
        """Check labels given to ``sample``: ``[num]`` ints in [0, K), conditional models only."""
        if labels is None:
            return None
        if not self.conditional:
            raise ConfigError(
                f"{self.name} is unconditional unless conditional=True "
                "(--set model.conditional=true): it takes no labels"
            )
        return check_labels(labels, num, self.num_classes)

    def to_data_space(self, y: jax.Array) -> jax.Array:
        """Map model-space samples back to data space (images clipped to [0, 1])."""
        return jnp.clip((y + 1.0) / 2.0, 0.0, 1.0) if self.scales_images else y

    def denoiser(self, params: Params):
        """Return ``denoise_fn(x, t, labels=None) -> E[x0 | x_t]`` estimate (model space).

        For a conditional model ``labels`` are ``[B]`` class labels (``None`` or the null label
        K: the unconditional model); an unconditional model takes none.
        """
        net = self.network_module()

        def apply(x: jax.Array, c: jax.Array, labels: jax.Array | None = None) -> jax.Array:
            return net.apply({"params": params}, x, c, self.network_cond(labels))

        return make_denoiser(
            apply,
            self.forward_process,
            prediction="x0" if self.preconditioning else self.prediction,
            preconditioning=self.preconditioning,
        )

    def network_cond(self, labels: jax.Array | None) -> jax.Array | None:
        """The network's conditioning input for ``[B]`` labels: the labels, or their vectors.

        With ``label_embeddings`` each label becomes its class vector ``[E]``, and the null
        label (K, or any label outside 0..K-1) the zero vector.
        """
        if labels is None or self.label_embeddings is None:
            return labels
        table = jnp.asarray(load_class_vectors(self.label_embeddings))
        valid = (labels >= 0) & (labels < table.shape[0])
        vectors = table[jnp.clip(labels, 0, table.shape[0] - 1)]
        return jnp.where(valid[:, None], vectors, 0.0)

    def resolve_trace(self, trace: str | None) -> str:
        """Return ``"exact"`` or ``"hutchinson"`` for a trace option (``None``: the field)."""
        return resolve_trace(self.trace if trace is None else trace, self.num_dims)

    def _log_prob_settings(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = self.resolve_log_prob_options(options)
        if opts["estimator"] not in ESTIMATORS:
            raise unknown_name(f"{self.name} estimator", opts["estimator"], ESTIMATORS)
        if opts["estimator"] == "vlb" and self.process != "ddpm":
            raise ConfigError(
                "estimator 'vlb' is DDPM's discrete bound: it needs process='ddpm' "
                f"(got {self.process!r}); use 'pf-ode'"
            )
        opts["trace"] = self.resolve_trace(opts["trace"])
        opts["num_steps"] = positive_int(
            "num_steps", self.eval_steps if opts["num_steps"] is None else opts["num_steps"]
        )
        opts["num_probes"] = positive_int(
            "num_probes", self.num_probes if opts["num_probes"] is None else opts["num_probes"]
        )
        return opts

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise the network's Flax ``params`` on a batch."""
        y = self.to_model_space(batch)
        labels = jnp.zeros(y.shape[:1], jnp.int32) if self.conditional else None
        return self.network_module().init(
            key, y, jnp.zeros(y.shape[:1], y.dtype), self.network_cond(labels)
        )["params"]

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Compute the configured diffusion loss on a batch (mean over batch and dimensions).

        The metrics hold the loss's own breakdown and, for continuous-time losses, ``nll``: an
        unbiased estimate of the negative ELBO of the data as given, in nats per example.
        A conditional model needs labels in the batch; each is replaced by the null label with
        probability ``label_dropout`` (then the bound is that of the mixed batch).
        """
        y, labels = self.model_space_and_labels(batch)
        options: dict[str, Any] = {"prediction": "x0", "time_sampling": self.time_sampling}
        if self.objective == "dsm":
            options["weighting"] = self.weighting
        if self.conditional:
            if labels is None:
                raise ShapeError(
                    f"{self.name} with conditional=True trains on labelled batches: "
                    "pass Batch(x, y)"
                )
            key, drop_key = jax.random.split(key)
            options["cond"] = drop_labels(drop_key, labels, self.label_dropout, self.num_classes)
        loss, metrics = get_loss(self.objective)(
            self.denoiser(params), self.forward_process, y, key, **options
        )
        metrics = dict(metrics)
        metrics.pop("bound_bpd", None)  # model-space bits/dim: bound_nats says the same
        if "bound_nats" in metrics:
            metrics["nll"] = metrics["bound_nats"] - self.scaling_log_det
        return loss, metrics

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples with a sampler of :mod:`~genjax_models.diffusion.samplers`.

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          labels: ``[num]`` class labels (conditional models; ``None``: unconditional samples).
          **options: ``sampler`` (default: the model's ``sampler``), ``nfe`` (default: the
            model's ``nfe``), ``guidance`` (classifier-free weight w, with labels) and the
            sampler's own options (e.g. ``eta`` for ddim, ``grid``,
            ``order``); ``genjax describe`` lists them.

        Returns:
          ``[num, *event_shape]`` in data space (images clipped to [0, 1]).
        """
        labels = self.check_sample_labels(labels, num)
        opts = {k: v for k, v in self.resolve_sample_options(options).items() if v is not None}
        name = opts.pop("sampler", self.sampler)
        budget = opts.pop("nfe", self.nfe)
        denoise = self.guided_denoiser(params, labels, opts.pop("guidance"))
        if name not in sampler_lib.SAMPLERS:
            raise unknown_name("sampler", name, sampler_lib.SAMPLERS)
        y = sampler_lib.sample(
            name,
            denoise,
            self.forward_process,
            key,
            (num, *self.event_shape),
            budget,
            cond=labels,
            **opts,
        )
        return self.to_data_space(y)

    def guided_denoiser(self, params: Params, labels: Any, guidance: float):
        """The denoiser ``sample`` runs: classifier-free guided when ``guidance`` w > 0.

        Raises:
          ConfigError: w > 0 on an unconditional model, or without labels.
        """
        denoise = self.denoiser(params)
        if guidance == 0:
            return denoise
        if not self.conditional:
            raise ConfigError(
                f"guidance needs a conditional model (conditional=True); {self.name} here is "
                "unconditional"
            )
        if labels is None:
            raise ConfigError("guidance needs labels: pass labels=[num] (--labels K,...)")
        return classifier_free(denoise, guidance)

    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion:
        """Inpaint the missing entries (:mod:`~genjax_models.diffusion.inpainting`).

        Replacement (the observed entries noised to the current level after every step) and,
        with ``resample`` U > 1, RePaint's U repeats per step, through the chosen sampler.

        Args:
          params: model parameters.
          key: PRNG key.
          batch: ``[B, *event_shape]`` (with labels for a conditional model: completions are
            then drawn given y; missing entries may hold anything, NaN included).
          observed: bool mask ``[*event_shape]`` or ``[B, *event_shape]`` (True = observed).
          num_completions: n completions per example (static).
          **options: ``sampler``, ``nfe``, ``resample``, ``guidance`` (``genjax describe``).

        Returns:
          :class:`~genjax_models.completion.Completion`: samples ``[n, B, *event_shape]`` whose
          observed entries equal the input; ``log_p_observed`` is NaN (a diffusion model has no
          tractable marginal of part of x) and ``exact`` all False.
        """
        opts = self.resolve_complete_options(options)
        x, labels = self.model_space_and_labels(batch)
        num = x.shape[0]
        positive_int("num_completions", num_completions)
        seen = check_observed_array(
            observed if isinstance(observed, jax.core.Tracer)
            else check_observed(observed, self.event_shape, num),
            self.event_shape, num,
        )
        name = self.sampler if opts["sampler"] is None else opts["sampler"]
        if name not in sampler_lib.SAMPLERS:
            raise unknown_name("sampler", name, sampler_lib.SAMPLERS)
        budget = self.nfe if opts["nfe"] is None else opts["nfe"]
        tile = (num_completions,) + (1,) * len(self.event_shape)
        repeated = None if labels is None else jnp.tile(labels, num_completions)
        y = inpaint(
            sampler_lib.get_sampler(name),
            self.guided_denoiser(params, repeated, opts["guidance"]),
            self.forward_process,
            key,
            jnp.tile(x, tile),
            jnp.tile(seen, tile),
            budget,
            resample=opts["resample"],
            cond=repeated,
        )
        samples = self.to_data_space(y).reshape(num_completions, num, *self.event_shape)
        data = jnp.asarray(self.check_batch(batch)[0])
        samples = jnp.where(seen[None], data[None], samples)  # observed entries as given
        return Completion(samples, jnp.full((num,), jnp.nan, x.dtype), jnp.zeros((num,), bool))

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Compute log p(x) per example in nats, in data space (see the module docstring).

        Args:
          params: model parameters.
          batch: ``[B, *event_shape]`` data, or ``Batch(x, y)``: a conditional model then gives
            log p(x | y) (without labels: the unconditional log p(x)).
          key: PRNG key (Hutchinson probes; VLB noise).
          **options: ``estimator`` (``"pf-ode"``, default, or ``"vlb"``, ddpm only),
            ``trace`` (pf-ode; default the model's), ``num_steps`` (RK4 steps of the pf-ode
            solve, default ``eval_steps``), ``num_probes`` (default ``num_probes``).

        Returns:
          ``[B]`` log-densities: exact up to ODE error (pf-ode, exact trace), an unbiased
          estimate (Hutchinson) or a stochastic lower bound (vlb).
        """
        opts = self._log_prob_settings(options)
        y, labels = self.model_space_and_labels(batch)
        denoise = self.denoiser(params)
        if opts["estimator"] == "vlb":
            log_p, _ = ddpm_vlb(denoise, self.forward_process, y, key, cond=labels)
            return log_p + self.scaling_log_det
        log_p = pf_ode_log_prob(
            denoise,
            self.forward_process,
            y,
            key,
            num_steps=opts["num_steps"],
            method="rk4",
            divergence=opts["trace"],
            num_probes=opts["num_probes"],
            cond=labels,
        )
        return log_p + self.scaling_log_det

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: exact (pf-ode, exact trace), an estimate or a lower bound."""
        opts = self._log_prob_settings(options)
        if opts["estimator"] == "vlb":
            details = {
                "num_steps": self.num_steps,
                "reverse_variance": "beta",
                "decoder_variance": "posterior",
            }
            if self.conditional:
                details["labelled_batches"] = "log p(x | y)"
            return LogProbInfo("lower-bound", "vlb", details)
        details = {
            "trace": opts["trace"],
            "ode_method": "rk4",
            "ode_steps": opts["num_steps"],
            "t_min": float(self.forward_process.t_min),
        }
        if self.conditional:
            details["labelled_batches"] = "log p(x | y)"
        if opts["trace"] == "hutchinson":
            details["num_probes"] = opts["num_probes"]
            return LogProbInfo("estimate", "pf-ode", details)
        return LogProbInfo("exact", "pf-ode", details)
