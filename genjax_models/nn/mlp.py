"""A plain multi-layer perceptron, the workhorse of the low-dimensional models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
    """Map ``[..., d_in] -> [..., out_dim]`` through ``len(hidden)`` hidden layers.

    x -> act(W_1 x + b_1) -> ... -> act(W_L h + b_L) -> W_out h + b_out. The output layer is
    linear; ``zero_init_output`` starts it at zero (useful for residual / flow conditioners).

    Attributes:
      hidden: widths of the hidden layers.
      out_dim: width of the output.
      activation: elementwise non-linearity between layers.
      zero_init_output: initialise the output layer's weights and bias to zero.
    """

    hidden: Sequence[int]
    out_dim: int
    activation: Callable[[jax.Array], jax.Array] = nn.gelu
    zero_init_output: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        if self.zero_init_output:
            return nn.Dense(self.out_dim, kernel_init=nn.initializers.zeros)(x)
        return nn.Dense(self.out_dim)(x)
