"""The Flax Linen encoder and decoder networks of the VAE family (flat vectors in, flat out).

``GaussianEncoder`` / ``Decoder`` are MLPs; ``ConvGaussianEncoder`` / ``ConvDecoderHead`` put
the convolutional stacks of :mod:`genjax_models.nn.conv_autoencoder` around a dense layer to
or from the latent vector, for image data (``model.architecture=conv``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.nn.conv_autoencoder import ConvDecoder, ConvEncoder
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


class ConvGaussianEncoder(nn.Module):
    """Map flat ``h [B, D + C] -> (mean [B, K], log_std [B, K])`` through a conv net on the image.

    The first D = H W C_img entries of ``h`` are the image, reshaped to ``image_shape`` and fed
    to a :class:`~genjax_models.nn.conv_autoencoder.ConvEncoder` (S stride-2 convolutions, R
    residual blocks, F channels); its ``[B, H / 2^S, W / 2^S, F]`` output is flattened and,
    with the remaining C entries of ``h`` (a conditioning vector such as a one-hot label,
    none for the plain VAE), mapped by one dense layer to the 2K outputs. log_std is clipped
    as in :class:`GaussianEncoder`.

    Attributes:
      image_shape: ``(H, W, C_img)``.
      features: F.
      num_downsample: S.
      num_residual: R.
      latent_dim: K.
      log_std_min, log_std_max: clipping range of log_std.
    """

    image_shape: tuple[int, int, int]
    features: int
    num_downsample: int
    num_residual: int
    latent_dim: int
    log_std_min: float = -10.0
    log_std_max: float = 5.0

    @nn.compact
    def __call__(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        num_pixels = math.prod(self.image_shape)
        image = h[:, :num_pixels].reshape(h.shape[0], *self.image_shape)
        grid = ConvEncoder(self.features, self.num_downsample, self.num_residual,
                           self.features)(image)
        feats = jnp.concatenate([nn.relu(grid).reshape(h.shape[0], -1), h[:, num_pixels:]], -1)
        out = nn.Dense(2 * self.latent_dim, name="head")(feats)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class ConvDecoderHead(nn.Module):
    """Map ``z [B, K (+ C)] -> (out [B, D], log_scale [D] | None)`` through a conv net.

    One dense layer maps z to a ``[B, H / 2^S, W / 2^S, F]`` grid, a
    :class:`~genjax_models.nn.conv_autoencoder.ConvDecoder` upsamples it to
    ``[B, H, W, C_img]`` outputs, flattened to ``[B, D]`` (Bernoulli logits, or the mean of a
    Gaussian / discretised logistic). ``learn_scale`` adds the per-dimension log-scale of
    :class:`Decoder`.

    Attributes:
      image_shape: ``(H, W, C_img)``.
      features: F.
      num_upsample: S.
      num_residual: R.
      learn_scale: also return a learned per-dimension log-scale.
      log_scale_min, log_scale_max: clipping range of the log-scale.
    """

    image_shape: tuple[int, int, int]
    features: int
    num_upsample: int
    num_residual: int
    learn_scale: bool = False
    log_scale_min: float = -7.0
    log_scale_max: float = 5.0

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        height, width, channels = self.image_shape
        scale = 2**self.num_upsample
        grid_shape = (height // scale, width // scale, self.features)
        grid = nn.Dense(math.prod(grid_shape), name="stem")(z).reshape(z.shape[0], *grid_shape)
        out = ConvDecoder(self.features, self.num_upsample, self.num_residual, channels)(grid)
        out = out.reshape(z.shape[0], height * width * channels)
        if not self.learn_scale:
            return out, None
        log_scale = self.param("log_scale", nn.initializers.zeros, (out.shape[-1],), out.dtype)
        return out, jnp.clip(log_scale, self.log_scale_min, self.log_scale_max)
