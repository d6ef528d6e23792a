"""What a model needs to know about its data: event shape, value type and quantisation."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

DataType = Literal["binary", "grey", "continuous"]


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Describe the arrays a model sees, after preprocessing (binarisation / dequantisation).

    Attributes:
      event_shape: shape of one example, e.g. ``(28, 28, 1)`` for MNIST or ``(2,)`` for a
        2-D toy. Images are always channels-last (H, W, C).
      data_type: ``"binary"`` (values in {0, 1}), ``"grey"`` (quantised levels scaled to
        [0, 1], i.e. ``level / (num_levels - 1)``), or ``"continuous"`` (real-valued, e.g.
        2-D toys or dequantised images).
      num_levels: number of quantisation levels of the raw data (17 for sklearn digits,
        256 for MNIST) or ``None`` for data that was never quantised.
      log_jacobian: log|det| of the map from the discrete data space to the model's space,
        per example (e.g. ``-D log L`` for uniform dequantisation ``y = (x + u) / L``).
        :func:`genjax_models.eval.nll_in_data_space` adds it once, in one place, so that a
        continuous model's log-density becomes a bound on the discrete log-probability.
      num_classes: number of class labels the data carries (``None``: unlabelled).
    """

    event_shape: tuple[int, ...]
    data_type: DataType
    num_levels: int | None = None
    log_jacobian: float = 0.0
    num_classes: int | None = None

    @property
    def num_dims(self) -> int:
        """D, the number of scalar dimensions of one example."""
        size = 1
        for n in self.event_shape:
            size *= int(n)
        return size

    def data_nll(self, model_nll):
        """Return the NLL in nats of the *data*: ``model_nll - log_jacobian`` (the one place).

        ``model_nll`` is a model's ``-log_prob`` (or a bound on it) of the arrays it was given;
        for uniformly dequantised data this adds ``D log L``, giving a bound on the NLL of the
        discrete data.
        """
        return model_nll - self.log_jacobian

    def bits_per_dim(self, model_nll):
        """Return data-space bits per dimension, ``data_nll(model_nll) / (D ln 2)``."""
        return self.data_nll(model_nll) / (self.num_dims * math.log(2.0))
