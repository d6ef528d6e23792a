"""The in-memory dataset record and its preprocessed form.

A :class:`Dataset` holds raw arrays exactly as shipped (digits in 0..16, MNIST in
0..255, 2-D toys as real numbers). :func:`genjax_models.data.prepare` turns it into a
:class:`PreparedData`: the arrays a model trains and is evaluated on, the per-step
transform applied inside the jitted training step (dynamic binarisation, uniform
dequantisation), the :class:`DataSpec` the model is built from, and a description of the
preprocessing that is stored with every metric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from genjax_models.data.spec import DataSpec
from genjax_models.errors import unknown_name


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Raw data with a fixed train/test split.

    Attributes:
      name: registry name, e.g. ``"digits"``, ``"mnist5k"``, ``"checkerboard"``.
      train, test: float32 arrays ``[N, *event_shape]`` in raw units; images channels-last.
      train_labels, test_labels: int32 class labels ``[N]`` or ``None``.
      num_levels: quantisation levels of the raw values (17 for digits, 256 for MNIST) or
        ``None`` for continuous data. Raw values are integers in ``0..num_levels-1``.
      log_prob: exact log-density ``[B, *event] -> [B]`` for toys that have one, else ``None``.
      entropy: differential entropy of the exact density in nats (toys), else ``None``.
      sampler: ``(key, num) -> [num, *event]`` for toys with a sampler, else ``None``.
      description: one line on the source and split.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    num_levels: int | None = None
    log_prob: Callable[[jax.Array], jax.Array] | None = None
    entropy: float | None = None
    sampler: Callable[[jax.Array, int], jax.Array] | None = None
    description: str = ""

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.train.ndim == 4


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Arrays and transforms ready for training and evaluation.

    Attributes:
      dataset: the raw :class:`Dataset` this came from.
      spec: what the model sees (event shape, data type, levels, log-Jacobian).
      train: float32 ``[N, *event]`` array sampled by the batcher; already binarised for
        ``static``/``threshold`` binarisation, still grey (probabilities) for ``dynamic``.
      test: float32 ``[M, *event]``, fully preprocessed with a fixed seed (one fixed
        binarisation / dequantisation), so every evaluation sees the same numbers.
      train_transform: jittable ``(batch, key) -> batch`` applied to every training batch
        inside the step (dynamic binarisation, uniform dequantisation, or identity).
      eval_transform: jittable ``(batch, key) -> batch`` turning raw-but-scaled
        ``train``-like batches into evaluation batches (same as train_transform).
      preprocessing: JSON-able description stored with every metric, e.g.
        ``{"binarize": "dynamic", "eval_binarize": "static(0)", "dequantize": "none"}``.
    """

    dataset: Dataset
    spec: DataSpec
    train: np.ndarray
    test: np.ndarray
    train_transform: Callable[[jax.Array, jax.Array], jax.Array]
    eval_transform: Callable[[jax.Array, jax.Array], jax.Array]
    preprocessing: dict[str, Any]

    def split(self, name: str) -> np.ndarray:
        """Return the evaluation array for ``"train"`` or ``"test"`` (preprocessed, fixed)."""
        if name == "test":
            return self.test
        if name == "train":
            return self.train_eval
        raise unknown_name("split", name, ["train", "test"])

    def split_labels(self, name: str) -> np.ndarray | None:
        """Return the int32 labels ``[N]`` of split ``"train"`` or ``"test"`` (``None``: none)."""
        if name not in ("train", "test"):
            raise unknown_name("split", name, ["train", "test"])
        return self.dataset.train_labels if name == "train" else self.dataset.test_labels

    @property
    def train_labels(self) -> np.ndarray | None:
        """The labels of :attr:`train`, row for row (``None`` for unlabelled data)."""
        return self.dataset.train_labels

    @property
    def has_labels(self) -> bool:
        """Whether every example carries a class label."""
        return self.dataset.train_labels is not None and self.dataset.test_labels is not None

    @property
    def train_eval(self) -> np.ndarray:
        """The training split preprocessed with the fixed ``eval_seed``, for evaluation."""
        seed = int(self.preprocessing.get("eval_seed", 0))
        return np.asarray(self.eval_transform(jax.numpy.asarray(self.train), jax.random.key(seed)))
