"""Masked and gated convolutions for PixelCNN (van den Oord et al., 2016).

Pixels of an ``[B, H, W, C]`` image are generated in raster order, so the output at (i, j)
may only see pixels (i', j') with i' < i, or i' = i and j' < j. A k x k kernel (k odd,
centre c = k // 2, SAME padding) is multiplied by a fixed 0/1 mask:

- :func:`vertical_mask` ``[k, k]``: rows ``<= c`` (every column). The *vertical stack* at
  (i, j) then sees rows ``<= i`` only (including the current row, so it must be shifted
  down by one row, :func:`shift_down`, before it reaches anything that is output);
- :func:`horizontal_mask` ``[1, k]``: columns ``< c`` (type A, excludes the current pixel:
  the first layer) or ``<= c`` (type B, later layers). The *horizontal stack* at (i, j)
  sees row i, columns ``< j`` of the image.

Stacking the two removes the blind spot of the original single masked stack: after L layers
(first kernel k1, later k; R = k1 // 2 + (L - 1) (k // 2)) the output at (i, j) sees at least
every pixel of rows ``i - 1 - R .. i - 1`` within R columns of j, and the R pixels to its
left in row i.

:class:`GatedLayer` is one layer of the gated PixelCNN:

    v_pre = V_conv(v) + e_v(y)                     [B, H, W, 2F]  (vertical mask)
    h_pre = H_conv(h) + W_vh shift_down(v_pre) + e_h(y)           (horizontal mask)
    v'    = tanh(v_pre[..., :F]) * sigmoid(v_pre[..., F:])
    h'    = h + W_hh (tanh(h_pre[..., :F]) * sigmoid(h_pre[..., F:]))   (residual; the
                                                   first layer has no residual term)

with ``e_v, e_h`` learned per-class embeddings (class conditioning; omitted when y is None).
The masked kernels go through :func:`genjax_models.nn.conv.conv2d`, so they stay jit-friendly
and their gradients fast inside ``lax.scan`` on CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.nn.conv import Conv, conv2d


def _check_kernel(k: int) -> None:
    if k < 3 or k % 2 == 0:
        raise ConfigError(f"masked conv kernel sizes must be odd and >= 3, got {k}")


def vertical_mask(k: int) -> np.ndarray:
    """Return the ``[k, k]`` vertical-stack mask: ones on rows ``<= k // 2``."""
    _check_kernel(k)
    mask = np.zeros((k, k), np.float32)
    mask[: k // 2 + 1] = 1.0
    return mask


def horizontal_mask(k: int, include_centre: bool) -> np.ndarray:
    """Return the ``[1, k]`` horizontal mask: columns ``< k // 2`` (type A) or ``<= k // 2`` (B)."""
    _check_kernel(k)
    mask = np.zeros((1, k), np.float32)
    mask[0, : k // 2 + int(include_centre)] = 1.0
    return mask


def shift_down(z: jax.Array) -> jax.Array:
    """Shift ``[B, H, W, C]`` down by one row (row 0 becomes zeros): out[i] = z[i - 1]."""
    return jnp.pad(z, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def gate(z: jax.Array) -> jax.Array:
    """Gated activation ``tanh(a) * sigmoid(b)`` of ``z = [a, b]`` split on the last axis."""
    a, b = jnp.split(z, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)


class MaskedConv(nn.Module):
    """``[B, H, W, C] -> [B, H, W, features]``: SAME conv with the kernel times a fixed mask.

    Attributes:
      features: output channels.
      mask: ``[kh, kw]`` 0/1 numpy mask (kh, kw odd), broadcast over channels.
      kernel_init: initialiser of the full (unmasked) kernel ``[kh, kw, C, features]``.
    """

    features: int
    mask: np.ndarray
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ShapeError(f"MaskedConv expects x of shape [B, H, W, C], got {x.shape}")
        kh, kw = self.mask.shape
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        dtype = jnp.result_type(x, kernel)
        mask = jnp.asarray(self.mask, dtype)[:, :, None, None]
        return conv2d(x.astype(dtype), kernel.astype(dtype) * mask) + bias.astype(dtype)


class GatedLayer(nn.Module):
    """One gated PixelCNN layer on the (vertical, horizontal) stacks (module docstring).

    Attributes:
      features: F, the channels of each stack.
      kernel_size: k (odd, >= 3).
      first: the first layer: type-A horizontal mask and no residual connection.
      num_classes: K for class conditioning (``None``: never conditioned).
    """

    features: int
    kernel_size: int = 3
    first: bool = False
    num_classes: int | None = None

    @nn.compact
    def __call__(
        self, v: jax.Array, h: jax.Array, y: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        f, k = self.features, self.kernel_size
        v_pre = MaskedConv(2 * f, vertical_mask(k), name="v_conv")(v)
        h_pre = MaskedConv(2 * f, horizontal_mask(k, not self.first), name="h_conv")(h)
        h_pre = h_pre + Conv(2 * f, (1, 1), use_bias=False, name="v_to_h")(shift_down(v_pre))
        if self.num_classes is not None and y is not None:
            embed = nn.Embed(self.num_classes, 4 * f, param_dtype=v_pre.dtype, name="label")
            e_v, e_h = jnp.split(embed(y)[:, None, None, :], 2, axis=-1)
            v_pre, h_pre = v_pre + e_v, h_pre + e_h
        h_out = Conv(f, (1, 1), name="h_out")(gate(h_pre))
        return gate(v_pre), (h_out if self.first else h + h_out)


class GatedPixelCNNNet(nn.Module):
    """``x [B, H, W, 1] (values in [0, 1]), y [B] | None -> [B, H, W, P]``, raster-causal.

    Output (i, j) depends only on pixels before (i, j) in raster order (and on y).

    Attributes:
      features: F, channels of each stack.
      num_layers: L gated layers (>= 1).
      kernel_size: k of layers 2..L.
      first_kernel_size: k of the first (type-A) layer.
      num_outputs: P outputs per pixel.
      num_classes: K for class conditioning, or ``None``.
    """

    features: int
    num_layers: int
    kernel_size: int
    first_kernel_size: int
    num_outputs: int
    num_classes: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        v = h = 2.0 * x - 1.0
        for layer in range(self.num_layers):
            k = self.first_kernel_size if layer == 0 else self.kernel_size
            v, h = GatedLayer(self.features, k, layer == 0, self.num_classes)(v, h, y)
        out = Conv(self.features, (1, 1), name="head_hidden")(jax.nn.relu(h))
        return Conv(self.num_outputs, (1, 1), name="head_out")(jax.nn.relu(out))
