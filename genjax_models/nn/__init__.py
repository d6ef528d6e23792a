"""Shared Flax modules."""

from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.nn.conv import Conv, conv2d
from genjax_models.nn.mlp import MLP

__all__ = ["ACTIVATIONS", "MLP", "Conv", "conv2d"]
