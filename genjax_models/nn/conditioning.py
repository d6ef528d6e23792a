"""The conditioning input of a diffusion network: class labels or context vectors, with a null.

A network conditions on one of

- **class labels** ``[B]`` ints (``num_classes`` = K): a learned table of K vectors plus a null
  vector (index K, or any label outside 0..K-1), :class:`~.time_embedding.LabelEmbedding`;
- **context vectors** ``[B, E]`` floats (``context_dim`` = E), the way latent-diffusion systems
  feed a frozen encoder's output (a text encoder's, say): a learned linear map
  ``ContextEmbedding(c) = W c + b``; the null context is the zero vector, so the
  unconditional input is the learned ``b``. ``drop_context`` zeroes vectors at random in training.

Either gives ``[B, dim]``, added to the noise-level embedding. With one-hot context vectors the
two agree exactly when W's rows are the label table minus its null row and b is the null row (a
test). ``cond=None`` means the null input.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.nn.time_embedding import LabelEmbedding


def conditioning_embedding(
    num_classes: int | None, context_dim: int | None, batch: int, cond, dim: int
) -> jax.Array | None:
    """Return the ``[B, dim]`` embedding of ``cond`` (None for an unconditional network).

    Call inside a Flax ``nn.compact`` method: it creates the embedding submodule there.

    Args:
      num_classes: K for label conditioning, or None.
      context_dim: E for context vectors, or None (at most one of the two is set).
      batch: B.
      cond: ``[B]`` int labels, ``[B, E]`` float vectors, or None (the null input).
      dim: the embedding width.

    Raises:
      ConfigError: conditioning given to an unconditional network, or both kinds configured.
      ShapeError: a context of the wrong shape or dtype.
    """
    if num_classes is not None and context_dim is not None:
        raise ConfigError("set num_classes (labels) or context_dim (vectors), not both")
    if num_classes is not None:
        if cond is None:
            cond = jnp.full((batch,), num_classes, jnp.int32)  # the null label
        return LabelEmbedding(num_classes, dim)(cond)
    if context_dim is not None:
        if cond is None:
            cond = jnp.zeros((batch, context_dim))
        cond = jnp.asarray(cond)
        if cond.shape != (batch, context_dim) or not jnp.issubdtype(cond.dtype, jnp.floating):
            raise ShapeError(
                f"context vectors must be floats of shape [{batch}, {context_dim}], got "
                f"{cond.dtype}{tuple(cond.shape)}"
            )
        return nn.Dense(dim, name="ContextEmbedding")(cond)
    if cond is not None:
        raise ConfigError(
            "got conditioning but the network is unconditional; set num_classes or context_dim"
        )
    return None


def drop_context(key: jax.Array, context: jax.Array, p: float) -> jax.Array:
    """Replace each ``[B, E]`` context vector by the null (zero) vector with probability ``p``."""
    keep = ~jax.random.bernoulli(key, p, context.shape[:1])
    return context * keep[:, None].astype(context.dtype)
