"""The generative-model protocol and the model registry.

Every model, whatever its family, is a small frozen dataclass holding its
hyper-parameters and exposing pure, jittable functions:

- ``init(key, batch) -> params``
- ``loss(params, batch, key) -> (scalar, metrics)``: mean over the batch; ``metrics`` is a
  dict of scalars (a breakdown of the loss, e.g. reconstruction and KL terms).
- ``sample(params, key, num, **sampler_options) -> Float[Array, "num *event_shape"]``
- ``log_prob(params, batch, key, **options) -> Float[Array, "B"]``: nats per example,
  summed over dimensions. ``log_prob_kind`` says whether it is ``"exact"``, a
  ``"lower-bound"`` (ELBO / IWAE) or an ``"estimate"``; ``estimator(**options)`` names the
  estimator precisely (e.g. ``"iwae-1000"``) and evaluation reports that word.

The trainer, CLI, checkpoints and benchmarks use only this protocol, so a new family is a
new folder plus one line in :data:`_REGISTRY`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import jax

from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, unknown_name

LogProbKind = Literal["exact", "lower-bound", "estimate"]
Params = Any
Metrics = dict[str, jax.Array]


@runtime_checkable
class GenerativeModel(Protocol):
    """The protocol every model implements (see the module docstring)."""

    name: ClassVar[str]
    log_prob_kind: ClassVar[LogProbKind]

    def init(self, key: jax.Array, batch: jax.Array) -> Params: ...

    def loss(self, params: Params, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, Metrics]: ...

    def sample(self, params: Params, key: jax.Array, num: int, **sampler_options: Any) -> jax.Array: ...

    def log_prob(self, params: Params, batch: jax.Array, key: jax.Array, **options: Any) -> jax.Array: ...

    def estimator(self, **options: Any) -> str: ...


# name -> (module, class, one-line description). A new family adds one line here.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "vae": ("genjax_models.latent.vae", "VAE", "variational autoencoder trained on the ELBO"),
    "iwae": ("genjax_models.latent.iwae", "IWAE", "importance-weighted autoencoder (IWAE-k bound)"),
    "realnvp": ("genjax_models.flows.models.realnvp", "RealNVP", "RealNVP: affine coupling flow (exact log-likelihood)"),
    "maf": ("genjax_models.flows.models.maf", "MAF", "masked autoregressive flow, or IAF with inverse=True (exact)"),
    "nsf": ("genjax_models.flows.models.nsf", "NSF", "neural spline flow: rational-quadratic spline couplings (exact)"),
    "planar": ("genjax_models.flows.models.planar", "PlanarFlow", "planar (+ radial) flow for low-dimensional data (exact)"),
    "glow": ("genjax_models.flows.models.glow", "Glow", "Glow: multi-scale ActNorm / 1x1 conv / coupling flow for images"),
    "ffjord": ("genjax_models.flows.models.ffjord", "FFJORD", "FFJORD continuous normalising flow (RK4; exact or Hutchinson trace)"),
    "ddpm": ("genjax_models.diffusion.models", "DDPMModel", "denoising diffusion (DDPM), ancestral sampling, PF-ODE / VLB likelihood"),
    "score-sde": ("genjax_models.diffusion.models", "ScoreSDE", "score-based SDE (--set sde=vp|subvp|ve), PC sampling, PF-ODE likelihood"),
    "edm": ("genjax_models.diffusion.models", "EDMModel", "EDM: preconditioned denoiser, Heun sampler, PF-ODE likelihood"),
}


def list_models() -> dict[str, str]:
    """Return ``{name: description}`` for every registered model, sorted by name."""
    return {name: _REGISTRY[name][2] for name in sorted(_REGISTRY)}


def model_class(name: str) -> type:
    """Return the class registered under ``name`` (imported lazily)."""
    if name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY)
    module_name, class_name, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module_name), class_name)


def model_fields(name: str) -> dict[str, Any]:
    """Return the hyper-parameters of model ``name`` with their default values."""
    cls = model_class(name)
    return {f.name: f.default for f in dataclasses.fields(cls) if f.init}


def check_overrides(cls: type, overrides: dict[str, Any]) -> None:
    """Raise a :class:`ConfigError` listing the valid fields if ``overrides`` has unknown ones."""
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    bad = sorted(set(overrides) - valid)
    if bad:
        raise ConfigError(
            f"model {getattr(cls, 'name', cls.__name__)!r} has no hyper-parameter(s) {', '.join(bad)}; "
            f"valid ones: {', '.join(sorted(valid))}"
        )


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
