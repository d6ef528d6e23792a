"""Neural Spline Flow (Durkan et al., 2019): rational-quadratic spline couplings on ``[B, D]``.

The data ``x`` (flattened to ``[B, D]``, D >= 2, after the logit preprocessing for image
data) is mapped to the latent by L layers; in the data -> latent direction layer ``l`` applies

    mix the features (an invertible LU-parametrised linear map, or a reversal)
    ->  RQ-spline coupling^{-1}

The coupling keeps the first ``k = D // 2`` features and maps each other feature through a
monotone K-bin rational-quadratic spline on ``[-B, B]`` with identity (linear) tails, whose
``3K + 1`` parameters an MLP computes from the kept features (NSF-RQ-C, the paper's
``boundary_slopes='identity'``). The LU map ``W = L (U + diag(exp(d)))`` has log-det
``sum d``. Log-det of the flow: the sum of the layers'.

``use_scan=True`` (default) applies the L identical layers with one ``lax.scan``
(:class:`~genjax_models.flows.scan_chain.ScanChain`); ``use_scan=False`` builds the same
layers, with the same parameters, as a ``distrax.Chain`` (unrolled Python: compile time and
program size grow with L). Both give the same function; ``experiments/bench`` compares them.
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
from genjax_models.flows.conditioners import MLPConditioner
from genjax_models.flows.linear import LULinear, lu_linear_init
from genjax_models.flows.models.base import (
    BijectorFlow,
    check_choice,
    layer_params,
)
from genjax_models.flows.permutation import Permute, reverse_permutation
from genjax_models.flows.scan_chain import ScanChain, init_stacked
from genjax_models.flows.spline import SplineCoupling, spline_param_size
from genjax_models.model import Params, RunRecipe
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.validation import int_tuple, positive_int

MIXINGS: tuple[str, ...] = ("lu", "reverse")


@dataclasses.dataclass(frozen=True)
class NSF(BijectorFlow):
    """Neural Spline Flow with RQ-spline couplings (see the module docstring).

    Attributes:
      num_layers: L, the number of coupling layers.
      hidden: hidden widths of each coupling's MLP conditioner.
      activation: conditioner non-linearity (one of :data:`ACTIVATIONS`).
      num_bins: K, spline bins.
      bound: B, the splines act on ``[-B, B]`` (identity outside).
      mixing: ``"lu"`` (a learned LU linear map before each coupling) or ``"reverse"``.
      use_scan: apply the layers with ``lax.scan`` (else an unrolled ``distrax.Chain``).
    """

    num_layers: int = 4
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    num_bins: int = 8
    bound: float = 4.0
    mixing: str = "lu"
    use_scan: bool = True

    name: ClassVar[str] = "nsf"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="eight-gaussians",
        dequantize="uniform",
        train={
            "steps": 3000,
            "batch_size": 256,
            "lr": 0.001,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 50,
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_dims < 2:
            raise ConfigError(
                f"nsf couplings need D >= 2 dimensions, got event_shape {self.event_shape}"
            )
        positive_int("num_layers", self.num_layers)
        positive_int("num_bins", self.num_bins)
        object.__setattr__(self, "hidden", int_tuple("hidden", self.hidden))
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("mixing", self.mixing, MIXINGS)
        if not float(self.bound) > 0:
            raise ConfigError(f"bound must be positive, got {self.bound}")

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Image data (after the logit): wider conditioners, NSF's B = 3 and more layers."""
        if spec.num_dims > 16:
            return {"hidden": (256, 256), "bound": 3.0, "num_layers": 8}
        return {}

    # ------------------------------------------------------------------ pieces
    @property
    def split_index(self) -> int:
        """k = D // 2: the couplings keep features ``[:k]`` and transform ``[k:]``."""
        return self.num_dims // 2

    def conditioner(self) -> MLPConditioner:
        """Return the Flax conditioner ``[N, k] -> [N, (D - k)(3K + 1)]`` (zero output at init)."""
        out = (self.num_dims - self.split_index) * spline_param_size(self.num_bins)
        return MLPConditioner(self.hidden, out, ACTIVATIONS[self.activation], zero_init=True)

    def layer(self, params: Params) -> distrax.Bijector:
        """Build one layer (data side first: mixing, then the spline coupling)."""
        cond = functools.partial(self.conditioner().apply, {"params": params["conditioner"]})
        coupling = SplineCoupling(
            cond, self.split_index, num_bins=self.num_bins, bound=self.bound, tails="linear"
        )
        if self.mixing == "lu":
            mix = LULinear(params["lu"])
        else:
            mix = Permute(reverse_permutation(self.num_dims))
        return distrax.Chain([mix, coupling])

    # --------------------------------------------------------- flow interface
    def init_flow(self, key: jax.Array, y: jax.Array) -> Params:
        """Initialise identity couplings and random orthogonal LU maps."""
        cond_key, lu_key = jax.random.split(key)
        dummy = jnp.zeros((1, self.split_index), y.dtype)
        module = self.conditioner()
        stacked = {
            "conditioner": init_stacked(
                lambda k: module.init(k, dummy)["params"], cond_key, self.num_layers
            )
        }
        if self.mixing == "lu":
            stacked["lu"] = init_stacked(
                lambda k: lu_linear_init(k, self.num_dims, y.dtype), lu_key, self.num_layers
            )
        return {"layers": stacked}

    def flow(self, params: Params) -> distrax.Bijector:
        """Return the stack (forward: latent -> preprocessed data), scanned or chained."""
        if self.use_scan:
            return ScanChain(self.layer, params["layers"], event_ndims=1)
        # Layer 0 is applied first in the forward direction, i.e. last in a distrax.Chain.
        layers = [self.layer(layer_params(params["layers"], i)) for i in range(self.num_layers)]
        return distrax.Chain(layers[::-1])
