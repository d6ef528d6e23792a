"""Shared machinery of the normalising-flow models: validation, base density, loss, sampling.

A flow model is an invertible map ``T`` from a latent ``z ~ N(0, I_D)`` to the data ``x``
(``x = T(z)``, the *forward* or sampling direction). By the change of variables

    log p(x) = log N(T^{-1}(x); 0, I) + log|det J_{T^{-1}}(x)|,

computed exactly with one ``inverse_and_log_det`` of the bijector (arrays only, never a
``distrax`` distribution object, which can leak tracers out of ``jit``: distrax #230).

``T`` may start with a fixed preprocessing step. For image-like data in [0, 1] (uniformly
dequantised levels, ``spec.num_levels`` set) the models prepend RealNVP's logit transform
(:class:`~genjax_models.flows.logit.Logit`): ``T = Logit o T_flow``, so the data-side map is
``y = logit(alpha + (1 - 2 alpha) x)`` and its log-Jacobian is part of the model's exact
density of ``x``. The *dequantisation* Jacobian (``-D log L``) is NOT added here: a model
returns the log-density of the arrays it is given, and :mod:`genjax_models.eval.likelihood`
adds ``spec.log_jacobian`` in one place.

:class:`FlowModel` is a frozen-dataclass base class holding the protocol methods. A concrete
flow sets ``name``, its hyper-parameter fields, and implements

- ``init_flow(key, y) -> params`` (``y`` the preprocessed batch in the work shape),
- ``flow_log_prob(params, y, key, **options) -> [B]`` (log-density of preprocessed data) and
- ``flow_sample(params, z, **options) -> y`` (latent to preprocessed data).

:class:`BijectorFlow` implements the last two from one ``flow(params) -> distrax.Bijector``
mapping latent to (preprocessed) data in the work shape (``[B, D]`` for models on flattened
data, ``[B, *event_shape]`` for image flows); every discrete-layer flow subclasses it. FFJORD,
whose map is an ODE solve, subclasses :class:`FlowModel` directly.

Inputs: ``batch [B, *event_shape]`` (a wrong shape raises :class:`ShapeError`). Outside
``jit`` a NaN/inf value (or, with the logit transform, a value outside [0, 1]) raises a
:class:`DataError`. Inside ``jit`` values cannot be inspected: a non-finite input gives a
non-finite log-probability for that example only, and logit-preprocessed inputs outside
[0, 1] are clamped by the logit (finite, meaningless densities); the evaluator rejects
non-finite results with a :class:`DataError`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar, Self

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genjax_models.data.batch import Batch
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, DataError, unknown_name
from genjax_models.fields import Option
from genjax_models.flows.actnorm import actnorm_init
from genjax_models.flows.logit import Logit
from genjax_models.flows.scan_chain import num_stacked, stack_params
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params, RunRecipe, check_overrides

PREPROCESSING: tuple[str, ...] = ("none", "logit")
TEMPERATURE = Option(
    "temperature", float, 1.0, "scale of the latent z (1 samples the model; < 1: typical samples)"
)
# What a flow trains on with no other settings: its 2-D toy, dequantising image data.
TOY_RUN = RunRecipe(data="eight-gaussians", dequantize="uniform")


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """Return ``log N(z; 0, I)`` summed over every axis but the first.

    Args:
      z: ``[B, ...]`` latents.

    Returns:
      ``[B]``: ``-|z|^2 / 2 - (D / 2) log(2 pi)`` with D the size of one example.
    """
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * jnp.sum(flat * flat, axis=-1) - 0.5 * flat.shape[1] * math.log(2.0 * math.pi)


def check_choice(kind: str, value: Any, choices: Any) -> None:
    """Raise the standard unknown-name error unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise unknown_name(kind, str(value), choices)


def layer_params(stacked: Any, index: int) -> Any:
    """Return the parameters of layer ``index`` from a stacked pytree (leading layer axis)."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], stacked)


def init_actnorm_stack(
    layer_fn: Callable[[Any], distrax.Bijector],
    stacked: dict[str, Any],
    y: jax.Array,
    event_ndims: int,
    field: str = "actnorm",
) -> dict[str, Any]:
    """Add data-dependent ActNorm parameters to stacked layer parameters.

    The layers of a :class:`~genjax_models.flows.scan_chain.ScanChain` see the data in the
    order L-1, ..., 0 (the inverse runs the last layer first). Walking them in that order,
    layer ``l``'s ActNorm gets ``actnorm_init(h_l)`` of the batch ``h_l`` reaching it, so its
    inverse whitens ``h_l`` per channel; ``h_{l-1} = layer_l^{-1}(h_l)``. ``layer_fn`` must put
    the ActNorm first on the data side (``distrax.Chain([ActNorm, ...])``).

    Args:
      layer_fn: ``layer_params -> bijector`` reading ``layer_params[field]``.
      stacked: stacked parameters of every other part of the layers.
      y: the batch at the data end of the stack.
      event_ndims: event axes of ``y`` (1 for vectors, 3 for images).
      field: the key of the ActNorm parameters.

    Returns:
      ``stacked`` with ``stacked[field] = {"shift": [L, C], "log_scale": [L, C]}``.
    """
    num_layers = num_stacked(stacked)
    inits: list[Any] = [None] * num_layers
    h = y
    for index in reversed(range(num_layers)):
        inits[index] = actnorm_init(h, event_ndims)
        layer = layer_fn({**layer_params(stacked, index), field: inits[index]})
        h, _ = layer.inverse_and_log_det(h)
    return {**stacked, field: stack_params(inits)}


@functools.lru_cache(maxsize=32)
def _jitted_init(model: FlowModel) -> Callable[[jax.Array, jax.Array], Params]:
    """Compile ``init`` once per model: much faster than op-by-op vmapped Flax inits."""

    def init(key: jax.Array, x: jax.Array) -> Params:
        return model.init_flow(key, model.preprocess_batch(x)[0])

    return jax.jit(init)



@dataclasses.dataclass(frozen=True)
class FlowModel(ModelBase):
    """Base class of the flow models: ``x = T(z)``, ``z ~ N(0, I)``, exact ``log p(x)``.

    Attributes:
      event_shape: shape of one example, e.g. ``(2,)`` or ``(8, 8, 1)``.
      preprocess: ``"none"`` or ``"logit"`` (RealNVP's logit transform of data in [0, 1];
        ``from_spec`` chooses it for dequantised image data).
      logit_alpha: the logit squeeze alpha: ``y = logit(alpha + (1 - 2 alpha) x)``.
    """

    preprocess: str = "none"
    logit_alpha: float = 0.05

    name: ClassVar[str] = "flow"
    sample_options: ClassVar[tuple[Option, ...]] = (TEMPERATURE,)
    default_run: ClassVar[RunRecipe] = TOY_RUN
    # Whether the flow works on flattened vectors [B, D] (True) or on [B, *event_shape].
    flatten_input: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("preprocessing", self.preprocess, PREPROCESSING)
        if not 0.0 <= self.logit_alpha < 0.5:
            raise ConfigError(f"logit_alpha must satisfy 0 <= alpha < 0.5, got {self.logit_alpha}")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_spec(cls, spec: DataSpec, **overrides: Any) -> Self:
        """Build the model for data described by ``spec``; ``overrides`` win.

        Flows model continuous data: binary or grey (quantised, not dequantised) data raises
        a ConfigError naming the fix (``data.dequantize=uniform``). Dequantised image data
        (``num_levels`` set) gets the logit preprocessing.
        """
        check_overrides(cls, overrides)
        if spec.data_type != "continuous":
            raise ConfigError(
                f"flow model {cls.name!r} needs continuous data, got {spec.data_type!r} data; "
                "dequantise quantised images (--set data.dequantize=uniform, binarize=none)"
            )
        kwargs: dict[str, Any] = {}
        if spec.num_levels is not None:
            kwargs = {"preprocess": "logit"}
        return super().from_spec(spec, **{**kwargs, **overrides})

    # ------------------------------------------------------------------ shapes
    @property
    def work_shape(self) -> tuple[int, ...]:
        """Shape of one example inside the flow: ``(D,)`` or ``event_shape``."""
        return (self.num_dims,) if self.flatten_input else self.event_shape

    def check_batch(self, batch: Batch | jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Check shapes (the base class) and, outside ``jit``, finiteness and the logit range."""
        x, y = super().check_batch(batch)
        if not isinstance(x, jax.core.Tracer):
            values = np.asarray(x)
            bad = ~np.isfinite(values)
            if bad.any():
                raise DataError(
                    f"{self.name}: the batch holds {int(bad.sum())} NaN/inf value(s); "
                    "clean the data (flows have no density there)"
                )
            if self.preprocess == "logit" and (values.min() < 0.0 or values.max() > 1.0):
                raise DataError(
                    f"{self.name}: logit preprocessing needs data in [0, 1], got values in "
                    f"[{values.min():.4g}, {values.max():.4g}]; rescale or set preprocess='none'"
                )
        return x, y

    def to_work(self, x: jax.Array) -> jax.Array:
        """Reshape ``[B, *event_shape]`` to the flow's work shape ``[B, *work_shape]``."""
        return x.reshape(x.shape[0], *self.work_shape)

    def from_work(self, y: jax.Array) -> jax.Array:
        """Reshape ``[B, *work_shape]`` back to ``[B, *event_shape]``."""
        return y.reshape(y.shape[0], *self.event_shape)

    # ------------------------------------------------------------ preprocessing
    def preprocessor(self) -> distrax.Bijector | None:
        """Return the fixed data-side bijector (forward: flow space -> data), or ``None``."""
        if self.preprocess == "logit":
            return Logit(self.logit_alpha, event_ndims=len(self.work_shape))
        return None

    def preprocess_batch(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map work-shape data to flow space: ``(y, log|dy/dx|)`` (identity if no preprocessing)."""
        pre = self.preprocessor()
        if pre is None:
            return x, jnp.zeros(x.shape[:1], x.dtype)
        return pre.inverse_and_log_det(x)

    def postprocess_sample(self, y: jax.Array) -> jax.Array:
        """Map flow-space samples to data: the logit's inverse, clipped to the data range [0, 1].

        The inverse logit reaches ``[-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha)]``;
        clipping keeps samples inside the support, so ``log_prob(sample())`` is finite.
        """
        pre = self.preprocessor()
        if pre is None:
            return y
        return jnp.clip(pre.forward(y), 0.0, 1.0)

    # ------------------------------------------------------ subclass interface
    def init_flow(self, key: jax.Array, y: jax.Array) -> Params:
        """Initialise the flow's parameters from the preprocessed batch ``y`` (work shape)."""
        raise NotImplementedError(f"{type(self).__name__} must implement init_flow")

    def flow_log_prob(
        self, params: Params, y: jax.Array, key: jax.Array, **options: Any
    ) -> jax.Array:
        """Return ``log p(y)`` of preprocessed data ``y`` (work shape), ``[B]``."""
        raise NotImplementedError(f"{type(self).__name__} must implement flow_log_prob")

    def flow_sample(self, params: Params, z: jax.Array, **options: Any) -> jax.Array:
        """Map latents ``z`` (work shape) to preprocessed data."""
        raise NotImplementedError(f"{type(self).__name__} must implement flow_sample")

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise the parameters (data-dependent initialisations use ``batch``)."""
        x = self.to_work(self.check_batch(batch)[0])
        return _jitted_init(self)(key, x)

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Compute ``log p(x)`` in nats per example.

        ``log p(x) = log N(z; 0, I) + log|det J_{T^{-1}}(x)|``, ``z = T^{-1}(x)``, with the
        logit preprocessing (if any) part of ``T``.

        Args:
          params: model parameters.
          batch: ``[B, *event_shape]``.
          key: PRNG key (stochastic estimators only; unused by an exact density).
          **options: the model's :attr:`log_prob_options`.

        Returns:
          ``[B]`` log-densities of the given arrays (no dequantisation correction).
        """
        opts = self.resolve_log_prob_options(options)
        x = self.to_work(self.check_batch(batch)[0])
        y, pre_log_det = self.preprocess_batch(x)
        return self.flow_log_prob(params, y, key, **opts) + pre_log_det

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Compute the mean negative log-likelihood ``-1/B sum_b log p(x_b)``.

        Returns:
          ``(loss, metrics)`` with ``loss`` and ``nll`` (the same, nats per example of the
          given arrays; the trainer reports it as data-space ``bits_per_dim``).
        """
        nll = -jnp.mean(self.log_prob(params, batch, key))
        return nll, {"loss": nll, "nll": nll}

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples ``x = T(z)``, ``z ~ N(0, temperature^2 I)``.

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          labels: must be ``None`` (flows here are unconditional).
          **options: the model's :attr:`sample_options` (``temperature``, default 1).

        Returns:
          ``[num, *event_shape]`` (in [0, 1] with logit preprocessing).
        """
        self.check_sample_labels(labels, num)
        opts = self.resolve_sample_options(options)
        temperature = opts.pop("temperature")
        z = temperature * jax.random.normal(key, (num, *self.work_shape))
        return self.from_work(self.postprocess_sample(self.flow_sample(params, z, **opts)))

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: the exact change of variables."""
        self.resolve_log_prob_options(options)
        return LogProbInfo("exact", "exact", {})


@dataclasses.dataclass(frozen=True)
class BijectorFlow(FlowModel):
    """A flow whose map is one ``distrax.Bijector``: subclasses implement ``flow(params)``."""

    def flow(self, params: Params) -> distrax.Bijector:
        """Return the flow bijector (forward: latent -> preprocessed data, work shape)."""
        raise NotImplementedError(f"{type(self).__name__} must implement flow")

    def transform(self, params: Params) -> distrax.Bijector:
        """Return ``T``: latent -> data in the work shape, the preprocessing included."""
        pre = self.preprocessor()
        flow = self.flow(params)
        return flow if pre is None else distrax.Chain([pre, flow])

    def flow_log_prob(
        self, params: Params, y: jax.Array, key: jax.Array, **options: Any
    ) -> jax.Array:
        """Return ``log p(y)`` of preprocessed data ``y`` (work shape): base density + log-det."""
        del key, options
        z, log_det = self.flow(params).inverse_and_log_det(y)
        return standard_normal_log_prob(z) + log_det

    def flow_sample(self, params: Params, z: jax.Array, **options: Any) -> jax.Array:
        """Map latents ``z`` (work shape) to preprocessed data through the flow's forward map."""
        del options
        return self.flow(params).forward(z)
