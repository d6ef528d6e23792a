"""The non-linearities a model's ``activation`` field may name (one table for every family)."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "elu": nn.elu,
    "gelu": nn.gelu,
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "silu": nn.silu,
    "softplus": nn.softplus,
    "tanh": nn.tanh,
}
