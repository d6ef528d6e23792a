"""Convolutional encoder and decoder for images, the VQ-VAE paper's layout at small sizes.

Encoder ``[B, H, W, C] -> [B, H / 2^S, W / 2^S, D]``: S stride-2 4x4 convolutions (F channels,
ReLU), R residual blocks ``h + conv1x1(relu(conv3x3(relu(h))))``, a ReLU and a 1x1 projection
to D channels. Decoder ``[B, h, w, D] -> [B, h 2^S, w 2^S, P]``: a 3x3 convolution to F channels,
R residual blocks, a ReLU, then S times (nearest-neighbour 2x upsampling, 3x3 convolution,
ReLU) and a last 3x3 convolution to P output channels. Upsampling by repetition plus a
convolution avoids transposed convolutions (and their checkerboard artefacts); every
convolution is :class:`~genjax_models.nn.conv.Conv`, whose gradients stay fast inside the
trainer's ``lax.scan`` on CPU.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.nn.conv import Conv


class ResidualBlock(nn.Module):
    """``h -> h + conv1x1(relu(conv3x3(relu(h))))``, shape-preserving.

    Attributes:
      features: F, the channels of ``h`` (and of the 3x3 convolution).
    """

    features: int

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        inner = Conv(self.features, (3, 3))(nn.relu(h))
        return h + Conv(self.features, (1, 1))(nn.relu(inner))


class ConvEncoder(nn.Module):
    """Images ``[B, H, W, C]`` in [0, 1] -> latent grid ``[B, H / 2^S, W / 2^S, D]``.

    Attributes:
      features: F, channels of the hidden layers.
      num_downsample: S, the stride-2 convolutions.
      num_residual: R, residual blocks at the low resolution.
      out_features: D, channels of the output grid.
    """

    features: int
    num_downsample: int
    num_residual: int
    out_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = 2.0 * x - 1.0
        for _ in range(self.num_downsample):
            h = nn.relu(Conv(self.features, (4, 4), strides=(2, 2))(h))
        for _ in range(self.num_residual):
            h = ResidualBlock(self.features)(h)
        return Conv(self.out_features, (1, 1))(nn.relu(h))


def upsample_nearest(h: jax.Array) -> jax.Array:
    """``[B, h, w, C] -> [B, 2h, 2w, C]`` by repeating every pixel into a 2x2 block."""
    return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


class ConvDecoder(nn.Module):
    """Latent grid ``[B, h, w, D]`` -> outputs ``[B, h 2^S, w 2^S, P]`` (e.g. Bernoulli logits).

    Attributes:
      features: F, channels of the hidden layers.
      num_upsample: S, the 2x upsampling stages.
      num_residual: R, residual blocks at the low resolution.
      out_features: P, output channels per pixel.
    """

    features: int
    num_upsample: int
    num_residual: int
    out_features: int

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = Conv(self.features, (3, 3))(z)
        for _ in range(self.num_residual):
            h = ResidualBlock(self.features)(h)
        h = nn.relu(h)
        for _ in range(self.num_upsample):
            h = nn.relu(Conv(self.features, (3, 3))(upsample_nearest(h)))
        return Conv(self.out_features, (3, 3))(h)
