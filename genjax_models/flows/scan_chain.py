"""A deep stack of identical bijector layers applied with ``lax.scan``.

``distrax.Chain`` is unrolled Python: compile time and program size grow with depth. When
the layers share one structure and differ only in parameters, stack the per-layer
parameters along a leading axis (``p[l]`` = layer ``l``) and scan over them:

    forward:  x -> f_{L-1}( ... f_1( f_0(x) ) ... ),     f_l = layer_fn(p[l])
    inverse:  y -> f_0^{-1}( ... f_{L-1}^{-1}(y) ... )    (a reverse scan)
    log|det J| = sum_l log|det J_{f_l}|

Layer 0 is applied first in the forward direction, so a ``ScanChain`` equals
``distrax.Chain([layer_fn(p[L-1]), ..., layer_fn(p[0])])`` (distrax applies the last
element of a Chain first). Each layer must keep the input's shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError

PyTree = Any


def stack_params(params: Sequence[PyTree]) -> PyTree:
    """Stack per-layer parameter pytrees along a new leading axis.

    Args:
      params: ``L >= 1`` pytrees of identical structure and leaf shapes.

    Returns:
      One pytree whose leaves have shape ``[L, *leaf_shape]``.
    """
    if len(params) == 0:
        raise ConfigError("stack_params needs at least one layer's parameters")
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *params)


def init_stacked(init_fn: Callable[[jax.Array], PyTree], key: jax.Array, num_layers: int) -> PyTree:
    """Initialise ``num_layers`` layers at once with ``vmap(init_fn)`` over split keys.

    Args:
      init_fn: ``key -> params`` of one layer (e.g. ``lambda k: module.init(k, x)``).
      key: a PRNG key; layer ``l`` uses ``jax.random.split(key, num_layers)[l]``.
      num_layers: L >= 1.

    Returns:
      A pytree whose leaves have shape ``[L, *leaf_shape]``.
    """
    if int(num_layers) < 1:
        raise ConfigError(f"num_layers must be >= 1, got {num_layers}")
    return jax.vmap(init_fn)(jax.random.split(key, int(num_layers)))


def num_stacked(stacked_params: PyTree) -> int:
    """Return the number of layers L (the common leading axis) of stacked parameters.

    Args:
      stacked_params: a pytree whose leaves all have the same leading size.

    Returns:
      L.
    """
    sizes = {
        jnp.shape(leaf)[0] if jnp.ndim(leaf) else None
        for leaf in jax.tree_util.tree_leaves(stacked_params)
    }
    if not sizes:
        raise ConfigError("stacked_params has no array leaves")
    if len(sizes) != 1 or None in sizes:
        raise ShapeError(
            f"every leaf of stacked_params needs the same leading (layer) axis; got sizes {sizes}"
        )
    return int(sizes.pop())


class ScanChain(distrax.Bijector):
    """Compose L structurally identical layers with ``lax.scan`` over stacked parameters.

    ``forward = f_{L-1} o ... o f_0`` with ``f_l = layer_fn(stacked_params[l])`` (layer 0
    first), ``inverse = f_0^{-1} o ... o f_{L-1}^{-1}``, ``log|det J| = sum_l log|det J_l|``.
    Equal to ``distrax.Chain([layer_fn(p[L-1]), ..., layer_fn(p[0])])``, but compiled once
    whatever L. Event shape: that of the layers (``event_ndims`` axes, shape preserved);
    log-dets have the batch shape.

    Args:
      layer_fn: ``layer_params -> distrax.Bijector`` building one layer (it may itself be a
        ``distrax.Chain``, e.g. a permutation then a coupling). Called inside the scan.
      stacked_params: pytree with a leading layer axis on every leaf (see
        :func:`stack_params`, :func:`init_stacked`).
      event_ndims: number of event axes of the layers.
    """

    def __init__(
        self,
        layer_fn: Callable[[PyTree], distrax.Bijector],
        stacked_params: PyTree,
        event_ndims: int,
    ) -> None:
        if not callable(layer_fn):
            raise ConfigError(f"layer_fn must be callable, got {type(layer_fn).__name__}")
        if int(event_ndims) < 0:
            raise ConfigError(f"event_ndims must be >= 0, got {event_ndims}")
        super().__init__(event_ndims_in=int(event_ndims))
        self.layer_fn = layer_fn
        self.stacked_params = stacked_params
        self.num_layers = num_stacked(stacked_params)

    def _run(self, x: jax.Array, inverse: bool) -> tuple[jax.Array, jax.Array]:
        nd = self.event_ndims_in
        if x.ndim < nd:
            raise ShapeError(f"{self.name} expects inputs with {nd} event axes, got {x.shape}")
        batch_shape = x.shape[: x.ndim - nd]

        def step(carry, layer_params):
            u, total = carry
            layer = self.layer_fn(layer_params)
            if inverse:
                v, ldj = layer.inverse_and_log_det(u)
            else:
                v, ldj = layer.forward_and_log_det(u)
            if v.shape != u.shape:
                raise ShapeError(
                    f"{self.name}: a layer changed the shape {u.shape} -> {v.shape}; "
                    "ScanChain layers must preserve shape"
                )
            ldj = jnp.broadcast_to(ldj, batch_shape)
            return (v.astype(u.dtype), total + ldj.astype(total.dtype)), None

        init = (x, jnp.zeros(batch_shape, x.dtype))
        (y, log_det), _ = jax.lax.scan(step, init, self.stacked_params, reverse=inverse)
        return y, log_det

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Apply layers 0, 1, ..., L-1; return the output and the summed log-det."""
        return self._run(x, inverse=False)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Undo layers L-1, ..., 0; return the input and the summed inverse log-det."""
        return self._run(y, inverse=True)
