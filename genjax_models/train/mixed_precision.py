"""Mixed precision: run a function's matmuls and convolutions in bfloat16, everything else as is.

``with_compute_dtype(fn, jnp.bfloat16)`` returns a function with the same signature and output
types as ``fn`` whose every ``dot_general`` and ``conv_general_dilated`` on float32 operands is
computed as

    y = float32(dot(bf16(a), bf16(b)))   (the product in bf16, as ``flax.linen.Dense(dtype=
        jnp.bfloat16)`` computes it; GPUs and TPUs accumulate it in float32 internally),

including those inside ``lax.scan`` / ``while_loop`` / ``cond`` bodies, nested ``jit`` calls and
``jax.checkpoint`` blocks. Every other operation (activations, normalisation, log-densities,
log-determinants, reductions, the loss itself) keeps its float32 inputs, so a model written for
float32 needs no change: the parameters, gradients and optimiser state stay float32 (the cast's
transpose casts the cotangents back), and only the inner products lose precision — the
standard bf16 recipe for GPUs and TPUs, where bf16 matmuls run at 2-16x the float32 rate.
Reverse mode differentiates the rewritten function: the cotangent of each product is cast to
bf16 (the transpose of the cast), so the gradient's matmuls are bf16 x bf16 too.

How: ``fn`` is traced to a jaxpr and evaluated equation by equation; the two contracting
primitives are re-bound on bf16 operands, and every primitive that carries sub-jaxprs is
re-bound with rewritten sub-jaxprs (their signatures are unchanged because each rewritten
product is cast back to float32). ``custom_jvp`` / ``custom_vjp`` functions are kept as they
are (their derivative rules refer to the original function): the CPU ``"patches"`` convolution of
:mod:`genjax_models.nn.conv` is one, so on CPU convolutions stay float32 while on GPU/TPU
(``"xla"`` convolutions) they run in bf16. float16 is not offered: without loss scaling its
gradients underflow.

Operands that are not float32 (float64 in the oracle tests, integers) are left alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core

from genjax_models.errors import ConfigError, unknown_name

COMPUTE_DTYPES = ("float32", "bfloat16")
CONTRACTING_PRIMITIVES = ("dot_general", "conv_general_dilated")
# Their rules refer to the original function: rebinding them with a rewritten body would
# make the primal and its derivative disagree, so they run as written.
OPAQUE_PRIMITIVES = ("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "custom_lin")


def compute_dtype(name: str) -> Any:
    """The jnp dtype for a ``train.compute_dtype`` name (``float32`` or ``bfloat16``)."""
    if name == "float16":
        raise ConfigError(
            "train.compute_dtype=float16 is not supported: without loss scaling float16 "
            "gradients underflow; use bfloat16 (same exponent range as float32)"
        )
    if name not in COMPUTE_DTYPES:
        raise unknown_name("compute dtype", name, COMPUTE_DTYPES)
    return jnp.dtype(name)


def with_compute_dtype(fn: Callable[..., Any], dtype: Any) -> Callable[..., Any]:
    """Return ``fn`` with its float32 matmuls and convolutions computed in ``dtype``.

    Args:
      fn: any jax-traceable function of pytrees (positional and keyword arguments).
      dtype: the compute dtype, e.g. ``jnp.bfloat16``; ``float32`` returns ``fn`` itself.

    Returns:
      A function with ``fn``'s signature, output structure and output dtypes (module
      docstring); jit-, grad- and vmap-compatible.
    """
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float32:
        return fn

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(lambda a, k: fn(*a, **k), return_shape=True)(
            args, kwargs
        )
        flat_out = _eval(closed.jaxpr, closed.consts, jax.tree.leaves((args, kwargs)), dtype)
        return jax.tree.unflatten(jax.tree.structure(out_shape), flat_out)

    return wrapped


def _eval(jaxpr: core.Jaxpr, consts: list[Any], args: list[Any], dtype: Any) -> list[Any]:
    """Evaluate ``jaxpr`` with the contracting primitives in ``dtype`` (module docstring)."""
    env: dict[Any, Any] = {}

    def read(var: Any) -> Any:
        return var.val if isinstance(var, core.Literal) else env[var]

    for var, value in zip(jaxpr.constvars, consts, strict=True):
        env[var] = value
    for var, value in zip(jaxpr.invars, args, strict=True):
        env[var] = value
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in CONTRACTING_PRIMITIVES and _all_float32(invals):
            params = {**eqn.params, "preferred_element_type": dtype}
            low = eqn.primitive.bind(*(v.astype(dtype) for v in invals), **params)
            outvals = low.astype(jnp.float32)
        else:
            params = eqn.params
            if name not in OPAQUE_PRIMITIVES:
                params = {k: _rewrite_param(v, dtype) for k, v in params.items()}
            subfuns, bind_params = _bind_params(eqn.primitive, params)
            with eqn.ctx.manager:
                outvals = eqn.primitive.bind(*subfuns, *invals, **bind_params)
        if not eqn.primitive.multiple_results:
            outvals = [outvals]
        for var, value in zip(eqn.outvars, outvals, strict=True):
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


def _bind_params(primitive: core.Primitive, params: dict) -> tuple[list[Any], dict]:
    """``(subfuns, params)`` to bind with: jax <= 0.7 returns both, newer jax the params only."""
    result = primitive.get_bind_params(params)
    if isinstance(result, tuple):
        subfuns, bind_params = result
        return list(subfuns), bind_params
    return [], result


def _all_float32(values: list[Any]) -> bool:
    return all(jnp.result_type(v) == jnp.float32 for v in values)


def _rewrite_param(value: Any, dtype: Any) -> Any:
    """A primitive's parameter with every sub-jaxpr rewritten (other values unchanged)."""
    if isinstance(value, core.ClosedJaxpr):
        return _rewrite_closed(value, dtype)
    if isinstance(value, core.Jaxpr):
        if value.constvars:
            return value
        rewritten = _rewrite_closed(core.ClosedJaxpr(value, []), dtype)
        # an open jaxpr (e.g. jax.checkpoint's) cannot take new constants; keep it if any arose
        return rewritten.jaxpr if not rewritten.consts else value
    if isinstance(value, tuple) and value and all(isinstance(v, core.ClosedJaxpr) for v in value):
        return tuple(_rewrite_closed(v, dtype) for v in value)  # cond's branches
    return value


def _rewrite_closed(closed: core.ClosedJaxpr, dtype: Any) -> core.ClosedJaxpr:
    """Re-trace ``closed`` through :func:`_eval`: same input and output types."""
    avals = [
        jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype, weak_type=v.aval.weak_type)
        for v in closed.jaxpr.invars
    ]
    return jax.make_jaxpr(lambda *a: _eval(closed.jaxpr, closed.consts, list(a), dtype))(*avals)
