"""Checks applied wherever data enters the package (loaders and :func:`prepare`).

A user's data mistake (NaN/inf values, values outside the quantisation grid, mismatched
shapes) raises :class:`~genjax_models.errors.DataError` naming the dataset, the split
and how many values are wrong, instead of surfacing later as a NaN loss.
"""

from __future__ import annotations

import numpy as np

from genjax_models.data.dataset import Dataset
from genjax_models.errors import DataError


def check_finite(array: np.ndarray, name: str, split: str) -> None:
    """Raise DataError if ``array`` holds NaN or inf values.

    Args:
      array: any numeric array.
      name: dataset name, used in the message.
      split: ``"train"`` or ``"test"``, used in the message.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count:
        raise DataError(
            f"dataset {name!r}: the {split} split holds {count} NaN/inf value(s) out of "
            f"{array.size}; clean or drop those examples before loading"
        )


def check_levels(array: np.ndarray, num_levels: int, name: str, split: str) -> None:
    """Raise DataError unless every value is an integer level in ``0..num_levels-1``.

    Args:
      array: raw quantised data (any dtype).
      num_levels: L, the number of levels.
      name: dataset name, used in the message.
      split: ``"train"`` or ``"test"``, used in the message.
    """
    array = np.asarray(array)
    if array.size == 0:
        return
    out = (array < 0) | (array > num_levels - 1)
    count = int(out.sum())
    if count:
        raise DataError(
            f"dataset {name!r}: the {split} split holds {count} value(s) outside "
            f"0..{num_levels - 1} (min {array.min()}, max {array.max()}); raw quantised "
            f"data must hold integer levels 0..{num_levels - 1}"
        )
    if np.issubdtype(array.dtype, np.floating):
        frac = int((array != np.round(array)).sum())
        if frac:
            raise DataError(
                f"dataset {name!r}: the {split} split holds {frac} non-integer value(s); "
                f"raw quantised data must hold integer levels 0..{num_levels - 1} "
                f"(round it, or load it as continuous data)"
            )


def validate_dataset(dataset: Dataset) -> Dataset:
    """Check a :class:`Dataset`'s arrays (finite, on the level grid, matching shapes).

    Returns the dataset unchanged so loaders can ``return validate_dataset(Dataset(...))``.
    """
    name = dataset.name
    for split, array, labels in (
        ("train", dataset.train, dataset.train_labels),
        ("test", dataset.test, dataset.test_labels),
    ):
        check_finite(array, name, split)
        if dataset.num_levels is not None:
            check_levels(array, dataset.num_levels, name, split)
        if labels is not None and len(labels) != len(array):
            raise DataError(
                f"dataset {name!r}: the {split} split has {len(array)} examples but "
                f"{len(labels)} labels"
            )
    if dataset.train.shape[1:] != dataset.test.shape[1:]:
        raise DataError(
            f"dataset {name!r}: train examples have shape {dataset.train.shape[1:]} but "
            f"test examples have shape {dataset.test.shape[1:]}"
        )
    return dataset
