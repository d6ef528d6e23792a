"""Datasets, preprocessing and batching.

* Raw data: :func:`load_dataset` / :func:`list_datasets` (digits, mnist5k, 2-D toys with
  exact densities, local MNIST / Fashion-MNIST, ``.npz`` files); nothing is downloaded.
* Preprocessing: :func:`prepare` (binarise: none / dynamic / static(SEED) / threshold(T);
  dequantise: none / uniform) returns :class:`PreparedData` with its :class:`DataSpec`.
* Batching: :func:`batch_indices` (jittable, deterministic in ``(key, step)``) and the
  per-call epoch orders the trainer uses; :class:`Batch` ``(x, y)`` carries labels along.
"""

from genjax_models.data.batch import Batch, as_batch, check_labels
from genjax_models.data.batching import (
    batch_indices,
    batch_indices_from_orders,
    epoch_orders,
    epochs_spanned,
)
from genjax_models.data.dataset import Dataset, PreparedData
from genjax_models.data.images import load_digits_dataset, load_mnist5k, stratified_split
from genjax_models.data.local import load_local, load_npz, read_idx
from genjax_models.data.registry import list_datasets, load_dataset
from genjax_models.data.spec import DataSpec
from genjax_models.data.toys import (
    CHECKERBOARD_ENTROPY,
    EIGHT_GAUSSIANS_CENTRES,
    EIGHT_GAUSSIANS_RADIUS,
    EIGHT_GAUSSIANS_STD,
    TWO_MOONS_NOISE,
    checkerboard_log_prob,
    eight_gaussians_entropy,
    eight_gaussians_log_prob,
)
from genjax_models.data.transforms import binarize_dynamic, dequantize_uniform, prepare

__all__ = [
    "Batch",
    "as_batch",
    "check_labels",
    "CHECKERBOARD_ENTROPY",
    "EIGHT_GAUSSIANS_CENTRES",
    "EIGHT_GAUSSIANS_RADIUS",
    "EIGHT_GAUSSIANS_STD",
    "TWO_MOONS_NOISE",
    "DataSpec",
    "Dataset",
    "PreparedData",
    "batch_indices",
    "batch_indices_from_orders",
    "epoch_orders",
    "epochs_spanned",
    "binarize_dynamic",
    "checkerboard_log_prob",
    "dequantize_uniform",
    "eight_gaussians_entropy",
    "eight_gaussians_log_prob",
    "list_datasets",
    "load_dataset",
    "load_digits_dataset",
    "load_local",
    "load_mnist5k",
    "load_npz",
    "prepare",
    "read_idx",
    "stratified_split",
]
