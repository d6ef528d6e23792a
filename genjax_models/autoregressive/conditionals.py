"""The one-dimensional conditionals p(x_i | x_<i) that autoregressive models put on each pixel.

An autoregressive network outputs, for every position i, a vector ``out_i`` of
``num_outputs`` numbers that parameterise the conditional of ``x_i``:

- ``"bernoulli"`` (binary data, x in {0, 1}): ``out = [logit]``,
  ``log p(x) = x log sigmoid(l) + (1 - x) log sigmoid(-l)``;
- ``"categorical"`` (grey data on the grid ``x = level / (L - 1)``): ``out`` = L logits,
  ``log p(x) = log_softmax(out)[level]``;
- ``"gaussian-mixture"`` (continuous data; RNADE, Uria et al. 2013): ``out`` = K mixture
  logits, K means, K log standard deviations,
  ``log p(x) = logsumexp_k [log pi_k + log N(x; mu_k, sigma_k^2)]`` (a density);
- ``"logistic-mixture"`` (grey data; PixelCNN++, Salimans et al. 2017): ``out`` = K logits,
  K means, K log scales of logistic distributions on the [0, 1] scale, discretised onto the
  L levels: level l takes the mass of ``[x_l - h, x_l + h]`` with ``h = 1 / (2 (L - 1))``,
  the lowest level everything below ``h``, the highest everything above ``1 - h``.

Temperature T (sampling only) divides the mixture or class logits by T and multiplies
Gaussian standard deviations by sqrt(T) and logistic scales by T (T = 1 is the model).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError, unknown_name

CONDITIONALS: tuple[str, ...] = (
    "bernoulli",
    "categorical",
    "gaussian-mixture",
    "logistic-mixture",
)
# Log standard deviations / log scales are clipped here, so a runaway output never gives inf.
_MIN_LOG_SCALE = -7.0


def _log_diff_exp(a: jax.Array, b: jax.Array) -> jax.Array:
    """Return log(exp(a) - exp(b)) for a >= b, stably (``-inf`` where a == b)."""
    return a + jnp.log(-jnp.expm1(jnp.minimum(b - a, 0.0)) + 1e-30)


@dataclasses.dataclass(frozen=True)
class Conditional:
    """One family of per-pixel conditionals (see the module docstring).

    Attributes:
      kind: one of ``CONDITIONALS``.
      num_levels: L, the grey levels (``"categorical"`` and ``"logistic-mixture"``).
      num_components: K, the mixture components (the two mixtures).
    """

    kind: str
    num_levels: int | None = None
    num_components: int = 5

    def __post_init__(self) -> None:
        if self.kind not in CONDITIONALS:
            raise unknown_name("likelihood", self.kind, CONDITIONALS)
        if self.kind in ("categorical", "logistic-mixture") and (
            self.num_levels is None or self.num_levels < 2
        ):
            raise ConfigError(
                f"likelihood={self.kind!r} needs num_levels >= 2 (the number of grey levels "
                f"of the data), got num_levels={self.num_levels!r}"
            )
        if self.num_components < 1:
            raise ConfigError(f"num_components must be >= 1, got {self.num_components!r}")

    @property
    def num_outputs(self) -> int:
        """P, the network outputs per position."""
        if self.kind == "bernoulli":
            return 1
        if self.kind == "categorical":
            return int(self.num_levels)
        return 3 * self.num_components

    @property
    def discrete(self) -> bool:
        """Whether x takes finitely many values (log_prob is a log-probability, not a density)."""
        return self.kind != "gaussian-mixture"

    def levels(self, x: jax.Array) -> jax.Array:
        """Return the integer level ``round(x (L - 1))`` of grey values, clipped to the grid."""
        top = self.num_levels - 1
        return jnp.clip(jnp.round(x * top), 0, top).astype(jnp.int32)

    def _mixture(self, out: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        k = self.num_components
        logits, means, log_scales = out[..., :k], out[..., k : 2 * k], out[..., 2 * k :]
        return logits, means, jnp.maximum(log_scales, _MIN_LOG_SCALE)

    def log_prob(self, out: Float[Array, "*b p"], x: Float[Array, "*b"]) -> Float[Array, "*b"]:
        """Return log p(x | out) elementwise: ``out [..., P]``, ``x [...]`` -> ``[...]``."""
        if self.kind == "bernoulli":
            logit = out[..., 0]
            return x * jax.nn.log_sigmoid(logit) + (1 - x) * jax.nn.log_sigmoid(-logit)
        if self.kind == "categorical":
            log_probs = jax.nn.log_softmax(out, axis=-1)
            return jnp.take_along_axis(log_probs, self.levels(x)[..., None], axis=-1)[..., 0]
        logits, means, log_scales = self._mixture(out)
        log_weights = jax.nn.log_softmax(logits, axis=-1)
        if self.kind == "gaussian-mixture":
            z = (x[..., None] - means) * jnp.exp(-log_scales)
            comp = -0.5 * z**2 - log_scales - 0.5 * math.log(2 * math.pi)
            return jax.nn.logsumexp(log_weights + comp, axis=-1)
        return jax.nn.logsumexp(log_weights + self._logistic_bin(x, means, log_scales), axis=-1)

    def _logistic_bin(self, x: jax.Array, means: jax.Array, log_scales: jax.Array) -> jax.Array:
        """Return log P(level of x) under each logistic component, ``[..., K]``."""
        top = self.num_levels - 1
        level = self.levels(x)[..., None]
        centre = level.astype(means.dtype) / top
        half = 0.5 / top
        inv_s = jnp.exp(-log_scales)
        upper = (centre + half - means) * inv_s
        lower = (centre - half - means) * inv_s
        # log CDF(u) = log_sigmoid(u); log (1 - CDF(l)) = log_sigmoid(-l).
        log_cdf_upper = jnp.where(level == top, 0.0, jax.nn.log_sigmoid(upper))
        log_cdf_lower = jnp.where(level == 0, -jnp.inf, jax.nn.log_sigmoid(lower))
        inner = _log_diff_exp(log_cdf_upper, log_cdf_lower)
        # Far in the tails the difference of two CDFs underflows: use the density there.
        mid = (centre - means) * inv_s
        density = mid - log_scales - 2 * jax.nn.softplus(mid) + math.log(2 * half)
        return jnp.where(inner < -20.0, jnp.maximum(density, inner), inner)

    def sample(
        self, key: jax.Array, out: Float[Array, "*b p"], temperature: float = 1.0
    ) -> Float[Array, "*b"]:
        """Draw x from the conditional given by ``out [..., P]`` -> ``[...]`` (data scale)."""
        if self.kind == "bernoulli":
            logit = out[..., 0] / temperature
            return jax.random.bernoulli(key, jax.nn.sigmoid(logit)).astype(out.dtype)
        if self.kind == "categorical":
            level = jax.random.categorical(key, out / temperature, axis=-1)
            return level.astype(out.dtype) / (self.num_levels - 1)
        logits, means, log_scales = self._mixture(out)
        pick_key, noise_key = jax.random.split(key)
        comp = jax.random.categorical(pick_key, logits / temperature, axis=-1)[..., None]
        mean = jnp.take_along_axis(means, comp, axis=-1)[..., 0]
        log_scale = jnp.take_along_axis(log_scales, comp, axis=-1)[..., 0]
        if self.kind == "gaussian-mixture":
            noise = jax.random.normal(noise_key, mean.shape, out.dtype)
            return mean + jnp.sqrt(temperature) * jnp.exp(log_scale) * noise
        noise = jax.random.logistic(noise_key, mean.shape, out.dtype)
        value = mean + temperature * jnp.exp(log_scale) * noise
        return self.levels(value).astype(out.dtype) / (self.num_levels - 1)
