"""2-D convolution whose derivatives stay fast inside ``lax.scan`` / ``while`` loops on CPU.

Why: on XLA:CPU a convolution's *derivative* convolutions (the input and kernel gradients) run
10-60x slower inside a loop body than at the top level of a program (jax-ml/jax#12868; measured
here with jax 0.10.2: the kernel gradient of a 3x3, 32 -> 32 conv on [64, 8, 8, 32] took
2.4 ms alone and 144 ms per iteration inside ``lax.scan``; the forward conv is unaffected).
Our training steps run in a ``lax.scan`` (``TrainConfig.steps_per_call``) and flows apply their
layers with ``ScanChain``, so every conv model trained 10-30x slower than it should on CPU.

What: :func:`conv2d` computes ``y = conv(x, k)`` with ``lax.conv_general_dilated`` (NHWC, HWIO,
SAME padding) and, in ``"patches"`` mode, defines its derivative through the patch matrix
(im2col) instead of XLA's derivative convolutions:

    y[b, p, o] = sum_q P(x)[b, p, q] K[q, o],   P(x) = the kh*kw shifted (strided) slices of
                                                  the padded x, concatenated on channels
                                                  [B, Ho, Wo, kh kw C]
    dy = P(dx) K + P(x) dK                       (custom JVP, linear in (dx, dK))

``P`` is a pad and slices, so the transposes JAX derives for reverse mode are matmuls
(``P(x)^T g`` for the kernel, ``P^T(g K^T)`` for the input: a pad-and-add of slices), all of
which stay fast in loops. Values are XLA's convolution; derivatives equal XLA's up to
float rounding (tested against ``flax.linen.Conv``). 1x1 stride-1 convolutions are a plain
matmul in every mode.

``impl="auto"`` (the default) picks ``"patches"`` when JAX's default backend is the CPU and
``"xla"`` (XLA's own derivative convolutions, fastest on GPU/TPU) otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ShapeError, unknown_name

CONV_IMPLS = ("auto", "xla", "patches")
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """XLA's SAME padding along one axis: output ceil(size / stride), extra pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def extract_patches(
    x: jax.Array, kernel_hw: tuple[int, int], strides: tuple[int, int]
) -> jax.Array:
    """``[B, H, W, C] -> [B, Ho, Wo, kh * kw * C]``: the SAME-padded input window of every output
    pixel, ordered (row offset, column offset, channel) to match ``kernel.reshape(-1, O)``."""
    (kh, kw), (sh, sw) = kernel_hw, strides
    _, height, width, _ = x.shape
    pad_h, pad_w = _same_padding(height, kh, sh), _same_padding(width, kw, sw)
    padded = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    out_h, out_w = -(-height // sh), -(-width // sw)
    slices = [
        padded[:, i : i + (out_h - 1) * sh + 1 : sh, j : j + (out_w - 1) * sw + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(slices, axis=-1)


def _xla_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, strides, "SAME", dimension_numbers=_DIMENSIONS)


def _patch_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    patches = extract_patches(x, kernel.shape[:2], strides)
    return patches @ kernel.reshape(-1, kernel.shape[-1])


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _conv_patch_derivatives(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    return _xla_conv(x, kernel, strides)


@_conv_patch_derivatives.defjvp
def _conv_patch_derivatives_jvp(strides, primals, tangents):
    x, kernel = primals
    dx, dkernel = tangents
    # Linear in (dx, dkernel): its transpose (reverse mode) is made of matmuls, pads and slices.
    tangent = _patch_conv(dx, kernel, strides) + _patch_conv(x, dkernel, strides)
    return _xla_conv(x, kernel, strides), tangent


def resolve_impl(impl: str) -> str:
    """``"auto"`` -> ``"patches"`` on the CPU backend, ``"xla"`` elsewhere; checks the name."""
    if impl not in CONV_IMPLS:
        raise unknown_name("conv impl", impl, CONV_IMPLS)
    if impl == "auto":
        return "patches" if jax.default_backend() == "cpu" else "xla"
    return impl


def conv2d(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1), impl: str = "auto"
) -> jax.Array:
    """SAME-padded 2-D convolution (cross-correlation, as ``flax.linen.Conv``).

    Args:
      x: ``[B, H, W, C]``.
      kernel: ``[kh, kw, C, O]``.
      strides: ``(sh, sw)``; the output is ``[B, ceil(H / sh), ceil(W / sw), O]``.
      impl: ``"auto"``, ``"xla"`` or ``"patches"`` (module docstring).
    """
    if x.ndim != 4 or kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
        raise ShapeError(
            f"conv2d expects x [B, H, W, C] and kernel [kh, kw, C, O] with matching C, got "
            f"{x.shape} and {kernel.shape}"
        )
    strides = tuple(int(s) for s in strides)
    if kernel.shape[:2] == (1, 1) and strides == (1, 1):
        return x @ kernel[0, 0]
    if resolve_impl(impl) == "xla":
        return _xla_conv(x, kernel, strides)
    return _conv_patch_derivatives(x, kernel, strides)


class Conv(nn.Module):
    """``[B, H, W, C] -> [B, H', W', features]``: a drop-in for ``flax.linen.Conv`` with SAME
    padding (same parameter names ``kernel`` [kh, kw, C, features] and ``bias`` [features], same
    default initialisers), computed by :func:`conv2d` so that gradients stay fast in loops on CPU.

    Attributes:
      features: output channels.
      kernel_size: ``(kh, kw)``.
      strides: ``(sh, sw)``.
      use_bias: add a bias.
      kernel_init, bias_init: initialisers (``flax.linen.Conv``'s defaults).
      impl: ``"auto"``, ``"xla"`` or ``"patches"`` (module docstring).
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ShapeError(f"Conv expects x of shape [B, H, W, C], got {x.shape}")
        kh, kw = (int(k) for k in self.kernel_size)
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        dtype = jnp.result_type(x, kernel)  # flax's promotion: float64 in or params -> float64
        y = conv2d(x.astype(dtype), kernel.astype(dtype), self.strides, self.impl)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(dtype)
        return y
