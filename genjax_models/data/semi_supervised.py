"""Semi-supervised data: keep the labels of a chosen, class-balanced subset of the training set.

``--set data.num_labelled=N`` keeps the labels of N training examples and marks every other
training label :data:`UNLABELLED` (-1); the test labels stay, so that evaluation can measure
a classifier. The kept examples are class-balanced: floor(N / C) per class, plus one more for
the first N mod C classes, drawn without replacement by a seeded permutation (the run's
``data.eval_seed``), so the same seed keeps the same examples. Only models that declare
``semi_supervised = True`` (``m2``) train on such data; the trainer refuses it for the others.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from genjax_models.data.dataset import PreparedData
from genjax_models.errors import ConfigError

UNLABELLED = -1


def labelled_subset(
    labels: np.ndarray, num_labelled: int, num_classes: int, seed: int = 0
) -> np.ndarray:
    """Return the sorted indices of a class-balanced subset of ``num_labelled`` examples.

    Args:
      labels: ``[N]`` int labels in 0..C-1.
      num_labelled: n, 0 <= n <= N.
      num_classes: C.
      seed: seed of the per-class permutation.

    Raises:
      ConfigError: n out of range, or a class with fewer examples than its share.
    """
    labels = np.asarray(labels)
    if not 0 <= num_labelled <= labels.shape[0]:
        raise ConfigError(
            f"num_labelled must lie in 0..{labels.shape[0]} (the training examples), "
            f"got {num_labelled}"
        )
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        share = num_labelled // num_classes + (1 if c < num_labelled % num_classes else 0)
        members = np.flatnonzero(labels == c)
        if members.size < share:
            raise ConfigError(
                f"class {c} has {members.size} training examples, fewer than its share {share} "
                f"of num_labelled={num_labelled}"
            )
        chosen.append(rng.permutation(members)[:share])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def keep_labels(prepared: PreparedData, num_labelled: int, seed: int = 0) -> PreparedData:
    """Return ``prepared`` with all but ``num_labelled`` training labels set to -1.

    Raises:
      ConfigError: the data carry no labels, or :func:`labelled_subset` refuses.
    """
    if not prepared.has_labels or prepared.spec.num_classes is None:
        raise ConfigError(
            f"data.num_labelled needs labelled data; dataset {prepared.dataset.name!r} has none"
        )
    labels = np.asarray(prepared.dataset.train_labels)
    keep = labelled_subset(labels, num_labelled, prepared.spec.num_classes, seed)
    masked = np.full_like(labels, UNLABELLED)
    masked[keep] = labels[keep]
    dataset = dataclasses.replace(prepared.dataset, train_labels=masked)
    preprocessing = {**prepared.preprocessing, "num_labelled": int(num_labelled)}
    return dataclasses.replace(prepared, dataset=dataset, preprocessing=preprocessing)
