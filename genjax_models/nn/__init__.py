"""Shared Flax modules."""

from genjax_models.nn.mlp import MLP

__all__ = ["MLP"]
