"""The fully visible sigmoid belief network (FVSBN; Frey, 1998): a linear autoregressive model.

The D = prod(event_shape) pixels, flattened in raster order, are modelled one after another:

    p(x) = prod_{i=1..D} p(x_i | x_{<i}),    logit_i = b_i + sum_{j<i} W_ij x_j,

with ``W`` strictly lower triangular (the full ``[D, D]`` matrix is masked, so one matmul
gives all D logits in parallel for ``log_prob`` and ``loss``). Binary data have Bernoulli
conditionals ``x_i ~ Bernoulli(sigmoid(logit_i))``. Grey data (values ``level / (L - 1)``)
have categorical conditionals over the L levels,

    logits_i = b_i + sum_{j<i} W_ij x_j  in R^L,    W: [D, D, L] masked in (i, j),

where the input x_j is the scaled scalar value of pixel j. ``log_prob`` is exact; sampling
draws the pixels one at a time with one ``lax.scan`` over the D positions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.data.batch import Batch
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, unknown_name
from genjax_models.fields import Option
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params, RunRecipe

LIKELIHOODS: tuple[str, ...] = ("bernoulli", "categorical")


def strictly_lower_mask(num_dims: int, dtype: Any = jnp.float32) -> Float[Array, "d d"]:
    """Return the ``[D, D]`` mask with ones where j < i (row i: the inputs of logit i)."""
    return jnp.tril(jnp.ones((num_dims, num_dims), dtype), k=-1)


@dataclasses.dataclass(frozen=True)
class FVSBN(ModelBase):
    """A fully visible sigmoid (or softmax) belief network in raster order.

    Params are ``{"b": [D] | [D, L], "W": [D, D] | [D, D, L]}``; ``W`` is masked to be strictly
    lower triangular in (i, j) wherever it is used, so its upper part never matters.

    Attributes:
      event_shape: shape of one example, e.g. ``(8, 8, 1)``; batches are ``[B, *event_shape]``
        and are flattened to ``[B, D]`` in raster order.
      likelihood: conditional family, ``"bernoulli"`` (binary data) or ``"categorical"``
        (grey data on the grid ``level / (num_levels - 1)``); chosen from the data.
      num_levels: L, the number of grey levels, required by ``"categorical"``.
      init_scale: standard deviation of the initial weights W (biases start at 0).
    """

    likelihood: str = "bernoulli"
    num_levels: int | None = None
    init_scale: float = 0.01

    name: ClassVar[str] = "fvsbn"
    sample_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "temperature", float, 1.0, "divide every conditional's logits by this (> 0)"
        ),
    )
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="digits",
        binarize="threshold(8)",
        train={
            "steps": 2000,
            "batch_size": 128,
            "lr": 1e-2,
            "log_every": 200,
            "checkpoint_every": 1000,
            "steps_per_call": 100,
        },
        expected="a few seconds on a 2-core CPU; test NLL ~18.2 nats (exact; ref. 18.05)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.likelihood not in LIKELIHOODS:
            raise unknown_name("likelihood", self.likelihood, LIKELIHOODS)
        if self.likelihood == "categorical" and (self.num_levels is None or self.num_levels < 2):
            raise ConfigError(
                "likelihood='categorical' needs num_levels >= 2 (the number of grey levels "
                f"of the data), got num_levels={self.num_levels!r}"
            )
        if not self.init_scale >= 0:
            raise ConfigError(f"init_scale must be >= 0, got {self.init_scale!r}")

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Return Bernoulli conditionals for binary data, categorical ones for grey data.

        Raises:
          ConfigError: continuous data (the FVSBN models discrete pixels).
        """
        if spec.data_type == "binary":
            return {"likelihood": "bernoulli"}
        if spec.data_type == "grey":
            return {"likelihood": "categorical", "num_levels": spec.num_levels}
        raise ConfigError(
            "fvsbn models discrete pixels, but the data are continuous: binarise them with "
            "--set data.binarize=threshold(8) (or data.binarize=dynamic), or keep grey levels "
            "with data.dequantize=none"
        )

    # ------------------------------------------------------------------ pieces
    def flatten(self, batch: Batch | jax.Array) -> Float[Array, "b d"]:
        """Check ``batch`` is ``[B, *event_shape]`` and return it as floats ``[B, D]``."""
        x, _ = self.check_batch(batch)
        return x.reshape(x.shape[0], self.num_dims)

    def masked_weights(self, params: Params) -> Float[Array, "d d *l"]:
        """Return W times the strictly lower-triangular mask, ``[D, D]`` or ``[D, D, L]``."""
        w = params["W"]
        mask = strictly_lower_mask(self.num_dims, w.dtype)
        return w * mask if w.ndim == 2 else w * mask[:, :, None]

    def logits(self, params: Params, x: Float[Array, "b d"]) -> Float[Array, "b d *l"]:
        """Return all D conditionals' logits in parallel for flat ``x [B, D]``.

        ``logit_i = b_i + sum_{j<i} W_ij x_j``: ``[B, D]`` (Bernoulli) or ``[B, D, L]``.
        """
        w = self.masked_weights(params)
        if self.likelihood == "bernoulli":
            return params["b"] + x @ w.T
        return params["b"] + jnp.einsum("bj,ijl->bil", x, w)

    def _flat_log_prob(self, params: Params, x: Float[Array, "b d"]) -> Float[Array, " b"]:
        """Return log p(x) = sum_i log p(x_i | x_{<i}) for flat ``x [B, D]``."""
        logits = self.logits(params, x)
        if self.likelihood == "bernoulli":
            # log p(x_i) = x logsigmoid(l) + (1 - x) logsigmoid(-l), stable for any l.
            per_dim = x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits)
            return per_dim.sum(axis=-1)
        top = self.num_levels - 1
        levels = jnp.clip(jnp.round(x * top), 0, top).astype(jnp.int32)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        picked = jnp.take_along_axis(log_probs, levels[..., None], axis=-1)[..., 0]
        return picked.sum(axis=-1)

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise ``{"b": zeros, "W": init_scale * N(0, 1)}`` in the batch's float dtype."""
        x = self.flatten(batch)
        d = self.num_dims
        tail = () if self.likelihood == "bernoulli" else (self.num_levels,)
        return {
            "b": jnp.zeros((d, *tail), x.dtype),
            "W": self.init_scale * jax.random.normal(key, (d, d, *tail), x.dtype),
        }

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Compute the mean negative log-likelihood in nats (exact; ``key`` is unused).

        Returns:
          ``(loss, metrics)`` with metrics ``loss`` and ``nll`` (the same mean NLL).
        """
        del key
        nll = -jnp.mean(self._flat_log_prob(params, self.flatten(batch)))
        return nll, {"loss": nll, "nll": nll}

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples pixel by pixel in raster order (one ``lax.scan`` over D).

        At step i only logit i is computed, ``b[i] + W[i] @ x``, from the partly filled x
        (zeros at positions >= i, which the mask ignores anyway).

        Args:
          params: model parameters.
          key: PRNG key; pixel i uses ``fold_in(key, i)``.
          num: number of samples (static).
          labels: must be ``None`` (the FVSBN is unconditional).
          **options: ``temperature`` (default 1.0, > 0): logits are divided by it.

        Returns:
          ``[num, *event_shape]`` floats: in {0, 1} (Bernoulli) or ``level / (L - 1)``.
        """
        self.check_sample_labels(labels, num)
        temperature = self.resolve_sample_options(options)["temperature"]
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature!r}")
        w = self.masked_weights(params)
        b = params["b"]
        d = self.num_dims

        def step(x: jax.Array, i: jax.Array) -> tuple[jax.Array, None]:
            step_key = jax.random.fold_in(key, i)
            if self.likelihood == "bernoulli":
                logit = (b[i] + x @ w[i]) / temperature  # [num]
                value = jax.random.bernoulli(step_key, jax.nn.sigmoid(logit)).astype(x.dtype)
            else:
                logit = (b[i] + x @ w[i]) / temperature  # [num, L]
                level = jax.random.categorical(step_key, logit, axis=-1)
                value = level.astype(x.dtype) / (self.num_levels - 1)
            return x.at[:, i].set(value), None

        x0 = jnp.zeros((num, d), b.dtype)
        x, _ = jax.lax.scan(step, x0, jnp.arange(d))
        return x.reshape(num, *self.event_shape)

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Return the exact log p(x) per example in nats, ``[B]`` (``key`` is unused)."""
        del key
        self.resolve_log_prob_options(options)
        return self._flat_log_prob(params, self.flatten(batch))

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: exact, in raster order."""
        self.resolve_log_prob_options(options)
        return LogProbInfo("exact", "exact", {"order": "raster"})
