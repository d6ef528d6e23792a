"""Divergence of a batched vector field: exact (D forward-mode products) or Hutchinson's estimate.

For a field ``F: [B, *event] -> [B, *event]`` that acts on each example independently, the
divergence of example b is tr(dF_b/dx_b) = sum_i e_i^T J_b e_i. Because the batched Jacobian is
block diagonal, one Jacobian-vector product with the same basis vector e_i in every example gives
column i of every block at once:

- exact: D JVPs (vmapped), cost O(D) field evaluations; use for small D;
- Hutchinson (1989): tr(J) = E[v^T J v] for probes v with E[v v^T] = I; with Rademacher probes
  (entries +-1) each estimate costs one forward-mode JVP and is unbiased; its variance is
  2 sum_{i != j} J_ij^2 (Rademacher) per probe.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import unknown_name

Field = Callable[[jax.Array], jax.Array]


def exact_divergence(
    field: Field, x: Float[Array, " b *event"]
) -> tuple[Float[Array, " b *event"], Float[Array, " b"]]:
    """Return ``(field(x), div)`` with the exact divergence of each example.

    Args:
      field: ``[B, *event] -> [B, *event]``, acting on each example independently.
      x: ``[B, *event]``.

    Returns:
      ``(F(x) [B, *event], div [B])``.
    """
    batch, event = x.shape[0], x.shape[1:]
    dims = math.prod(event)
    basis = jnp.eye(dims, dtype=x.dtype).reshape(dims, 1, *event)

    def column(e):
        return jax.jvp(field, (x,), (jnp.broadcast_to(e, x.shape),))

    fx_all, jv = jax.vmap(column)(basis)  # [D, B, *event] each
    fx = fx_all[0]
    diag = jnp.einsum("dbi,di->b", jv.reshape(dims, batch, dims), basis.reshape(dims, dims))
    return fx, diag


def rademacher(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> Float[Array, " ..."]:
    """Draw i.i.d. Rademacher (+-1 with probability 1/2 each) entries of ``shape``."""
    return jax.random.rademacher(key, shape, dtype=dtype)


def hutchinson_divergence(
    field: Field, x: Float[Array, " b *event"], probes: Float[Array, "p b *event"]
) -> tuple[Float[Array, " b *event"], Float[Array, " b"]]:
    """Return ``(field(x), div_estimate)`` by Hutchinson's estimator with forward-mode JVPs.

    Args:
      field: ``[B, *event] -> [B, *event]``, acting on each example independently.
      x: ``[B, *event]``.
      probes: ``[P, B, *event]`` probe vectors with identity second moment (e.g. Rademacher);
        the estimate averages v^T J v over the P probes.

    Returns:
      ``(F(x) [B, *event], div_estimate [B])``; unbiased for the exact divergence.
    """
    fx_all, jv = jax.vmap(lambda v: jax.jvp(field, (x,), (v,)))(probes)
    batch = x.shape[0]
    est = jnp.sum((probes * jv).reshape(probes.shape[0], batch, -1), axis=-1)
    return fx_all[0], jnp.mean(est, axis=0)


TRACES: tuple[str, ...] = ("auto", "exact", "hutchinson")
# Largest D for which trace="auto" uses the exact divergence (D JVPs per field evaluation).
EXACT_TRACE_MAX_DIMS = 16


def resolve_trace(trace: str, num_dims: int) -> str:
    """Return the divergence a ``trace`` choice means for ``num_dims``-dimensional examples.

    Args:
      trace: one of :data:`TRACES`; ``"auto"`` is exact for D <= :data:`EXACT_TRACE_MAX_DIMS`
        (its cost, D Jacobian-vector products per evaluation, is then small) and Hutchinson's
        estimate above.
      num_dims: D, the dimensions per example.

    Returns:
      ``"exact"`` or ``"hutchinson"``; raises ``UnknownNameError`` listing :data:`TRACES`.
    """
    if trace not in TRACES:
        raise unknown_name("trace", trace, TRACES)
    if trace == "auto":
        return "exact" if int(num_dims) <= EXACT_TRACE_MAX_DIMS else "hutchinson"
    return trace
