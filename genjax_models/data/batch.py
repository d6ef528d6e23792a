"""The batch every model's ``init`` / ``loss`` / ``log_prob`` takes: examples and, maybe, labels.

``Batch(x, y)`` is a NamedTuple, hence a JAX pytree: it passes through ``jit``, ``vmap`` and
sharding constraints as it is (``y=None`` is an empty subtree). A plain array is accepted
everywhere a batch is and means ``Batch(x=array)``, so unconditional code stays unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from genjax_models.errors import ShapeError


class Batch(NamedTuple):
    """Examples ``x [B, *event_shape]`` and optional integer class labels ``y [B]``."""

    x: Float[Array, "b ..."]
    y: Int[Array, " b"] | None = None


def as_batch(batch: Batch | Any) -> Batch:
    """Return ``batch`` as a :class:`Batch` (an array ``x`` becomes ``Batch(x)``)."""
    if isinstance(batch, Batch):
        return batch
    if isinstance(batch, tuple) and len(batch) == 2 and not hasattr(batch, "shape"):
        return Batch(*batch)
    return Batch(batch)


def check_labels(y: Any, num: int, num_classes: int | None = None) -> jax.Array:
    """Check that labels are ``[num]`` integers (within ``num_classes`` when known, eagerly).

    Returns:
      The labels as an int32 array.
    """
    y = jnp.asarray(y)
    if y.shape != (num,):
        raise ShapeError(f"labels must have shape [{num}] (one per example), got {tuple(y.shape)}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ShapeError(f"labels must be integers, got dtype {y.dtype}")
    if num_classes is not None and not isinstance(y, jax.core.Tracer) and num > 0:
        concrete = np.asarray(y)  # host-side: jnp reductions would be staged inside a jit
        lo, hi = int(concrete.min()), int(concrete.max())
        if lo < 0 or hi >= num_classes:
            raise ShapeError(f"labels must lie in 0..{num_classes - 1}, got values in {lo}..{hi}")
    return y.astype(jnp.int32)
