"""Autoregressive models: the fully visible sigmoid belief network (FVSBN)."""

from genjax_models.autoregressive.fvsbn import FVSBN, LIKELIHOODS, strictly_lower_mask

__all__ = ["FVSBN", "LIKELIHOODS", "strictly_lower_mask"]
