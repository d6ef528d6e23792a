"""Flow models behind the common protocol: ``init`` / ``loss`` / ``sample`` / exact ``log_prob``.

Each model is a frozen dataclass (``get_model(name, spec, **overrides)`` builds one):

- :class:`RealNVP` (``"realnvp"``): affine split couplings, reversals, ActNorm.
- :class:`MAF` (``"maf"``): MADE autoregressive layers; ``inverse=True`` gives IAF.
- :class:`NSF` (``"nsf"``): rational-quadratic spline couplings, LU mixing, scanned or chained.
- :class:`PlanarFlow` (``"planar"``): planar (+ radial) layers for low-dimensional data.
- :class:`Glow` (``"glow"``): multi-scale ActNorm / 1x1 conv / affine coupling for images.
- :class:`FFJORD` (``"ffjord"``): continuous normalising flow, RK4, exact or Hutchinson trace.

:class:`FlowModel` holds what they share (validation, logit preprocessing, N(0, I) base,
loss and sampling); subclass it to put a new bijector behind the protocol.
"""

from genjax_models.flows.models.base import FlowModel, standard_normal_log_prob
from genjax_models.flows.models.ffjord import FFJORD
from genjax_models.flows.models.glow import Glow
from genjax_models.flows.models.maf import MAF
from genjax_models.flows.models.nsf import NSF
from genjax_models.flows.models.planar import PlanarFlow
from genjax_models.flows.models.realnvp import RealNVP

__all__ = [
    "FFJORD",
    "MAF",
    "NSF",
    "FlowModel",
    "Glow",
    "PlanarFlow",
    "RealNVP",
    "standard_normal_log_prob",
]
