"""A small U-Net for images ``[B, H, W, C]`` (channels last), conditioned on noise level and label.

Layout (Ho et al. 2020, scaled down), with widths ``base_width * m`` for m in ``channel_mults``:

    x -> Conv3x3 -> [ResBlock x num_res_blocks, Downsample] per level (the last level does not
    downsample) -> ResBlock, [SelfAttention], ResBlock -> mirrored up path: each ResBlock takes the
    concatenation with the matching skip, then Upsample (nearest to the skip's exact size, then
    Conv3x3) -> GroupNorm -> SiLU -> Conv3x3 (zero-initialised, so the network starts at 0).

ResBlock(h, emb) = skip(h) + Conv(SiLU(GN(Conv(SiLU(GN(h))) + Dense(emb)))) with a 1x1 ``skip``
when the width changes. The embedding is TimeEmbedding(c) (+ LabelEmbedding(label) when
``num_classes`` is set). Downsampling is a stride-2 Conv3x3 (SAME padding: H -> ceil(H / 2)), so
any size works: 8x8 -> 4x4 -> 2x2 and 28x28 -> 14x14 -> 7x7 with two levels of downsampling
(``channel_mults`` of length 3). Only GroupNorm is used (no batch statistics, no mutable state);
its group count is gcd(num_groups, width). Self-attention (single head over the H*W positions) at
the lowest resolution is off by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.nn.conditioning import conditioning_embedding
from genjax_models.nn.conv import Conv
from genjax_models.nn.time_embedding import TimeEmbedding, _as_batch


def _group_norm(channels: int, num_groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(num_groups, channels))


class ResBlock(nn.Module):
    """``[B, H, W, C_in], [B, E] -> [B, H, W, width]``: residual block, additive embedding."""

    width: int
    num_groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, emb: jax.Array) -> jax.Array:
        h = nn.silu(_group_norm(x.shape[-1], self.num_groups)(x))
        h = Conv(self.width, (3, 3))(h)
        h = h + nn.Dense(self.width)(nn.silu(emb))[:, None, None, :]
        h = nn.silu(_group_norm(self.width, self.num_groups)(h))
        h = Conv(self.width, (3, 3))(h)
        skip = x if x.shape[-1] == self.width else Conv(self.width, (1, 1))(x)
        return skip + h


class SelfAttention(nn.Module):
    """``[B, H, W, C] -> [B, H, W, C]``: x + Dense_0(softmax(q k^T / sqrt(C)) v), single head.

    q, k, v are Dense maps of GroupNorm(x) over the H * W positions; the output map starts at zero.
    """

    num_groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, c = x.shape
        tokens = _group_norm(c, self.num_groups)(x).reshape(b, h * w, c)
        q, k, v = jnp.split(nn.Dense(3 * c)(tokens), 3, axis=-1)
        weights = jax.nn.softmax(jnp.einsum("bic,bjc->bij", q, k) / math.sqrt(c), axis=-1)
        out = nn.Dense(c, kernel_init=nn.initializers.zeros)(jnp.einsum("bij,bjc->bic", weights, v))
        return x + out.reshape(b, h, w, c)


class UNet(nn.Module):
    """A small U-Net ``(x [B, H, W, C], c [B] or scalar, label [B] | None) -> [B, H, W, C_out]``.

    Attributes:
      out_channels: C_out (default: C).
      base_width: width of the first level.
      channel_mults: width multiplier per level; ``len - 1`` downsamplings (1 or 2 are typical).
      num_res_blocks: residual blocks per level on the way down (one more on the way up).
      attention: add self-attention at the lowest resolution.
      num_groups: GroupNorm groups (reduced to gcd(num_groups, width)).
      time_dim: width of the noise-level embedding (default ``4 * base_width``).
      embedding: ``"sinusoidal"`` or ``"fourier"`` (see ``time_embedding.py``).
      embedding_scale: the embedding's scale (default per kind).
      num_classes: K for a class-conditional network (labels ``[B]``; K or -1 is the null label).
      context_dim: E for a network conditioned on ``[B, E]`` context vectors instead.
    """

    out_channels: int | None = None
    base_width: int = 32
    channel_mults: Sequence[int] = (1, 2)
    num_res_blocks: int = 1
    attention: bool = False
    num_groups: int = 8
    time_dim: int | None = None
    embedding: str = "sinusoidal"
    embedding_scale: float | None = None
    num_classes: int | None = None
    context_dim: int | None = None

    @nn.compact
    def __call__(
        self, x: jax.Array, t_feature: jax.Array, label: jax.Array | None = None
    ) -> jax.Array:
        if x.ndim != 4:
            raise ShapeError(f"UNet expects images [B, H, W, C], got shape {tuple(x.shape)}")
        if not self.channel_mults or self.num_res_blocks < 1 or self.base_width < 1:
            raise ConfigError(
                "UNet needs a non-empty channel_mults, num_res_blocks >= 1 and base_width >= 1, "
                f"got {tuple(self.channel_mults)}, {self.num_res_blocks}, {self.base_width}"
            )
        emb = _embed(self, x.shape[0], t_feature, label, self.time_dim or 4 * self.base_width)
        block = lambda width: ResBlock(width, self.num_groups)  # noqa: E731

        h = Conv(self.base_width, (3, 3))(x)
        skips = [h]
        last = len(self.channel_mults) - 1
        for level, mult in enumerate(self.channel_mults):
            for _ in range(self.num_res_blocks):
                h = block(self.base_width * mult)(h, emb)
                skips.append(h)
            if level != last:
                h = Conv(h.shape[-1], (3, 3), strides=(2, 2))(h)
                skips.append(h)

        h = block(h.shape[-1])(h, emb)
        if self.attention:
            h = SelfAttention(self.num_groups)(h)
        h = block(h.shape[-1])(h, emb)

        for level in reversed(range(len(self.channel_mults))):
            for _ in range(self.num_res_blocks + 1):
                h = block(self.base_width * self.channel_mults[level])(
                    jnp.concatenate([h, skips.pop()], axis=-1), emb
                )
            if level != 0:
                size = skips[-1].shape[1:3]
                h = jax.image.resize(h, (h.shape[0], *size, h.shape[-1]), method="nearest")
                h = Conv(h.shape[-1], (3, 3))(h)

        h = nn.silu(_group_norm(h.shape[-1], self.num_groups)(h))
        out = self.out_channels or x.shape[-1]
        return Conv(out, (3, 3), kernel_init=nn.initializers.zeros)(h)


def _embed(module: nn.Module, batch: int, t_feature, label, dim: int) -> jax.Array:
    """TimeEmbedding(c) (+ the label / context embedding) as ``[B, dim]``, built in ``module``."""
    emb = TimeEmbedding(dim, module.embedding, module.embedding_scale)(_as_batch(t_feature, batch))
    cond = conditioning_embedding(module.num_classes, module.context_dim, batch, label, dim)
    return emb if cond is None else emb + cond
