"""Shared Flax modules."""

from genjax_models.nn.conv import Conv, conv2d
from genjax_models.nn.mlp import MLP

__all__ = ["MLP", "Conv", "conv2d"]
