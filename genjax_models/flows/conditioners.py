"""Flax conditioners for coupling layers: the networks that output a coupling's parameters.

A coupling layer splits its input into ``(x_cond, x_trans)`` and transforms ``x_trans`` with
parameters ``theta = conditioner(x_cond)``. Any callable works as a conditioner; the two
modules here are the usual ones:

- :class:`MLPConditioner` for vectors: ``[B, d] -> [B, out_features]``;
- :class:`ConvConditioner` for images: ``[B, H, W, C] -> [B, H, W, out_channels]``
  (3x3 conv -> 1x1 conv -> 3x3 conv, as in RealNVP / Glow).

Both take an optional context (``[B, C_ctx]``; ``[C_ctx]`` or ``[1, C_ctx]`` is broadcast over
the batch) that is concatenated to the input features (to every pixel for images), so a
conditional flow is a coupling whose conditioner has the context bound::

    conditioner = functools.partial(module.apply, variables, context=c)

With ``zero_init=True`` (the default) the last layer starts at zero, so the coupling starts
as the identity map. For a coupling transforming ``d_trans`` features (channels) with ``P``
parameters each, use ``out_features = d_trans * P`` (``out_channels`` likewise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ShapeError
from genjax_models.nn.conv import Conv


def _context_to_batch(context: jax.Array, batch_shape: tuple[int, ...]) -> jax.Array:
    """Broadcast a ``[C]``, ``[1, C]`` or ``[B, C]`` context to ``[*batch_shape, C]``."""
    context = jnp.asarray(context)
    if context.ndim == 1:
        context = context[None]
    if context.ndim != 2 or context.shape[0] not in (1, batch_shape[0]):
        raise ShapeError(
            f"context must have shape [{batch_shape[0]}, C] or [C], got {context.shape}"
        )
    spatial = (1,) * (len(batch_shape) - 1)
    context = context.reshape(context.shape[0], *spatial, context.shape[1])
    return jnp.broadcast_to(context, (*batch_shape, context.shape[-1]))


class MLPConditioner(nn.Module):
    """Map ``x [B, d]`` (+ optional ``context [B, C]``) to coupling parameters ``[B, out]``.

    ``h_0 = concat(x, context)``, ``h_l = act(W_l h_{l-1} + b_l)``, output ``W h_L + b`` (zero at
    initialisation when ``zero_init``).

    Attributes:
      hidden: widths of the hidden layers.
      out_features: output width (``d_trans * params_per_dim`` for a coupling).
      activation: hidden non-linearity.
      zero_init: initialise the output layer at zero (the coupling starts as the identity).
    """

    hidden: Sequence[int]
    out_features: int
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    zero_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, context: jax.Array | None = None) -> jax.Array:
        if x.ndim != 2:
            raise ShapeError(f"MLPConditioner expects x of shape [B, d], got {x.shape}")
        h = x
        if context is not None:
            h = jnp.concatenate([h, _context_to_batch(context, x.shape[:1]).astype(h.dtype)], -1)
        for width in self.hidden:
            h = self.activation(nn.Dense(int(width))(h))
        init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        return nn.Dense(self.out_features, kernel_init=init)(h)


class ConvConditioner(nn.Module):
    """Map an image ``x [B, H, W, C]`` (+ optional ``context [B, C_ctx]``) to ``[B, H, W, out]``.

    ``h = act(conv3x3(concat(x, context)))``, ``h = act(conv1x1(h))``, output ``conv3x3(h)``
    (zero-initialised when ``zero_init``). The context is broadcast over pixels as extra
    input channels. Convolutions use ``SAME`` padding, so the spatial shape is preserved.

    Attributes:
      features: channels of the two hidden convolutions.
      out_channels: output channels (``C_trans * params_per_dim`` for a coupling).
      activation: hidden non-linearity (third, as in :class:`MLPConditioner`).
      zero_init: initialise the last convolution at zero (the coupling starts as the identity).
    """

    features: int
    out_channels: int
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    zero_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, context: jax.Array | None = None) -> jax.Array:
        if x.ndim != 4:
            raise ShapeError(f"ConvConditioner expects x of shape [B, H, W, C], got {x.shape}")
        h = x
        if context is not None:
            h = jnp.concatenate([h, _context_to_batch(context, x.shape[:3]).astype(h.dtype)], -1)
        h = self.activation(Conv(self.features, (3, 3))(h))
        h = self.activation(Conv(self.features, (1, 1))(h))
        init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        return Conv(self.out_channels, (3, 3), kernel_init=init)(h)
