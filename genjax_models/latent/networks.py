"""The Flax Linen encoder and decoder networks of the VAE family (flat vectors in, flat out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.nn.mlp import MLP


class GaussianEncoder(nn.Module):
    """Map ``x [B, D] -> (mean [B, K], log_std [B, K])`` of q(z | x) = N(mean, diag(std^2)).

    One MLP with ``2K`` outputs split into mean and log-std; ``hidden=()`` makes it linear
    (``[mean, log_std] = x W + c``). log_std is clipped to ``[log_std_min, log_std_max]`` so
    that exp(log_std) can neither underflow nor blow up early in training.

    Attributes:
      hidden: hidden-layer widths (``()`` for a linear encoder).
      latent_dim: K.
      activation: elementwise non-linearity.
      log_std_min, log_std_max: clipping range of log_std.
    """

    hidden: Sequence[int]
    latent_dim: int
    activation: Callable[[jax.Array], jax.Array] = nn.gelu
    log_std_min: float = -10.0
    log_std_max: float = 5.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(tuple(self.hidden), 2 * self.latent_dim, self.activation, name="net")(x)
        mean, log_std = jnp.split(h, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class Decoder(nn.Module):
    """Map ``z [B, K] -> (out [B, D], log_scale [D] | None)``, the parameters of p(x | z).

    ``out`` is the MLP output (Bernoulli logits, or the mean of a Gaussian / discretised
    logistic); ``hidden=()`` makes it linear (``out = z W^T + b``). With ``learn_scale`` a
    per-dimension log-scale parameter ``log_scale [D]`` (initialised at 0, clipped to
    ``[log_scale_min, log_scale_max]``) is returned as well; otherwise ``None``.

    Attributes:
      hidden: hidden-layer widths (``()`` for a linear decoder).
      out_dim: D.
      activation: elementwise non-linearity.
      learn_scale: also return a learned per-dimension log-scale.
      log_scale_min, log_scale_max: clipping range of the log-scale.
    """

    hidden: Sequence[int]
    out_dim: int
    activation: Callable[[jax.Array], jax.Array] = nn.gelu
    learn_scale: bool = False
    log_scale_min: float = -7.0
    log_scale_max: float = 5.0

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        out = MLP(tuple(self.hidden), self.out_dim, self.activation, name="net")(z)
        if not self.learn_scale:
            return out, None
        log_scale = self.param("log_scale", nn.initializers.zeros, (self.out_dim,), out.dtype)
        return out, jnp.clip(log_scale, self.log_scale_min, self.log_scale_max)
