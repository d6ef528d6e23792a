"""Diffusion networks: :class:`ScoreMLP` for vectors, and a factory choosing it or the U-Net.

Both are Flax Linen modules called as ``net.apply(params, x, c, label=None)`` with
``x [B, *event]``, the noise feature ``c`` (``[B]`` or scalar: t, or EDM's c_noise; see
``parameterization.py``) and optional integer labels ``[B]`` (or ``[B, E]`` context vectors); the
output has the shape of x and is zero at initialisation (so a preconditioned denoiser starts at
c_skip x, an eps-predictor at 0). What the output means (eps, x0, v, score or EDM's F) is decided by
``parameterization.make_denoiser``, not here.

ScoreMLP, on the flattened event x in R^D, with e = TimeEmbedding(c) (+ the embedding of the
labels or context vectors, :mod:`genjax_models.nn.conditioning`):

    h_0 = Dense(x);  h_{l+1} = SiLU(Dense(h_l) + Dense(e))       (``combine="add"``)
                     h_{l+1} = SiLU(Dense([h_l, e]))              (``combine="concat"``)
    out = Dense_0(h_L)   reshaped to [B, *event]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError, unknown_name
from genjax_models.nn.conditioning import conditioning_embedding
from genjax_models.nn.time_embedding import TimeEmbedding, _as_batch
from genjax_models.nn.unet import UNet

NETWORKS: tuple[str, ...] = ("auto", "mlp", "unet")
COMBINE: tuple[str, ...] = ("add", "concat")


class ScoreMLP(nn.Module):
    """An MLP ``(x [B, *event], c [B] or scalar, label [B] | None) -> [B, *event]``.

    See the module docstring for the maths.

    Attributes:
      hidden: hidden widths (3-4 layers of 128-256 suit 2-D to 16-D data).
      time_dim: width of the noise-level embedding.
      embedding: ``"sinusoidal"`` or ``"fourier"``.
      embedding_scale: the embedding's scale (default per kind).
      combine: ``"add"`` (a Dense of the embedding added in every layer) or ``"concat"``.
      num_classes: K for a class-conditional network (K or -1 is the null label).
      context_dim: E for a network conditioned on ``[B, E]`` context vectors instead
        (:mod:`genjax_models.nn.conditioning`; the zero vector is the null context).
      zero_init_output: start the output layer at zero.
    """

    hidden: Sequence[int] = (256, 256, 256)
    time_dim: int = 64
    embedding: str = "fourier"
    embedding_scale: float | None = None
    combine: str = "add"
    num_classes: int | None = None
    context_dim: int | None = None
    zero_init_output: bool = True

    @nn.compact
    def __call__(
        self, x: jax.Array, t_feature: jax.Array, label: jax.Array | None = None
    ) -> jax.Array:
        if x.ndim < 2:
            raise ShapeError(f"ScoreMLP expects a batch [B, *event], got shape {tuple(x.shape)}")
        if self.combine not in COMBINE:
            raise unknown_name("combine mode", self.combine, COMBINE)
        if not self.hidden:
            raise ConfigError("ScoreMLP needs at least one hidden layer")
        batch = x.shape[0]
        emb = TimeEmbedding(self.time_dim, self.embedding, self.embedding_scale)(
            _as_batch(t_feature, batch)
        )
        cond = conditioning_embedding(self.num_classes, self.context_dim, batch, label,
                                      self.time_dim)
        if cond is not None:
            emb = emb + cond

        h = x.reshape(batch, -1)
        if self.combine == "add":
            h = nn.Dense(self.hidden[0])(h)
            for width in self.hidden:
                h = nn.silu(nn.Dense(width)(h) + nn.Dense(width, use_bias=False)(emb))
        else:
            for width in self.hidden:
                h = nn.silu(nn.Dense(width)(jnp.concatenate([h, emb], axis=-1)))
        init = nn.initializers.zeros if self.zero_init_output else nn.initializers.lecun_normal()
        out = nn.Dense(math.prod(x.shape[1:]), kernel_init=init)(h)
        return out.reshape(x.shape)


def make_network(event_shape: Sequence[int], kind: str = "auto", **sizes: Any) -> nn.Module:
    """Build the denoising network for data of shape ``event_shape``.

    Args:
      event_shape: one example's shape: ``(D,)`` for vectors, ``(H, W, C)`` for images.
      kind: ``"mlp"`` (:class:`ScoreMLP`), ``"unet"`` (:class:`~genjax_models.nn.unet.UNet`) or
        ``"auto"`` (the MLP for vectors, the U-Net for images).
      **sizes: attributes of the chosen module (e.g. ``hidden=(128, 128)`` or ``base_width=16,
        channel_mults=(1, 2, 2)``).

    Returns:
      An unbound Linen module called as ``apply(params, x, c, label=None)``.
    """
    shape = tuple(int(n) for n in event_shape)
    if kind not in NETWORKS:
        raise unknown_name("network", kind, NETWORKS)
    if kind == "auto":
        if len(shape) == 1:
            kind = "mlp"
        elif len(shape) == 3:
            kind = "unet"
        else:
            raise ConfigError(
                f"cannot choose a network for event shape {shape}: expected (D,) or (H, W, C); "
                "pass kind='mlp' to flatten it"
            )
    if kind == "unet" and len(shape) != 3:
        raise ConfigError(f"the U-Net needs image events (H, W, C), got {shape}")
    cls = ScoreMLP if kind == "mlp" else UNet
    valid = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    bad = sorted(set(sizes) - valid)
    if bad:
        raise ConfigError(
            f"{cls.__name__} has no setting(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}"
        )
    sizes = {k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()}
    return cls(**sizes)
