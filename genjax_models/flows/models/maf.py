"""Masked autoregressive flow (Papamakarios et al., 2017) and its inverse, IAF.

The data ``x`` (flattened to ``[B, D]``, after the logit preprocessing for image data) is
mapped to the latent by L MADE-conditioned autoregressive layers; between layers the feature
order is reversed, so consecutive layers use opposite autoregressive orderings. With
``(t, s) = MADE(u)`` (``t_i, s_i`` depend on ``u_{<i}`` only, ``|s| < scale_bound``):

- MAF (``inverse=False``): data -> latent ``z_i = (x_i - t_i(x)) exp(-s_i(x))``, ONE MADE pass
  per layer, so the density (training, evaluation) is cheap; sampling inverts it
  sequentially, D passes per layer (a ``lax.scan`` of length D).
- IAF (``inverse=True``): each layer is the inverse of a MAF layer
  (:class:`~genjax_models.flows.autoregressive.InverseAutoregressive`): latent -> data
  ``x_i = (z_i - t_i(z)) exp(-s_i(z))`` is ONE pass per layer, so sampling is cheap, and the
  density of external data needs D sequential passes per layer. Prefer IAF when
  fast sampling matters (or for variational posteriors, whose density is only needed at their
  own samples), MAF when fast exact density is.

Log-det (data -> latent) of a layer: ``-sum_i s_i`` (MAF) or ``+sum_i s_i`` (IAF), summed
over layers. The L identical
layers (reversal + autoregressive layer) run in a
:class:`~genjax_models.flows.scan_chain.ScanChain`. MADE outputs start at zero, so an
initialised flow is the identity.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import distrax
import jax
import jax.numpy as jnp

from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError
from genjax_models.flows.autoregressive import InverseAutoregressive, MaskedAutoregressive
from genjax_models.flows.models.base import (
    BijectorFlow,
    check_choice,
)
from genjax_models.flows.permutation import Permute, reverse_permutation
from genjax_models.flows.scan_chain import ScanChain, init_stacked
from genjax_models.model import Params, RunRecipe
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.nn.made import MADE
from genjax_models.validation import int_tuple, positive_int


@dataclasses.dataclass(frozen=True)
class MAF(BijectorFlow):
    """MAF (or IAF with ``inverse=True``): scanned MADE autoregressive layers on ``[B, D]``.

    Attributes:
      num_layers: L, autoregressive layers.
      hidden: MADE hidden widths (each should be >= D - 1).
      activation: MADE non-linearity (one of :data:`ACTIVATIONS`).
      scale_bound: bound of the log-scales, ``s = b tanh(raw / b)``.
      inverse: IAF-direction layers (one-pass sampling, D-pass density).
    """

    num_layers: int = 5
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    scale_bound: float = 2.0
    inverse: bool = False

    name: ClassVar[str] = "maf"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="eight-gaussians",
        dequantize="uniform",
        train={
            "steps": 5000,
            "batch_size": 256,
            "lr": 0.001,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 50,
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int("num_layers", self.num_layers)
        object.__setattr__(self, "hidden", int_tuple("hidden", self.hidden))
        check_choice("activation", self.activation, ACTIVATIONS)
        if not float(self.scale_bound) > 0:
            raise ConfigError(f"scale_bound must be positive, got {self.scale_bound}")

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """MADE hidden layers at least as wide as the data (image data: 2 D wide)."""
        if spec.num_dims > 16:
            width = max(256, 2 * spec.num_dims)
            return {"hidden": (width, width)}
        return {}

    # ------------------------------------------------------------------ pieces
    def made(self) -> MADE:
        """Return the MADE conditioner ``[N, D] -> [N, D, 2]`` (zero output at init)."""
        return MADE(
            hidden=self.hidden,
            num_params=2,
            order="natural",
            activation=ACTIVATIONS[self.activation],
            zero_init_output=True,
        )

    def layer(self, params: Params) -> distrax.Bijector:
        """Build one layer (data side first: reversal, then the autoregressive layer)."""
        cond = functools.partial(self.made().apply, {"params": params["made"]})
        cls = InverseAutoregressive if self.inverse else MaskedAutoregressive
        ar = cls(cond, self.num_dims, transform="affine", scale_bound=self.scale_bound)
        return distrax.Chain([Permute(reverse_permutation(self.num_dims)), ar])

    # --------------------------------------------------------- flow interface
    def init_flow(self, key: jax.Array, y: jax.Array) -> Params:
        """Initialise L MADEs (identity layers)."""
        dummy = jnp.zeros((1, self.num_dims), y.dtype)
        module = self.made()
        return {
            "layers": {
                "made": init_stacked(
                    lambda k: module.init(k, dummy)["params"], key, self.num_layers
                )
            }
        }

    def flow(self, params: Params) -> distrax.Bijector:
        """Return the scanned stack (forward: latent -> preprocessed data)."""
        return ScanChain(self.layer, params["layers"], event_ndims=1)
