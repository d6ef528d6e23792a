"""A density model from planar (and optionally radial) flows (Rezende & Mohamed, 2015).

For low-dimensional data ``x`` (flattened to ``[B, D]``). Planar layers
``g(u) = u + u_hat tanh(w^T u + b)`` have a closed-form log-det
``log(1 + w^T u_hat sech^2(w^T u + b))`` but no closed-form inverse, so this model puts them
in the NORMALISING direction, where a density model needs them: data -> latent

    h_L = ActNorm^{-1}(x)                       (data-initialised: whitens the first batch)
    h_{l} = g_l(h_{l+1})  for l = L-1, ..., 0   (planar, then radial if enabled, per layer)
    z = h_0,   log p(x) = log N(z; 0, I) + sum_l log|det J_{g_l}| - sum log_scale

so the exact density costs one closed-form pass. Sampling inverts each layer numerically
(:class:`~genjax_models.flows.planar.Planar`'s safeguarded Newton solve, exact to float
precision; the radial inverse is closed-form). The L identical layers run in a
:class:`~genjax_models.flows.scan_chain.ScanChain` (each layer is ``distrax.Inverse`` of the
planar / radial bijector, whose forward is the map above).

Planar flows are weak density models (each layer bends space along one hyperplane); they
are here as the classic baseline and for variational inference, where they are used in
the sampling direction.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError
from genjax_models.flows.actnorm import ActNorm, actnorm_init
from genjax_models.flows.models.base import BijectorFlow
from genjax_models.flows.planar import Planar, Radial, planar_init, radial_init
from genjax_models.flows.scan_chain import ScanChain, init_stacked
from genjax_models.model import Params, RunRecipe
from genjax_models.validation import positive_int

_LOG_E_MINUS_1 = math.log(math.e - 1.0)  # softplus(log(e - 1)) = 1


def _near_identity(params: Params) -> Params:
    """Shift ``u`` along ``w`` so that ``w^T u = log(e - 1)``: then ``u_hat`` is the part of
    ``u`` orthogonal to ``w`` (``k = w^T u_hat = 0``, log-det 0), a small shear instead of the
    contraction ``k = -1 + softplus(0) ~ -0.31`` a random small ``u`` would give."""
    w, u = params["w"], params["u"]
    norm2 = jnp.dot(w, w)
    u = u + (_LOG_E_MINUS_1 - jnp.dot(w, u)) * w / norm2
    return {**params, "u": u}


@dataclasses.dataclass(frozen=True)
class PlanarFlow(BijectorFlow):
    """Planar (+ radial) layers in the normalising direction, after a data-initialised ActNorm.

    Attributes:
      num_layers: L, the number of planar (or planar + radial) layers.
      radial: follow each planar map by a radial map ``u + beta (u - u0) / (alpha + |u - u0|)``.
      init_scale: standard deviation of the initial planar ``w, u`` (0 would be degenerate).
      newton_iterations: Newton / bisection steps of each planar inverse when sampling.
    """

    num_layers: int = 64
    radial: bool = False
    init_scale: float = 0.1
    newton_iterations: int = 40

    name: ClassVar[str] = "planar"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="eight-gaussians",
        dequantize="uniform",
        train={
            "steps": 6000,
            "batch_size": 256,
            "lr": 0.003,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 50,
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int("num_layers", self.num_layers)
        positive_int("newton_iterations", self.newton_iterations)
        if not float(self.init_scale) > 0:
            raise ConfigError(f"init_scale must be positive, got {self.init_scale}")

    # ------------------------------------------------------------------ pieces
    def layer(self, params: Params) -> distrax.Bijector:
        """Build one layer: forward (latent -> data) is the inverse of planar (then radial)."""
        planar = Planar.from_params(params["planar"], self.newton_iterations)
        if not self.radial:
            return distrax.Inverse(planar)
        # Normalising direction: planar first, then radial; distrax.Chain applies the last first.
        return distrax.Inverse(distrax.Chain([Radial.from_params(params["radial"]), planar]))

    # --------------------------------------------------------- flow interface
    def init_flow(self, key: jax.Array, y: jax.Array) -> Params:
        """Initialise small random planar / radial layers and a data-initialised ActNorm."""
        planar_key, radial_key = jax.random.split(key)
        d = self.num_dims
        layers = {
            "planar": init_stacked(
                lambda k: _near_identity(planar_init(k, d, self.init_scale, y.dtype)),
                planar_key,
                self.num_layers,
            )
        }
        if self.radial:
            layers["radial"] = init_stacked(
                lambda k: radial_init(k, d, 1.0, y.dtype), radial_key, self.num_layers
            )
        return {"actnorm": actnorm_init(y, event_ndims=1), "layers": layers}

    def flow(self, params: Params) -> distrax.Bijector:
        """Return ``ActNorm o ScanChain`` (forward: latent -> preprocessed data)."""
        stack = ScanChain(self.layer, params["layers"], event_ndims=1)
        return distrax.Chain([ActNorm.from_params(params["actnorm"]), stack])
