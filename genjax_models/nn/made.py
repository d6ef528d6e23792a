"""MADE: the masked autoencoder for distribution estimation (Germain et al., 2015).

Every input variable ``x_i`` gets a degree ``m(i) in {1, ..., D}``, its position in the
autoregressive ordering. Hidden unit ``k`` of layer ``l`` gets a degree
``m_l(k) in {min m_{l-1}, ..., D - 1}``. The binary masks

    hidden:  M_l[j, k] = 1  iff  m_l(k) >= m_{l-1}(j)
    output:  M_out[k, i] = 1  iff  m(i) > m_L(k)

make output ``i`` a function of the inputs ``{x_j : m(j) < m(i)}`` only, i.e. of the
variables earlier than ``x_i`` in the ordering. Hidden degrees are spread evenly over
their range (each layer holds the smallest and the largest allowed degree), so every
hidden unit has at least one incoming and one outgoing connection: no unit is wasted.

The network maps ``x [B, D]`` (and an optional ``context [B, C]``, fed unmasked into every
hidden layer) to ``[B, D, num_params]``: ``out[:, i, :]`` depends only on the inputs earlier
than ``i`` in the ordering (and on the context). It is the conditioner of the masked
autoregressive flows in :mod:`genjax_models.flows.autoregressive`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ConfigError, ShapeError, unknown_name

ORDERINGS: tuple[str, ...] = ("natural", "reverse", "random")
Order = str | Sequence[int]


def made_input_degrees(input_size: int, order: Order = "natural", seed: int = 0) -> np.ndarray:
    """Return the degree ``m(i) in {1..D}`` of each input (its position in the ordering).

    Args:
      input_size: D.
      order: ``"natural"`` (x_0 first), ``"reverse"`` (x_{D-1} first), ``"random"`` (a
        permutation drawn with ``seed``), or an explicit permutation of ``range(D)`` listing
        the variables from first to last.
      seed: seed of the ``"random"`` ordering.

    Returns:
      ``[D]`` int array: ``degrees[order[k]] = k + 1``.
    """
    if input_size < 1:
        raise ConfigError(f"MADE needs at least one input, got input_size={input_size}")
    if isinstance(order, str):
        if order == "natural":
            perm = np.arange(input_size)
        elif order == "reverse":
            perm = np.arange(input_size)[::-1]
        elif order == "random":
            perm = np.random.default_rng(seed).permutation(input_size)
        else:
            raise unknown_name("MADE ordering", order, ORDERINGS)
    else:
        perm = np.asarray(order)
        if perm.shape != (input_size,) or sorted(perm.tolist()) != list(range(input_size)):
            raise ConfigError(
                f"an explicit MADE order must be a permutation of range({input_size}), "
                f"got {list(np.ravel(perm))}"
            )
    degrees = np.empty(input_size, dtype=np.int64)
    degrees[perm] = np.arange(1, input_size + 1)
    return degrees


def _hidden_degrees(width: int, low: int, high: int) -> np.ndarray:
    """Spread ``width`` degrees evenly over ``[low, high]`` (both ends included if width > 1)."""
    if width < 1:
        raise ConfigError(f"MADE hidden widths must be positive, got {width}")
    return np.rint(np.linspace(low, high, width)).astype(np.int64)


def made_degrees(
    input_size: int, hidden: Sequence[int], order: Order = "natural", seed: int = 0
) -> list[np.ndarray]:
    """Return the degrees of the input units and of every hidden layer.

    Args:
      input_size: D.
      hidden: widths of the hidden layers.
      order: see :func:`made_input_degrees`.
      seed: seed of the ``"random"`` ordering (it also shuffles the hidden degrees).

    Returns:
      ``[m_in [D], m_1 [H_1], ..., m_L [H_L]]``. Hidden degrees lie in
      ``[min m_{l-1}, D - 1]`` (all ``0`` when ``D == 1``: those units see only the context).
    """
    degrees = [made_input_degrees(input_size, order, seed)]
    rng = np.random.default_rng(seed + 1)
    for width in hidden:
        high = input_size - 1
        low = min(int(degrees[-1].min()), high)
        layer = _hidden_degrees(int(width), low, high)
        if isinstance(order, str) and order == "random":
            layer = rng.permutation(layer)
        degrees.append(layer)
    return degrees


def made_masks(
    input_size: int, hidden: Sequence[int], order: Order = "natural", seed: int = 0
) -> list[np.ndarray]:
    """Return the binary masks of every MADE layer, one output unit per variable.

    Args:
      input_size: D.
      hidden: widths of the hidden layers.
      order: see :func:`made_input_degrees`.
      seed: seed of the ``"random"`` ordering.

    Returns:
      ``[M_1 [D, H_1], ..., M_L [H_{L-1}, H_L], M_out [H_L, D]]`` as float32 arrays
      (``M_out [D, D]`` when ``hidden`` is empty). :class:`MADE` repeats ``M_out``'s columns
      ``num_params`` times.
    """
    degrees = made_degrees(input_size, hidden, order, seed)
    masks = [
        (d_out[None, :] >= d_in[:, None]).astype(np.float32)
        for d_in, d_out in zip(degrees[:-1], degrees[1:], strict=True)
    ]
    masks.append((degrees[0][None, :] > degrees[-1][:, None]).astype(np.float32))
    return masks


class MaskedDense(nn.Module):
    """A dense layer whose kernel is multiplied by a fixed binary mask: ``y = x (W * M) + b``.

    Maps ``[..., d_in] -> [..., features]``; ``mask`` has shape ``[d_in, features]``.

    Attributes:
      features: output width.
      mask: ``[d_in, features]`` array of 0/1 (a constant, not a parameter).
      use_bias: add a bias.
      zero_init: initialise the kernel and bias at zero.
    """

    features: int
    mask: np.ndarray
    use_bias: bool = True
    zero_init: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        mask = np.asarray(self.mask)
        if mask.shape != (x.shape[-1], self.features):
            raise ShapeError(
                f"MaskedDense mask has shape {mask.shape}, expected {(x.shape[-1], self.features)}"
            )
        init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        kernel = self.param("kernel", init, (x.shape[-1], self.features))
        y = x @ (kernel * jnp.asarray(mask, kernel.dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class MADE(nn.Module):
    """Map ``x [B, D]`` (+ optional ``context [B, C]``) to ``[B, D, num_params]`` autoregressively.

    ``out[:, i, :]`` depends only on ``{x_j : m(j) < m(i)}`` (the variables before ``x_i`` in
    the ordering) and on the context; see the module docstring for the masks. The context
    enters every hidden layer through an unmasked dense map added to the pre-activation
    (the output layer when ``hidden`` is empty). A context ``[C]`` or ``[1, C]`` is
    broadcast over the batch.

    Attributes:
      hidden: widths of the hidden layers (each should be >= D - 1 to reach every degree).
      num_params: parameters per variable (e.g. 2 for an affine flow, ``3K + 1`` for a spline).
      order: ``"natural" | "reverse" | "random"`` or an explicit permutation of ``range(D)``
        (tuple) listing the variables first to last.
      seed: seed of the ``"random"`` ordering.
      activation: hidden non-linearity.
      zero_init_output: start the output layer at zero, so a fresh flow is the identity.
    """

    hidden: Sequence[int]
    num_params: int
    order: Order = "natural"
    seed: int = 0
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    zero_init_output: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, context: jax.Array | None = None) -> jax.Array:
        if x.ndim != 2:
            raise ShapeError(f"MADE expects x of shape [B, D], got {x.shape}")
        if self.num_params < 1:
            raise ConfigError(f"MADE num_params must be positive, got {self.num_params}")
        batch, dim = x.shape
        ctx = _broadcast_context(context, batch)
        masks = made_masks(dim, tuple(self.hidden), self.order, self.seed)
        h = x
        for width, mask in zip(self.hidden, masks[:-1], strict=True):
            pre = MaskedDense(int(width), mask)(h)
            if ctx is not None:
                pre = pre + nn.Dense(int(width), use_bias=False)(ctx)
            h = self.activation(pre)
        out_mask = np.repeat(masks[-1], self.num_params, axis=1)  # unit i*P + p -> variable i
        out = MaskedDense(dim * self.num_params, out_mask, zero_init=self.zero_init_output)(h)
        if ctx is not None and not self.hidden:
            dense = nn.Dense(
                dim * self.num_params,
                use_bias=False,
                kernel_init=nn.initializers.zeros
                if self.zero_init_output
                else nn.initializers.lecun_normal(),
            )
            out = out + dense(ctx)
        return out.reshape(batch, dim, self.num_params)


def _broadcast_context(context: jax.Array | None, batch: int) -> jax.Array | None:
    """Broadcast a ``[C]``, ``[1, C]`` or ``[B, C]`` context to ``[B, C]``."""
    if context is None:
        return None
    context = jnp.asarray(context)
    if context.ndim == 1:
        context = context[None]
    if context.ndim != 2 or context.shape[0] not in (1, batch):
        raise ShapeError(f"context must have shape [{batch}, C] or [C], got {context.shape}")
    return jnp.broadcast_to(context, (batch, context.shape[1]))
