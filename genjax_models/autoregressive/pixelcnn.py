"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
Decoders"): masked convolutions in raster order, with no blind spot.

An image ``x [H, W]`` (one channel) is modelled pixel by pixel in raster order,

    p(x | y) = prod_{(i, j)} p(x_ij | x_{(i', j') < (i, j)}, y),

with every conditional's parameters ``out_ij [P]`` computed for all pixels at once by a
stack of gated layers (:mod:`genjax_models.nn.masked_conv`). Two stacks run side by side:

- the *vertical* stack, a k x k conv masked to the rows at or above the current one; it is
  shifted down by one row before feeding the horizontal stack, so it contributes rows ``< i``;
- the *horizontal* stack, a 1 x k conv masked to the pixels left of the current one (type A
  in the first layer: the current pixel excluded) or left of and at it (type B, later
  layers, whose inputs already exclude the current pixel), with a residual connection.

Each layer's pre-activations pass through the gate ``tanh(a) * sigmoid(b)``; with class
conditioning (``num_classes`` set and labels y given) a learned per-class vector ``e(y)`` is
added to both stacks' pre-activations in every layer. A 1x1 ReLU head maps the horizontal
stack to P = ``conditional.num_outputs`` numbers per pixel: a Bernoulli logit (binary data),
L logits (``"categorical"``) or a K-component discretised logistic mixture
(``"logistic-mixture"``, PixelCNN++). ``log_prob`` is exact (one network pass); sampling
needs D = H W network passes (the base class's default ``sample_step``).

Shapes: batches are ``[B, H, W]`` or ``[B, H, W, 1]``; the flat ``x [B, D]`` of the base
class is reshaped to ``[B, H, W, 1]``; outputs are ``[B, D, P]``. Colour images (C > 1) are
refused (no R < G < B channel masks here).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.autoregressive.base import AutoregressiveModel
from genjax_models.data.batch import check_labels
from genjax_models.errors import ConfigError
from genjax_models.model import Params, RunRecipe
from genjax_models.nn.masked_conv import GatedPixelCNNNet

LIKELIHOODS: tuple[str, ...] = ("bernoulli", "categorical", "logistic-mixture")


@dataclasses.dataclass(frozen=True)
class PixelCNN(AutoregressiveModel):
    """A gated PixelCNN over one-channel images in raster order (module docstring).

    Labels are accepted: with ``num_classes`` set, labels given in a batch (or to ``sample``)
    condition every gate; without labels the conditioning term is left out.

    Attributes:
      channels: F, the feature channels of each stack (and of the output head).
      num_layers: L, the number of gated layers (>= 1).
      kernel_size: k of the masked convolutions of layers 2..L (odd, >= 3).
      first_kernel_size: k of the first, type-A layer (odd, >= 3).
      num_classes: K for class conditioning on labels 0..K-1 (``None``: unconditional).
    """

    channels: int = 32
    num_layers: int = 5
    kernel_size: int = 3
    first_kernel_size: int = 5
    num_classes: int | None = None

    name: ClassVar[str] = "pixelcnn"
    labels: ClassVar[str] = "accepts"
    supported_likelihoods: ClassVar[tuple[str, ...]] = LIKELIHOODS
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="digits",
        binarize="threshold(8)",
        train={
            "steps": 400,
            "batch_size": 128,
            "lr": 3e-3,
            "schedule": "cosine",
            "decay_steps": 400,
            "log_every": 100,
            "checkpoint_every": 400,
            "steps_per_call": 100,
        },
        expected="~40 s on a 2-core CPU; test NLL ~17.0 nats (exact; FVSBN 18.17, IWAE 16.16)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        shape = self.event_shape
        if len(shape) not in (2, 3):
            raise ConfigError(
                f"pixelcnn models images: event_shape must be (H, W) or (H, W, 1), got {shape}; "
                "for flat vectors use fvsbn, nade or made"
            )
        if len(shape) == 3 and shape[2] != 1:
            raise ConfigError(
                f"pixelcnn handles one-channel images only (event_shape (H, W, 1)), got "
                f"{shape}: colour channel masks are not implemented"
            )
        for field in ("channels", "num_layers"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{field} must be >= 1, got {getattr(self, field)!r}")
        for field in ("kernel_size", "first_kernel_size"):
            k = getattr(self, field)
            if k < 3 or k % 2 == 0:
                raise ConfigError(f"{field} must be odd and >= 3, got {k!r}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1 or None, got {self.num_classes!r}")

    # ------------------------------------------------------------------ pieces
    @property
    def network(self) -> GatedPixelCNNNet:
        """The Flax network ``[B, H, W, 1], y -> [B, H, W, P]``."""
        return GatedPixelCNNNet(
            features=self.channels,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
            num_outputs=self.conditional.num_outputs,
            num_classes=self.num_classes,
        )

    def image(self, x: Float[Array, "b d"]) -> Float[Array, "b h w 1"]:
        """Reshape flat ``x [B, D]`` to ``[B, H, W, 1]``."""
        height, width = self.event_shape[:2]
        return x.reshape(x.shape[0], height, width, 1)

    def _labels(self, y: jax.Array | None) -> jax.Array | None:
        """Labels used for conditioning: ``y`` if the model is conditional, else None."""
        return None if self.num_classes is None else y

    # ------------------------------------------------------------------- hooks
    def init_params(self, key: jax.Array, x: Float[Array, "b d"], y: jax.Array | None) -> Params:
        """Initialise the network (the label embeddings too, when ``num_classes`` is set)."""
        y = self._labels(y)
        if self.num_classes is not None and y is None:
            y = jnp.zeros((x.shape[0],), jnp.int32)
        return self.network.init(key, self.image(x), y)["params"]

    def conditional_outputs(
        self, params: Params, x: Float[Array, "b d"], y: jax.Array | None
    ) -> Float[Array, "b d p"]:
        """Return ``[B, D, P]``: one full network pass (out[:, i] sees pixels before i only)."""
        out = self.network.apply({"params": params}, self.image(x), self._labels(y))
        return out.reshape(x.shape[0], self.num_dims, -1)

    @property
    def samples_by_class(self) -> bool:
        """A class-conditional PixelCNN previews every class in turn."""
        return self.num_classes is not None

    def check_sample_labels(self, labels: Any, num: int) -> jax.Array | None:
        """Check labels given to ``sample``; without ``num_classes`` the model refuses them."""
        if labels is not None and self.num_classes is None:
            raise ConfigError(
                "pixelcnn is unconditional unless num_classes is set "
                "(--set model.num_classes=K): it takes no labels"
            )
        if labels is None:
            return None
        return check_labels(labels, num, self.num_classes)
