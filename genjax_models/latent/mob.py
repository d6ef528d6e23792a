"""The mixture of Bernoullis for binary images, fitted by EM (in ``init``) and gradient steps.

Model over flat binary examples x in {0, 1}^D (D = prod(event_shape), any event shape):

    p(x) = sum_{k=1..K} pi_k prod_d p_kd^{x_d} (1 - p_kd)^{1 - x_d},
    pi = softmax(logits),  p_k = sigmoid(pixel_logits_k),

with unconstrained ``logits [K]`` and ``pixel_logits [K, D]``. ``log_prob`` is exact
(logsumexp over components; per component ``x . l_k - sum_d softplus(l_kd)``, two matmuls).

The M step is smoothed so the probabilities stay inside (0, 1): it is the MAP step under a
symmetric Beta(1 + a, 1 + a) prior on each p_kd (``a = smoothing``),

    pi_k = N_k / N,    p_kd = (sum_n r_nk x_nd + a) / (N_k + 2 a),

so EM never decreases ``sum_n log p(x_n) + a sum_kd [log p_kd + log(1 - p_kd)]``
(:meth:`MixtureOfBernoullis.log_prior` is the second term). a = 0 is plain maximum
likelihood (probabilities are then clipped to [1e-6, 1 - 1e-6]).

**Missing data.** A missing pixel's factor sums to 1, so p(x_o | k) is the product over the
observed pixels only, p(x_o) = sum_k pi_k p(x_o | k), and a completion draws k from
p(k | x_o), then the missing pixels independently from Bernoulli(p_k).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError
from genjax_models.fields import Option
from genjax_models.latent.mixture import (
    MixtureModel,
    assign,
    em_step,
    fit_em,
    kmeans_plus_plus,
    responsibilities,
    weights_from_counts,
)
from genjax_models.model import LogProbInfo, Params, RunRecipe

_CLIP = 1e-6


@dataclasses.dataclass(frozen=True)
class MixtureOfBernoullis(MixtureModel):
    """A K-component mixture of factorised Bernoullis over binary images (module docstring).

    Attributes:
      num_components: K, the number of mixture components.
      em_iterations: EM iterations run in ``init`` on the init batch, from a k-means++
        initialisation (0: k-means++ initialisation only).
      smoothing: a, the Beta(1 + a, 1 + a) smoothing of the M step's pixel probabilities
        (pseudo-counts of a ones and a zeros per component); 0 is maximum likelihood.
    """

    num_components: int = 32
    em_iterations: int = 50
    smoothing: float = 0.5

    name: ClassVar[str] = "mob"
    sample_options: ClassVar[tuple[Option, ...]] = (
        Option("mean", bool, False, "return the component's pixel probabilities, not draws"),
    )
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="digits",
        binarize="threshold(8)",
        train={
            "steps": 200,
            "batch_size": 1438,
            "lr": 1e-3,
            "log_every": 50,
            "checkpoint_every": 200,
            "steps_per_call": 50,
        },
        expected="a few seconds on a 2-core CPU: EM on the whole training set in init, "
        "then 200 Adam steps; test NLL ~17.9 nats (exact)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.smoothing >= 0 and math.isfinite(self.smoothing)):
            raise ConfigError(f"smoothing must be >= 0 and finite, got {self.smoothing!r}")

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Refuse non-binary data (the model is a distribution over {0, 1}^D)."""
        if spec.data_type != "binary":
            raise ConfigError(
                "mob models binary pixels, but the data are not binary: binarise them with "
                "--set data.binarize=threshold(8) (or data.binarize=dynamic)"
            )
        return {}

    # ------------------------------------------------------------------ pieces
    def probabilities(self, params: Params) -> Float[Array, "k d"]:
        """Return the pixel probabilities p_k ``[K, D]``."""
        return jax.nn.sigmoid(params["pixel_logits"])

    def component_log_likelihood(
        self, params: Params, x: Float[Array, "b d"], observed: jax.Array | None
    ) -> Float[Array, "b k"]:
        """Return log p(x_o | k) = sum_{d observed} [x_d l_kd - softplus(l_kd)], ``[B, K]``."""
        logits = params["pixel_logits"]
        if observed is None:
            return x @ logits.T - jax.nn.softplus(logits).sum(-1)
        seen = observed.astype(x.dtype)
        return (x * seen) @ logits.T - seen @ jax.nn.softplus(logits).T

    def m_step(self, x: Float[Array, "n d"], resp: Float[Array, "n k"]) -> Params:
        """Return the smoothed M-step parameters (module docstring) for flat ``x``."""
        counts = resp.sum(axis=0)
        a = self.smoothing
        tiny = 10 * jnp.finfo(x.dtype).eps
        probs = (resp.T @ x + a) / (counts[:, None] + 2 * a + tiny)
        probs = jnp.clip(probs, _CLIP, 1 - _CLIP)
        return {
            "logits": weights_from_counts(counts),
            "pixel_logits": jnp.log(probs) - jnp.log1p(-probs),
        }

    def log_prior(self, params: Params) -> jax.Array:
        """Return a sum_kd [log p_kd + log(1 - p_kd)], the penalty the M step maximises."""
        logits = params["pixel_logits"]
        return -self.smoothing * jnp.sum(jax.nn.softplus(logits) + jax.nn.softplus(-logits))

    def draw_given(
        self,
        params: Params,
        key: jax.Array,
        x: Float[Array, "b d"],
        observed: jax.Array,
        comps: Int[Array, "n b"],
    ) -> Float[Array, "n b d"]:
        """Draw every pixel from Bernoulli(p_k), k = ``comps[i, b]`` (observed ones are kept)."""
        del observed
        probs = self.probabilities(params)[comps]
        return jax.random.bernoulli(key, probs).astype(x.dtype)

    # ---------------------------------------------------------------- protocol
    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples: k ~ Categorical(pi), then each pixel ~ Bernoulli(p_kd).

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          labels: must be None (the model is unconditional).
          **options: ``mean`` (default False): return p_k of the drawn component instead.

        Returns:
          ``[num, *event_shape]`` floats in {0, 1} (or probabilities with ``mean``).
        """
        self.check_sample_labels(labels, num)
        mean = self.resolve_sample_options(options)["mean"]
        comp_key, pix_key = jax.random.split(key)
        probs = self.probabilities(params)[self.sample_components(params, comp_key, num)]
        x = probs if mean else jax.random.bernoulli(pix_key, probs).astype(probs.dtype)
        return x.reshape(num, *self.event_shape)

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: exact, by logsumexp over the K Bernoulli components."""
        self.resolve_log_prob_options(options)
        return LogProbInfo("exact", "exact", {"num_components": self.num_components})


__all__ = [
    "MixtureOfBernoullis",
    "assign",
    "em_step",
    "fit_em",
    "kmeans_plus_plus",
    "responsibilities",
]
