"""RealNVP (Dinh et al., 2017) on flattened data: affine split couplings and permutations.

The data ``x`` (flattened to ``[B, D]``, D >= 2, after the logit preprocessing for image
data) is mapped to the latent by L layers; in the data -> latent direction layer ``l`` applies

    ActNorm^{-1} (optional)  ->  reverse the features  ->  affine coupling^{-1}

where the coupling keeps the first ``k = D // 2`` features and transforms the rest,
``y_t = (x_t - t(x_c)) * exp(-s(x_c))``, ``|s| < scale_bound`` (see
:class:`~genjax_models.flows.coupling.AffineCoupling`), with an MLP conditioner. Reversing
the features between layers lets every feature be transformed. Log-det: the sum of the
layers' (``-sum s`` per coupling, ``-sum log_scale`` per ActNorm). The L identical layers
run in a :class:`~genjax_models.flows.scan_chain.ScanChain` (compiled once whatever L).

Initialisation: conditioners output zero (each coupling starts as the identity); ActNorm is
initialised from the first batch so that each layer's input is whitened per feature.
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
from genjax_models.flows.actnorm import ActNorm
from genjax_models.flows.conditioners import MLPConditioner
from genjax_models.flows.coupling import AffineCoupling
from genjax_models.flows.models.base import (
    BijectorFlow,
    check_choice,
    init_actnorm_stack,
)
from genjax_models.flows.permutation import Permute, reverse_permutation
from genjax_models.flows.scan_chain import ScanChain, init_stacked
from genjax_models.model import Params, RunRecipe
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.validation import int_tuple, positive_int


@dataclasses.dataclass(frozen=True)
class RealNVP(BijectorFlow):
    """RealNVP: a scanned stack of (ActNorm, reversal, affine coupling) layers on ``[B, D]``.

    Attributes:
      num_layers: L, the number of coupling layers.
      hidden: hidden widths of each coupling's MLP conditioner.
      activation: conditioner non-linearity (one of :data:`ACTIVATIONS`).
      scale_bound: bound of the couplings' log-scales, ``s = b tanh(raw / b)``.
      actnorm: put a data-initialised ActNorm at the data side of every layer.
    """

    num_layers: int = 8
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    scale_bound: float = 2.0
    actnorm: bool = True

    name: ClassVar[str] = "realnvp"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="eight-gaussians",
        dequantize="uniform",
        train={
            "steps": 6000,
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
                f"realnvp couplings need D >= 2 dimensions, got event_shape {self.event_shape}"
            )
        positive_int("num_layers", self.num_layers)
        object.__setattr__(self, "hidden", int_tuple("hidden", self.hidden))
        check_choice("activation", self.activation, ACTIVATIONS)
        if not float(self.scale_bound) > 0:
            raise ConfigError(f"scale_bound must be positive, got {self.scale_bound}")

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Wider conditioners for high-dimensional (image) data."""
        return {"hidden": (256, 256)} if spec.num_dims > 16 else {}

    # ------------------------------------------------------------------ pieces
    @property
    def split_index(self) -> int:
        """k = D // 2: the couplings keep features ``[:k]`` and transform ``[k:]``."""
        return self.num_dims // 2

    def conditioner(self) -> MLPConditioner:
        """Return the Flax conditioner ``[N, k] -> [N, 2 (D - k)]`` (zero-initialised output)."""
        out = 2 * (self.num_dims - self.split_index)
        return MLPConditioner(self.hidden, out, ACTIVATIONS[self.activation], zero_init=True)

    def layer(self, params: Params) -> distrax.Bijector:
        """Build one layer from its parameters (data side first: ActNorm, reversal, coupling)."""
        cond = functools.partial(self.conditioner().apply, {"params": params["conditioner"]})
        coupling = AffineCoupling(cond, self.split_index, scale_bound=self.scale_bound)
        parts = [Permute(reverse_permutation(self.num_dims)), coupling]
        if self.actnorm:
            parts.insert(0, ActNorm.from_params(params["actnorm"]))
        return distrax.Chain(parts)

    # --------------------------------------------------------- flow interface
    def init_flow(self, key: jax.Array, y: jax.Array) -> Params:
        """Initialise the conditioners (zero output) and the data-dependent ActNorms."""
        dummy = jnp.zeros((1, self.split_index), y.dtype)
        module = self.conditioner()
        stacked = {
            "conditioner": init_stacked(
                lambda k: module.init(k, dummy)["params"], key, self.num_layers
            )
        }
        if self.actnorm:
            stacked = init_actnorm_stack(self.layer, stacked, y, event_ndims=1)
        return {"layers": stacked}

    def flow(self, params: Params) -> distrax.Bijector:
        """Return the scanned stack (forward: latent -> preprocessed data)."""
        return ScanChain(self.layer, params["layers"], event_ndims=1)
