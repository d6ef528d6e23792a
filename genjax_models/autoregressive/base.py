"""The shared base of every autoregressive model: chain rule, ancestral sampling, completion.

Pick an ordering ``o = (o_1, ..., o_D)`` of the D = prod(event_shape) positions (raster order
unless a model says otherwise). Any joint distribution factorises by the chain rule,

    log p(x) = sum_{t=1..D} log p(x_{o_t} | x_{o_1}, ..., x_{o_{t-1}}),

so a network that outputs, for every position i, the parameters ``out_i [P]`` of a
one-dimensional conditional (:class:`~genjax_models.autoregressive.conditionals.Conditional`)
depending only on the positions before i gives an exact, normalised likelihood. A model
subclasses :class:`AutoregressiveModel` and implements

- ``init_params(key, x [B, D], y) -> params``;
- ``conditional_outputs(params, x [B, D], y) -> out [B, D, P]``, every position in parallel
  ("teacher forcing"): ``out[:, i]`` must not depend on ``x[:, j]`` unless j is before i;

and, where it can do better than one full network pass per sampled position,
``sample_state`` / ``sample_step`` (a cache: the Transformer's keys and values, the RNN's
hidden state, NADE's running pre-activation).

**Sampling** is one ``lax.scan`` over t = 1..D: position ``o_t`` is drawn from its
conditional given the positions already drawn (the rest of ``x`` is zero, which the
autoregressive structure ignores). With the default ``sample_step`` that costs D network
passes.

**Completion** runs the same scan with the observed entries clamped: at an observed position
the value is kept and its conditional log-probability is added to a log-weight; at a missing
position a value is drawn. When every observed position precedes every missing one in the
ordering, the draws are exact samples of p(x_missing | x_observed) and the log-weight is the
exact log p(x_observed). Otherwise each draw is a proposal: ``num_particles`` of them are
weighted, ``log p(x_observed)`` is estimated by ``logsumexp(w) - log K`` (a stochastic lower
bound by Jensen's inequality; unbiased in p) and the completions are resampled by weight
(sampling-importance-resampling), which is consistent as K grows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from genjax_models.autoregressive.conditionals import Conditional
from genjax_models.completion import Completion, check_observed_array
from genjax_models.data.batch import Batch
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError
from genjax_models.fields import Option
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params

TEMPERATURE = Option(
    "temperature",
    float,
    1.0,
    "sharpen (< 1) or flatten (> 1) every conditional: logits are divided by T, Gaussian "
    "std multiplied by sqrt(T), logistic scales by T",
)
NUM_PARTICLES = Option(
    "num_particles",
    int,
    16,
    "proposals per example when the observed entries do not all precede the missing ones "
    "in the ordering (importance resampling; ignored where the completion is exact)",
)


def check_temperature(value: float) -> float:
    """Return a valid sampling temperature (> 0, finite) or raise ``ConfigError``."""
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"temperature must be > 0, got {value!r}")
    return value


def observed_first(observed_in_order: Bool[Array, "b d"]) -> Bool[Array, " b"]:
    """Return, per row, whether the observed entries form a prefix of the ordering."""
    as_int = observed_in_order.astype(jnp.int32)
    return jnp.all(as_int[:, 1:] <= as_int[:, :-1], axis=1)


@dataclasses.dataclass(frozen=True)
class AutoregressiveModel(ModelBase):
    """Shared base of the autoregressive models (see the module docstring).

    Attributes:
      likelihood: per-pixel conditional: ``"bernoulli"`` (binary data), ``"categorical"`` or
        ``"logistic-mixture"`` (grey data on the grid ``level / (num_levels - 1)``), or
        ``"gaussian-mixture"`` (continuous data); chosen from the data, among the model's
        ``supported_likelihoods``.
      num_levels: L, the number of grey levels (categorical and logistic-mixture).
      num_components: K, mixture components of the mixture likelihoods.
    """

    likelihood: str = "bernoulli"
    num_levels: int | None = None
    num_components: int = 5

    supported_likelihoods: ClassVar[tuple[str, ...]] = ("bernoulli", "categorical")
    sample_options: ClassVar[tuple[Option, ...]] = (TEMPERATURE,)
    complete_options: ClassVar[tuple[Option, ...]] = (NUM_PARTICLES,)
    can_complete: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.likelihood not in self.supported_likelihoods:
            raise ConfigError(
                f"{self.name} does not support likelihood={self.likelihood!r}; valid: "
                f"{', '.join(self.supported_likelihoods)}"
            )
        self.conditional  # validates num_levels / num_components  # noqa: B018

    @property
    def conditional(self) -> Conditional:
        """The per-pixel conditional family."""
        return Conditional(self.likelihood, self.num_levels, self.num_components)

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Return Bernoulli for binary data, categorical for grey levels, mixtures otherwise.

        Raises:
          ConfigError: continuous data for a model without a continuous likelihood.
        """
        if spec.data_type == "binary":
            return {"likelihood": "bernoulli"}
        if spec.data_type == "grey":
            return {"likelihood": "categorical", "num_levels": spec.num_levels}
        if "gaussian-mixture" in cls.supported_likelihoods:
            return {"likelihood": "gaussian-mixture"}
        raise ConfigError(
            f"{cls.name} models discrete pixels, but the data are continuous: binarise them "
            "with --set data.binarize=threshold(8) (or data.binarize=dynamic), or keep grey "
            "levels with data.dequantize=none"
        )

    # ------------------------------------------------------------------- hooks
    def init_params(self, key: jax.Array, x: Float[Array, "b d"], y: jax.Array | None) -> Params:
        """Return initial parameters for flat examples ``x [B, D]`` (subclasses implement)."""
        raise NotImplementedError

    def conditional_outputs(
        self, params: Params, x: Float[Array, "b d"], y: jax.Array | None
    ) -> Float[Array, "b d p"]:
        """Return every position's conditional parameters ``[B, D, P]`` (subclasses implement).

        ``out[:, i]`` may depend on ``x[:, j]`` only for j before i in :meth:`ordering`.
        """
        raise NotImplementedError

    def ordering(self) -> np.ndarray:
        """Return the positions ``[D]`` first to last (raster order by default)."""
        return np.arange(self.num_dims)

    def sample_state(self, params: Params, num: int, y: jax.Array | None) -> Any:
        """Return the initial sampling cache (none by default)."""
        del params, num, y
        return None

    def sample_step(
        self,
        params: Params,
        state: Any,
        x: Float[Array, "n d"],
        t: jax.Array,
        y: jax.Array | None,
    ) -> tuple[Float[Array, "n p"], Any]:
        """Return the conditional parameters of position ``ordering()[t]`` and the new cache.

        ``x`` holds the positions drawn so far (zeros elsewhere). The default recomputes the
        whole network, one full pass per position.
        """
        position = jnp.asarray(self.ordering())[t]
        return self.conditional_outputs(params, x, y)[:, position], state

    # ------------------------------------------------------------------ shared
    def flatten(self, batch: Batch | jax.Array) -> tuple[Float[Array, "b d"], jax.Array | None]:
        """Check ``batch`` is ``[B, *event_shape]``; return flat floats ``[B, D]`` and labels."""
        x, y = self.check_batch(batch)
        return x.reshape(x.shape[0], self.num_dims), y

    def flat_log_prob(
        self, params: Params, x: Float[Array, "b d"], y: jax.Array | None = None
    ) -> Float[Array, " b"]:
        """Return log p(x) = sum_i log p(x_i | x_before_i) for flat ``x [B, D]``."""
        out = self.conditional_outputs(params, x, y)
        return self.conditional.log_prob(out, x).sum(axis=-1)

    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise the parameters from an example batch (its shapes and float dtype)."""
        x, y = self.flatten(batch)
        return self.init_params(key, x, y)

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Compute the mean negative log-likelihood in nats (exact; ``key`` is unused).

        Returns:
          ``(loss, metrics)`` with metrics ``loss`` and ``nll`` (the same mean NLL).
        """
        del key
        x, y = self.flatten(batch)
        nll = -jnp.mean(self.flat_log_prob(params, x, y))
        return nll, {"loss": nll, "nll": nll}

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Return the exact log p(x) per example in nats, ``[B]`` (``key`` is unused)."""
        del key
        self.resolve_log_prob_options(options)
        x, y = self.flatten(batch)
        return self.flat_log_prob(params, x, y)

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: exact, by the chain rule in the model's ordering."""
        self.resolve_log_prob_options(options)
        return LogProbInfo("exact", "exact", {"order": self.ordering_name()})

    def ordering_name(self) -> str:
        """Name the ordering for reports (``"raster"`` unless a model says otherwise)."""
        return "raster"

    def ancestral(
        self,
        params: Params,
        key: jax.Array,
        fixed: Float[Array, "n d"],
        observed: Bool[Array, "n d"],
        y: jax.Array | None,
        temperature: float = 1.0,
    ) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
        """Draw the unobserved positions in order, one ``lax.scan`` step per position.

        Args:
          params: model parameters.
          key: PRNG key; step t uses ``fold_in(key, t)``.
          fixed: ``[n, D]`` values kept where ``observed``.
          observed: ``[n, D]`` bools.
          y: labels ``[n]`` or None.
          temperature: sampling temperature (1 = the model).

        Returns:
          ``(x [n, D], log_weight [n])``: the filled-in rows and the sum over observed
          positions of log p(x_i | x_before_i).
        """
        order = jnp.asarray(self.ordering())
        cond = self.conditional
        num = fixed.shape[0]
        fixed = jnp.where(observed, fixed, 0.0)

        def step(carry: tuple, t: jax.Array) -> tuple[tuple, None]:
            x, state, log_weight = carry
            position = order[t]
            out, state = self.sample_step(params, state, x, t, y)
            drawn = cond.sample(jax.random.fold_in(key, t), out, temperature)
            seen = observed[:, position]
            kept = fixed[:, position]
            log_weight = log_weight + jnp.where(seen, cond.log_prob(out, kept), 0.0)
            x = x.at[:, position].set(jnp.where(seen, kept, drawn))
            return (x, state, log_weight), None

        carry = (
            jnp.zeros((num, self.num_dims), fixed.dtype),
            self.sample_state(params, num, y),
            jnp.zeros((num,), fixed.dtype),
        )
        (x, _, log_weight), _ = jax.lax.scan(step, carry, jnp.arange(self.num_dims))
        return x, log_weight

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples one position at a time in the model's ordering.

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          labels: ``[num]`` class labels for a conditional model, else None.
          **options: ``temperature`` (default 1.0, > 0).

        Returns:
          ``[num, *event_shape]``: in {0, 1} (Bernoulli), on ``level / (L - 1)``
          (categorical, logistic mixture) or real (Gaussian mixture).
        """
        y = self.check_sample_labels(labels, num)
        temperature = check_temperature(self.resolve_sample_options(options)["temperature"])
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        blank = jnp.zeros((num, self.num_dims), dtype)
        x, _ = self.ancestral(params, key, blank, blank.astype(bool), y, temperature)
        return x.reshape(num, *self.event_shape)

    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion:
        """Fill in the missing entries of ``batch`` (see the module docstring).

        Args:
          params: model parameters.
          key: PRNG key.
          batch: ``[B, *event_shape]`` examples (missing entries may hold anything finite).
          observed: bool mask ``[*event_shape]`` or ``[B, *event_shape]`` (True = observed).
          num_completions: completions per example (static).
          **options: ``num_particles`` (default 16): proposals per example where the
            completion is not exact; at least ``num_completions`` are used.

        Returns:
          :class:`~genjax_models.completion.Completion` with samples
          ``[num_completions, B, *event_shape]``.
        """
        particles = max(int(self.resolve_complete_options(options)["num_particles"]), 1)
        particles = max(particles, num_completions)
        x, y = self.flatten(batch)
        num = x.shape[0]
        seen = check_observed_array(observed, self.event_shape, num).reshape(num, -1)
        exact = observed_first(seen[:, jnp.asarray(self.ordering())])
        rows = jnp.repeat(x, particles, axis=0)
        rows_seen = jnp.repeat(seen, particles, axis=0)
        rows_y = None if y is None else jnp.repeat(y, particles)
        draw_key, pick_key = jax.random.split(key)
        filled, log_w = self.ancestral(params, draw_key, rows, rows_seen, rows_y)
        filled = filled.reshape(num, particles, self.num_dims)
        log_w = log_w.reshape(num, particles)
        estimate = jax.nn.logsumexp(log_w, axis=1) - math.log(particles)
        log_p = jnp.where(exact, log_w[:, 0], estimate)
        resampled = jax.random.categorical(
            pick_key, log_w[:, None, :], axis=-1, shape=(num, num_completions)
        )
        first = jnp.broadcast_to(jnp.arange(num_completions), (num, num_completions))
        index = jnp.where(exact[:, None], first, resampled)  # [B, n]
        picked = jnp.take_along_axis(filled, index[..., None], axis=1)  # [B, n, D]
        samples = jnp.swapaxes(picked, 0, 1).reshape(num_completions, num, *self.event_shape)
        return Completion(samples, log_p, exact)
