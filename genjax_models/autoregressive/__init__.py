"""Autoregressive models: exact likelihoods by the chain rule in a chosen ordering."""

from genjax_models.autoregressive.base import AutoregressiveModel
from genjax_models.autoregressive.conditionals import CONDITIONALS, Conditional
from genjax_models.autoregressive.fvsbn import FVSBN, LIKELIHOODS, strictly_lower_mask
from genjax_models.autoregressive.made import MADEModel
from genjax_models.autoregressive.nade import NADE
from genjax_models.autoregressive.pixelcnn import PixelCNN
from genjax_models.autoregressive.rnn import AutoregressiveRNN
from genjax_models.autoregressive.transformer import ARTransformer

__all__ = [
    "CONDITIONALS",
    "FVSBN",
    "LIKELIHOODS",
    "NADE",
    "ARTransformer",
    "AutoregressiveModel",
    "AutoregressiveRNN",
    "Conditional",
    "MADEModel",
    "PixelCNN",
    "strictly_lower_mask",
]
