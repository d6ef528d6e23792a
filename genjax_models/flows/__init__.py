"""Normalizing flows: Distrax bijectors researchers compose in their own code, and flow models.

Change of variables: for an invertible x = f(z) with z ~ p_Z,

    log p(x) = log p_Z(f^{-1}(x)) + log|det J_{f^{-1}}(x)|.

Every bijector here subclasses ``distrax.Bijector`` (so it works inside ``distrax.Chain``,
``distrax.Inverse`` and ``distrax.Transformed``), maps base -> data in ``forward``, acts on batches
``[B, *event]`` and returns log-dets ``[B]``. Parameters are plain pytrees built by the ``*_init``
functions or by Flax conditioners, so any optax loop can train them. The models (``realnvp``,
``maf``, ``nsf``, ``planar``, ``glow``, ``ffjord``) live in :mod:`genjax_models.flows.models`.
"""

from genjax_models.flows.actnorm import ActNorm, actnorm_identity, actnorm_init
from genjax_models.flows.autoregressive import InverseAutoregressive, MaskedAutoregressive
from genjax_models.flows.conditioners import ConvConditioner, MLPConditioner
from genjax_models.flows.coupling import AdditiveCoupling, AffineCoupling, SplitCoupling
from genjax_models.flows.dequantization import VariationalDequantizer, uniform_dequantize
from genjax_models.flows.linear import Conv1x1, LULinear, lu_linear_from_matrix, lu_linear_init
from genjax_models.flows.logit import Logit
from genjax_models.flows.multiscale import MultiScale, multiscale_level_shapes
from genjax_models.flows.permutation import Permute, random_permutation, reverse_permutation
from genjax_models.flows.planar import Planar, Radial, planar_init, radial_init
from genjax_models.flows.scan_chain import ScanChain, init_stacked, num_stacked, stack_params
from genjax_models.flows.spline import SplineCoupling, check_spline_domain, spline_param_size
from genjax_models.flows.squeeze import Squeeze, squeeze, unsqueeze

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Conv1x1",
    "ConvConditioner",
    "InverseAutoregressive",
    "LULinear",
    "Logit",
    "MLPConditioner",
    "MaskedAutoregressive",
    "MultiScale",
    "Permute",
    "Planar",
    "Radial",
    "ScanChain",
    "SplineCoupling",
    "SplitCoupling",
    "Squeeze",
    "VariationalDequantizer",
    "actnorm_identity",
    "actnorm_init",
    "check_spline_domain",
    "init_stacked",
    "lu_linear_from_matrix",
    "lu_linear_init",
    "multiscale_level_shapes",
    "num_stacked",
    "planar_init",
    "radial_init",
    "random_permutation",
    "reverse_permutation",
    "spline_param_size",
    "squeeze",
    "stack_params",
    "uniform_dequantize",
    "unsqueeze",
]
