"""Glow (Kingma & Dhariwal, 2018): a multi-scale flow of ActNorm, 1x1 convolutions and couplings.

Images ``x [B, H, W, C]`` in [0, 1] (dequantised) go through the logit preprocessing, then
the multi-scale architecture (:class:`~genjax_models.flows.multiscale.MultiScale`) with
``num_scales`` levels. In the data -> latent direction, level ``l`` squeezes its input
(space to depth, ``[H_l, W_l, C_l]``) and applies ``steps_per_scale`` steps of flow

    ActNorm^{-1}  ->  1x1 convolution^{-1} (LU form)  ->  affine coupling^{-1}

after which half of the channels are factored out (all of them at the last level). The
coupling keeps the first ``C_l // 2`` channels and transforms the rest with shift and
bounded log-scale from a :class:`~genjax_models.flows.conditioners.ConvConditioner`
(3x3 -> 1x1 -> zero-initialised 3x3 convolutions). Log-det per step:
``-H_l W_l (sum log_scale + sum log|diag|) - sum s``; the base is N(0, I) over the whole
latent (all factored-out parts). The steps of a level run in a
:class:`~genjax_models.flows.scan_chain.ScanChain`; the few levels are a Python loop.

Initialisation: couplings start as the identity, 1x1 convolutions as random rotations, and
every ActNorm is initialised from the batch given to ``init`` (the trainer passes the first
training batch) so that, on that batch, each step's input leaves its ActNorm with zero mean
and unit variance per channel.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import distrax
import jax
import jax.numpy as jnp

from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.actnorm import ActNorm
from genjax_models.flows.conditioners import ConvConditioner
from genjax_models.flows.coupling import AffineCoupling
from genjax_models.flows.linear import Conv1x1, lu_linear_init
from genjax_models.flows.models.base import (
    BijectorFlow,
    check_choice,
    init_actnorm_stack,
)
from genjax_models.flows.multiscale import MultiScale, multiscale_level_shapes
from genjax_models.flows.scan_chain import ScanChain, init_stacked
from genjax_models.flows.squeeze import squeeze
from genjax_models.model import Params, RunRecipe
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.validation import positive_int


@dataclasses.dataclass(frozen=True)
class Glow(BijectorFlow):
    """Glow on channels-last images (see the module docstring).

    Attributes:
      num_scales: L, multi-scale levels (H and W must be divisible by ``2**L``).
      steps_per_scale: K, steps of flow per level.
      hidden_channels: channels of the conditioners' hidden convolutions.
      activation: conditioner non-linearity (one of :data:`ACTIVATIONS`).
      scale_bound: bound of the couplings' log-scales, ``s = b tanh(raw / b)``.
    """

    num_scales: int = 2
    steps_per_scale: int = 4
    hidden_channels: int = 64
    activation: str = "relu"
    scale_bound: float = 2.0

    name: ClassVar[str] = "glow"
    flatten_input: ClassVar[bool] = False
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="digits",
        dequantize="uniform",
        train={
            "steps": 300,
            "batch_size": 64,
            "lr": 0.001,
            "log_every": 50,
            "checkpoint_every": 150,
            "steps_per_call": 25,
            "grad_clip": 50.0,
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int("num_scales", self.num_scales)
        positive_int("steps_per_scale", self.steps_per_scale)
        positive_int("hidden_channels", self.hidden_channels)
        check_choice("activation", self.activation, ACTIVATIONS)
        if not float(self.scale_bound) > 0:
            raise ConfigError(f"scale_bound must be positive, got {self.scale_bound}")
        if len(self.event_shape) != 3:
            raise ShapeError(f"glow needs image data (H, W, C), got event_shape {self.event_shape}")
        multiscale_level_shapes(self.event_shape, self.num_scales)  # raises on bad sizes

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """3 scales where the image size allows it (else 2); 32 hidden channels up to 8x8."""
        if len(spec.event_shape) != 3:
            return {}
        h, w = spec.event_shape[:2]
        return {
            "num_scales": 3 if h % 8 == 0 and w % 8 == 0 and min(h, w) >= 16 else 2,
            "hidden_channels": 32 if h * w <= 64 else 64,
        }

    # ------------------------------------------------------------------ pieces
    def level_shapes(self) -> list[tuple[int, int, int]]:
        """Event shape ``(H_l, W_l, C_l)`` each level's steps act on."""
        return multiscale_level_shapes(self.event_shape, self.num_scales)

    def conditioner(self, channels: int) -> ConvConditioner:
        """Return the conditioner ``[N, H, W, C // 2] -> [N, H, W, 2 (C - C // 2)]``."""
        out = 2 * (channels - channels // 2)
        return ConvConditioner(
            self.hidden_channels, out, ACTIVATIONS[self.activation], zero_init=True
        )

    def step(self, channels: int, params: Params) -> distrax.Bijector:
        """Build one step of flow (data side first: ActNorm, 1x1 conv, coupling)."""
        cond = functools.partial(
            self.conditioner(channels).apply, {"params": params["conditioner"]}
        )
        coupling = AffineCoupling(cond, channels // 2, event_ndims=3, scale_bound=self.scale_bound)
        return distrax.Chain(
            [ActNorm.from_params(params["actnorm"], 3), Conv1x1(params["conv"]), coupling]
        )

    def level(self, index: int, params: Params) -> ScanChain:
        """Return level ``index``'s scanned steps (forward: latent side -> data side)."""
        channels = self.level_shapes()[index][-1]
        return ScanChain(functools.partial(self.step, channels), params, event_ndims=3)

    # --------------------------------------------------------- flow interface
    def init_flow(self, key: jax.Array, y: jax.Array) -> Params:
        """Initialise every level, ActNorms from the batch ``y`` (data -> latent order)."""
        levels = []
        h = y
        for index, (hl, wl, cl) in enumerate(self.level_shapes()):
            cond_key, conv_key = jax.random.split(jax.random.fold_in(key, index))
            module = self.conditioner(cl)
            dummy = jnp.zeros((1, hl, wl, cl // 2), y.dtype)
            stacked = {
                "conditioner": init_stacked(
                    lambda k, m=module, d=dummy: m.init(k, d)["params"],
                    cond_key,
                    self.steps_per_scale,
                ),
                "conv": init_stacked(
                    lambda k, c=cl: lu_linear_init(k, c, y.dtype), conv_key, self.steps_per_scale
                ),
            }
            t = squeeze(h)
            stacked = init_actnorm_stack(
                functools.partial(self.step, cl), stacked, t, event_ndims=3
            )
            levels.append(stacked)
            if index < self.num_scales - 1:
                t, _ = self.level(index, stacked).inverse_and_log_det(t)
                h = t[..., t.shape[-1] // 2 :]  # the half that continues (MultiScale's convention)
        return {"levels": levels}

    def flow(self, params: Params) -> distrax.Bijector:
        """Return the multi-scale bijector (forward: latent -> preprocessed images)."""
        return MultiScale([self.level(i, p) for i, p in enumerate(params["levels"])])
