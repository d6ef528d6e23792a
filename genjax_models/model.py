"""The generative-model protocol, its shared base class and the model registry.

Every model, whatever its family, is a small frozen dataclass holding its hyper-parameters and
exposing pure, jittable functions (``batch`` is a :class:`~genjax_models.data.batch.Batch`
``(x [B, *event_shape], y [B] | None)`` or a plain array ``x``):

- ``from_spec(spec, **overrides)``: data-dependent defaults (binary data -> Bernoulli, ...);
- ``init(key, batch) -> params``;
- ``loss(params, batch, key) -> (scalar, metrics)``: mean over the batch. ``metrics`` is a dict
  of scalars (a breakdown of the loss). Models whose loss is a likelihood or a bound on one add
  ``nll``, nats per example of the arrays they are given; the trainer turns it into data-space
  ``bits_per_dim`` in one place (:meth:`DataSpec.bits_per_dim`). A model whose objective
  follows a schedule (KL warm-up, an annealed temperature) sets ``loss_uses_step = True`` and
  takes ``loss(params, batch, key, *, step=None)``: the trainer passes the optimiser step (a
  traced int), and ``step=None`` means the unscheduled objective (the schedule's end point);
- ``post_update(params, batch, key, *, step) -> params``: a non-gradient update that the
  trainer applies after every optimiser step when ``has_post_update = True`` (the VQ-VAE's
  EMA codebook and dead-code restart); the identity by default;
- ``sample(params, key, num, *, labels=None, **options) -> [num, *event_shape]``;
- ``log_prob(params, batch, key, **options) -> [B]``: nats per example, summed over dimensions;
- ``describe_log_prob(**options) -> LogProbInfo(kind, estimator, details)``: ``kind`` is
  ``"exact"``, ``"lower-bound"`` or ``"estimate"``; evaluation reports these words;
- ``complete(params, key, batch, observed, num_completions, **options) -> Completion``: fill in
  the missing entries of partly observed data and return log p(x_observed), exact or estimated
  per example (:mod:`genjax_models.completion`). Models that can set ``can_complete = True``
  and declare ``complete_options``; the others refuse with one clear error;
- ``diagnostics(params, batch, key) -> dict[str, float]``: model-specific evaluation figures
  (e.g. a VAE's active units), computed by the evaluator on up to
  :data:`DIAGNOSTIC_EXAMPLES` examples of the split and reported beside the NLL; ``{}`` by
  default.

Options of ``sample`` and ``log_prob`` are declared once per model (:attr:`sample_options`,
:attr:`log_prob_options`, tuples of :class:`~genjax_models.fields.Option`), so the CLI validates
``--option k=v``, ``--sampler``, ``--estimator`` and ``--k`` by asking the model, and
``genjax describe MODEL`` lists them. By convention an importance-sample count is the log-prob
option ``num_samples`` (the CLI's ``--k``), a sampler choice and budget are the sample options
``sampler`` and ``nfe``, and a choice of estimator is the log-prob option ``estimator``.

A model declares how it uses labels (``labels``: ``"needs"``, ``"accepts"`` or ``"ignores"``) and
its usual run (:attr:`default_run`, a :class:`RunRecipe`). The trainer, CLI, checkpoints and
benchmarks use only this protocol, so a new family is a new folder plus one registry line.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, Self, runtime_checkable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.completion import Completion
from genjax_models.data.batch import Batch, as_batch, check_labels
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError, unknown_name
from genjax_models.fields import (
    Option,
    attribute_docs,
    coerce,
    dataclass_field_types,
    type_name,
)

LogProbKind = Literal["exact", "lower-bound", "estimate"]
DIAGNOSTIC_EXAMPLES = 5000  # at most this many examples of a split go to ``diagnostics``
LabelUse = Literal["needs", "accepts", "ignores"]
Params = Any
Metrics = dict[str, jax.Array]


class LogProbInfo(NamedTuple):
    """What ``log_prob`` with given options computes.

    Attributes:
      kind: ``"exact"``, ``"lower-bound"`` or ``"estimate"``.
      estimator: its precise name, e.g. ``"exact"``, ``"iwae-1000"``, ``"pf-ode"``.
      details: JSON-able settings behind it (trace, ODE steps, ...), stored with eval records.
    """

    kind: LogProbKind
    estimator: str
    details: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RunRecipe:
    """What ``genjax train MODEL`` does with no other settings.

    Attributes:
      data: the dataset trained on by default.
      binarize, dequantize: preprocessing of *quantised* data when the user chooses neither
        (e.g. dynamic binarisation for the VAE, uniform dequantisation for flows).
      train: TrainConfig fields that differ from the library's defaults.
      expected: one line on what the default run takes and reaches (printed by ``genjax train``).
    """

    data: str = "mnist5k"
    binarize: str | None = None
    dequantize: str | None = None
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    expected: str = ""


def resolve_options(
    declared: tuple[Option, ...], given: dict[str, Any], what: str
) -> dict[str, Any]:
    """Check ``given`` against ``declared`` options; return all of them, typed, with defaults.

    Raises:
      UnknownNameError: an option that is not declared (the message lists the valid ones).
      ConfigError: a value of the wrong type.
    """
    valid = {option.name: option for option in declared}
    for name in given:
        if name not in valid:
            listed = ", ".join(sorted(valid)) or "none"
            raise UnknownNameError(f"unknown {what} option {name!r}; valid: {listed}")
    out = {name: option.default for name, option in valid.items()}
    for name, value in given.items():
        out[name] = value if value is None else coerce(name, value, valid[name].type)
    return out


@runtime_checkable
class GenerativeModel(Protocol):
    """The protocol every model implements (see the module docstring)."""

    name: ClassVar[str]
    labels: ClassVar[LabelUse]
    sample_options: ClassVar[tuple[Option, ...]]
    log_prob_options: ClassVar[tuple[Option, ...]]
    complete_options: ClassVar[tuple[Option, ...]]
    can_complete: ClassVar[bool]
    default_run: ClassVar[RunRecipe]
    loss_uses_step: ClassVar[bool]
    has_post_update: ClassVar[bool]
    event_shape: tuple[int, ...]

    @classmethod
    def from_spec(cls, spec: DataSpec, **overrides: Any) -> Self: ...

    @property
    def num_dims(self) -> int: ...

    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params: ...

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]: ...

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]: ...

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]: ...

    def describe_log_prob(self, **options: Any) -> LogProbInfo: ...

    def post_update(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, *, step: jax.Array
    ) -> Params: ...

    def diagnostics(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> dict[str, float]: ...

    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion: ...


@dataclasses.dataclass(frozen=True)
class ModelBase:
    """Shared base of every model: field validation, batch checks, options and construction.

    Subclasses are frozen dataclasses whose fields are the hyper-parameters; they set the class
    variables below and implement ``init``, ``loss``, ``sample``, ``log_prob`` and
    ``describe_log_prob``.

    Attributes:
      event_shape: shape of one example, e.g. ``(28, 28, 1)`` or ``(2,)``.
    """

    event_shape: tuple[int, ...]

    name: ClassVar[str] = "model"
    labels: ClassVar[LabelUse] = "ignores"
    sample_options: ClassVar[tuple[Option, ...]] = ()
    log_prob_options: ClassVar[tuple[Option, ...]] = ()
    complete_options: ClassVar[tuple[Option, ...]] = ()
    can_complete: ClassVar[bool] = False
    default_run: ClassVar[RunRecipe] = RunRecipe()
    loss_uses_step: ClassVar[bool] = False
    has_post_update: ClassVar[bool] = False

    def __post_init__(self) -> None:
        """Coerce every field to its annotation (tuples stay tuples: the model stays hashable)."""
        for name, tp in dataclass_field_types(type(self)).items():
            object.__setattr__(self, name, coerce(name, getattr(self, name), tp))
        if not self.event_shape or any(n < 1 for n in self.event_shape):
            raise ConfigError(
                f"event_shape must be a non-empty tuple of positive ints, got {self.event_shape}"
            )

    # ------------------------------------------------------------ construction
    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Return data-dependent default hyper-parameters (subclasses extend this)."""
        del spec
        return {}

    @classmethod
    def from_spec(cls, spec: DataSpec, **overrides: Any) -> Self:
        """Build the model for data described by ``spec``; ``overrides`` win."""
        check_overrides(cls, overrides)
        kwargs: dict[str, Any] = {"event_shape": tuple(spec.event_shape)}
        kwargs.update(cls.spec_defaults(spec))
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------------ shapes
    @property
    def num_dims(self) -> int:
        """D, the number of scalar dimensions of one example."""
        return math.prod(self.event_shape)

    def check_batch(self, batch: Batch | jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Check a batch is ``[B, *event_shape]`` (+ labels ``[B]``); return float ``x`` and ``y``.

        Raises:
          ShapeError: wrong shapes, or a label-needing model given no labels.
        """
        x, y = as_batch(batch)
        x = jnp.asarray(x)
        if x.ndim != len(self.event_shape) + 1 or tuple(x.shape[1:]) != self.event_shape:
            raise ShapeError(
                f"{self.name}: expected a batch of shape "
                f"[B, {', '.join(map(str, self.event_shape))}] (i.e. [B, *event_shape]), "
                f"got {tuple(x.shape)}"
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        if self.labels == "ignores" or y is None:
            if self.labels == "needs":
                raise ShapeError(f"{self.name} needs class labels: pass Batch(x, y)")
            return x, None
        return x, check_labels(y, x.shape[0])

    def check_sample_labels(self, labels: Any, num: int) -> jax.Array | None:
        """Check ``labels`` given to ``sample`` (``[num]`` ints, or None where allowed)."""
        if labels is None:
            if self.labels == "needs":
                raise ConfigError(f"{self.name} is conditional: pass labels=[num] to sample")
            return None
        if self.labels == "ignores":
            raise ConfigError(f"{self.name} is unconditional: it takes no labels")
        return check_labels(labels, num)

    @property
    def samples_by_class(self) -> bool:
        """Whether preview samples should cycle through the classes (label-conditioned models)."""
        return self.labels == "needs"

    # ----------------------------------------------------------------- options
    def resolve_sample_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Return the complete, typed sample options (unknown names raise, listing valid ones)."""
        return resolve_options(self.sample_options, options, f"{self.name} sample")

    def resolve_log_prob_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Return the complete, typed log-prob options (unknown names raise)."""
        return resolve_options(self.log_prob_options, options, f"{self.name} log_prob")

    def resolve_complete_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Return the complete, typed completion options (unknown names raise)."""
        return resolve_options(self.complete_options, options, f"{self.name} complete")

    # -------------------------------------------------------------- completion
    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion:
        """Complete partly observed data (see :mod:`genjax_models.completion`).

        Models that cannot complete data keep this default, which raises.

        Raises:
          ConfigError: this model cannot complete data (the message lists those that can).
        """
        del params, key, batch, observed, num_completions, options
        raise cannot_complete(self.name)

    # ------------------------------------------------------------ post-update
    def post_update(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, *, step: jax.Array
    ) -> Params:
        """Return params after a non-gradient update that follows each optimiser step.

        The trainer calls this, inside the compiled step, on the freshly updated params, the
        step's batch, a key of its own and ``step`` (optimiser steps taken before this one),
        for models that set ``has_post_update`` (e.g. the VQ-VAE's EMA codebook). The
        default returns ``params`` unchanged.
        """
        del batch, key, step
        return params

    # ------------------------------------------------------------- diagnostics
    def diagnostics(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> dict[str, float]:
        """Return model-specific evaluation figures on ``batch`` (default: none).

        The evaluator calls this on up to :data:`DIAGNOSTIC_EXAMPLES` examples of the split,
        with the split's labels whenever it has them (whatever the model's ``labels``), and
        stores the result under ``"diagnostics"`` in the report.
        """
        del params, batch, key
        return {}


# name -> (module, class, one-line description). A new family adds one line here.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "vae": ("genjax_models.latent.vae", "VAE", "variational autoencoder trained on the ELBO"),
    "iwae": ("genjax_models.latent.iwae", "IWAE",
             "importance-weighted autoencoder (IWAE-k bound)"),
    "cvae": ("genjax_models.latent.cvae", "CVAE",
             "conditional VAE: label-conditioned encoder and decoder (bound on log p(x|y))"),
    "m2": ("genjax_models.latent.m2", "M2",
           "semi-supervised VAE (Kingma et al. 2014): labels where known, summed out elsewhere"),
    "gmvae": ("genjax_models.latent.gmvae", "GMVAE",
              "VAE with a learned mixture-of-Gaussians prior (clusters; IWAE-k bound)"),
    "vqvae": ("genjax_models.discrete.vqvae", "VQVAE",
              "VQ-VAE: conv encoder/decoder, EMA codebook, PixelCNN prior over codes (bound)"),
    "gmm": ("genjax_models.latent.gmm", "GaussianMixture",
            "Gaussian mixture (full/diag), EM in init + gradient steps (exact)"),
    "mob": ("genjax_models.latent.mob", "MixtureOfBernoullis",
            "mixture of Bernoullis for binary images, EM in init + gradient steps (exact)"),
    "realnvp": ("genjax_models.flows.models.realnvp", "RealNVP",
                "RealNVP: affine coupling flow (exact log-likelihood)"),
    "maf": ("genjax_models.flows.models.maf", "MAF",
            "masked autoregressive flow, or IAF with inverse=True (exact)"),
    "nsf": ("genjax_models.flows.models.nsf", "NSF",
            "neural spline flow: rational-quadratic spline couplings (exact)"),
    "planar": ("genjax_models.flows.models.planar", "PlanarFlow",
               "planar (+ radial) flow for low-dimensional data (exact)"),
    "glow": ("genjax_models.flows.models.glow", "Glow",
             "Glow: multi-scale ActNorm / 1x1 conv / coupling flow for images"),
    "ffjord": ("genjax_models.flows.models.ffjord", "FFJORD",
               "FFJORD continuous normalising flow (RK4; exact or Hutchinson trace)"),
    "ddpm": ("genjax_models.diffusion.presets", "DDPMModel",
             "denoising diffusion (DDPM), ancestral sampling, PF-ODE / VLB likelihood"),
    "score-sde": ("genjax_models.diffusion.presets", "ScoreSDE",
                  "score-based SDE (--set model.sde=vp|subvp|ve), PC sampling, PF-ODE likelihood"),
    "edm": ("genjax_models.diffusion.presets", "EDMModel",
            "EDM: preconditioned denoiser, Heun sampler, PF-ODE likelihood"),
    "fvsbn": ("genjax_models.autoregressive.fvsbn", "FVSBN",
              "fully visible sigmoid belief network: linear autoregressive model (exact)"),
    "nade": ("genjax_models.autoregressive.nade", "NADE",
             "neural autoregressive density estimator: tied weights, O(DH) pass (exact)"),
    "made": ("genjax_models.autoregressive.made", "MADEModel",
             "masked autoencoder, order-agnostic, ensemble as a true mixture (exact)"),
    "pixelcnn": ("genjax_models.autoregressive.pixelcnn", "PixelCNN",
                 "gated PixelCNN: masked convolutions, no blind spot (exact)"),
    "ar-transformer": ("genjax_models.autoregressive.transformer", "ARTransformer",
                       "causal Transformer decoder with key/value-cached sampling (exact)"),
    "rnn": ("genjax_models.autoregressive.rnn", "AutoregressiveRNN",
            "autoregressive GRU/LSTM over the raster sequence, hidden-state sampling (exact)"),
    "categorical-vae": ("genjax_models.discrete.categorical_vae", "CategoricalVAE",
                        "VAE with categorical latents (20 x 10), any discrete gradient estimator"),
    "bernoulli-vae": ("genjax_models.discrete.bernoulli_vae", "BernoulliVAE",
                      "VAE with Bernoulli latents (200), any discrete gradient estimator"),
}


def list_models() -> dict[str, str]:
    """Return ``{name: description}`` for every registered model, sorted by name."""
    return {name: _REGISTRY[name][2] for name in sorted(_REGISTRY)}


def model_class(name: str) -> type[ModelBase]:
    """Return the class registered under ``name`` (imported lazily)."""
    if name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY)
    module_name, class_name, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module_name), class_name)


def cannot_complete(name: str) -> ConfigError:
    """Return the error for a model that cannot complete data, naming the models that can."""
    able = [other for other in list_models() if model_class(other).can_complete]
    return ConfigError(
        f"{name} cannot complete partly observed data; models that can: "
        f"{', '.join(able) or 'none'}"
    )


def check_overrides(cls: type, overrides: dict[str, Any]) -> None:
    """Raise a :class:`ConfigError` listing the valid fields if ``overrides`` has unknown ones."""
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    bad = sorted(set(overrides) - valid)
    if bad:
        raise ConfigError(
            f"model {cls.name!r} has no hyper-parameter(s) {', '.join(bad)}; "
            f"valid ones: {', '.join(sorted(valid))}"
        )


class FieldInfo(NamedTuple):
    """One hyper-parameter of a model, for ``genjax describe``."""

    name: str
    type: str
    default: Any
    help: str


def describe_fields(name: str) -> list[FieldInfo]:
    """Return every ``--set model.X`` field of model ``name``: type, default and meaning."""
    cls = model_class(name)
    docs = attribute_docs(cls)
    types_ = dataclass_field_types(cls)
    out = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        default = "(from the data)" if field.default is dataclasses.MISSING else field.default
        out.append(FieldInfo(field.name, type_name(types_[field.name]), default,
                             docs.get(field.name, "")))
    return out


def get_model(name: str, data_spec: DataSpec | None = None, **overrides: Any) -> GenerativeModel:
    """Build model ``name`` for data described by ``data_spec``.

    Args:
      name: a registered model name (see :func:`list_models`).
      data_spec: shape and value type of the data; the model chooses data-dependent
        defaults from it (e.g. a Bernoulli decoder for binary data). Required unless the
        overrides give ``event_shape`` themselves.
      **overrides: hyper-parameters to change; unknown ones raise an error listing the
        valid fields.

    Returns:
      A frozen model object implementing :class:`GenerativeModel`.
    """
    cls = model_class(name)
    check_overrides(cls, overrides)
    if data_spec is not None:
        return cls.from_spec(data_spec, **overrides)
    if "event_shape" not in overrides:
        raise ConfigError(f"get_model({name!r}) needs data_spec=... or event_shape=...")
    return cls(**overrides)
