"""Full datasets read from local files; nothing is ever downloaded.

* :func:`load_local` reads MNIST / Fashion-MNIST from the four standard IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, each plain or ``.gz``) found in ``data_dir`` or in one of
  its usual sub-folders. If they are absent and ``tensorflow_datasets`` happens to be
  importable, it falls back to ``tfds.load(name, data_dir=data_dir, download=False)``;
  the package never requires TensorFlow.
* :func:`load_npz` reads a ``.npz`` with ``x_train``, ``x_test`` and optional
  ``y_train``, ``y_test``.

IDX format: a 4-byte magic ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 sizes, then the values in C order (big-endian for multi-byte types).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from genjax_models.data.dataset import Dataset
from genjax_models.data.validation import validate_dataset
from genjax_models.errors import DataError, unknown_name

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
LOCAL_DATASETS = {
    "mnist": "MNIST 60000/10000, 28x28x1, levels 0..255 (L=256), from local IDX files or tfds",
    "fashion-mnist": "Fashion-MNIST 60000/10000, 28x28x1, L=256, from local IDX files or tfds",
}
_SUBDIRS = {
    "mnist": ("mnist", "MNIST/raw", "MNIST"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
}
_TFDS_NAMES = {"mnist": "mnist", "fashion-mnist": "fashion_mnist"}
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed, detected from its first bytes).

    Returns:
      The array with the shape stored in the header (native byte order).

    Raises:
      DataError: unreadable/corrupted gzip, bad magic number, unknown dtype code, or a
        file shorter or longer than its header says.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'} "
            "(expected 0000 <dtype code 08..0e> <ndim>)"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated: header needs {header} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {state}: header shape {shape} needs {expected} bytes, "
            f"file has {len(raw)}"
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[..., None] if x.ndim == 3 else x


def _labels(y: np.ndarray | None) -> np.ndarray | None:
    return None if y is None else np.asarray(y).reshape(-1).astype(np.int32)


def _load_tfds(name: str, data_dir: Path) -> Dataset | None:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    try:
        splits = tfds.load(
            _TFDS_NAMES[name],
            split=["train", "test"],
            data_dir=str(data_dir),
            download=False,
            batch_size=-1,
        )
        (train, test) = tfds.as_numpy(splits)
    except Exception as err:  # tfds raises many types for absent/prepared-elsewhere data
        raise DataError(
            f"dataset {name!r}: no IDX files in {data_dir} and tensorflow_datasets could not "
            f"load it from there without downloading ({type(err).__name__}: {err})"
        ) from err
    return validate_dataset(
        Dataset(
            name=name,
            train=_images(train["image"]),
            test=_images(test["image"]),
            train_labels=_labels(train.get("label")),
            test_labels=_labels(test.get("label")),
            num_levels=256,
            description=LOCAL_DATASETS[name] + f" (tfds, {data_dir})",
        )
    )


def load_local(name: str, data_dir: str | os.PathLike) -> Dataset:
    """Load ``"mnist"`` or ``"fashion-mnist"`` from local files in ``data_dir``.

    Looks in ``data_dir`` and its sub-folders (e.g. ``data_dir/mnist``,
    ``data_dir/MNIST/raw``) for the four IDX files named in :data:`IDX_FILES`, each plain
    or ``.gz``; falls back to tfds (``download=False``) when importable.

    Returns:
      :class:`Dataset` with float32 ``[N, 28, 28, 1]`` raw levels 0..255 (``num_levels``
      256) and int32 labels; the standard 60 000 / 10 000 split.

    Raises:
      UnknownNameError: ``name`` is not a local dataset.
      DataError: files missing (the message lists the directories searched and the file
        names expected) or corrupted.
    """
    if name not in LOCAL_DATASETS:
        raise unknown_name("local dataset", name, LOCAL_DATASETS)
    root = Path(data_dir).expanduser()
    searched = [root] + [root / sub for sub in _SUBDIRS[name]]
    for directory in searched:
        found = {key: _find(directory, stem) for key, stem in IDX_FILES.items()}
        if all(found.values()):
            arrays = {key: read_idx(path) for key, path in found.items()}
            return validate_dataset(
                Dataset(
                    name=name,
                    train=_images(arrays["train_images"]),
                    test=_images(arrays["test_images"]),
                    train_labels=_labels(arrays["train_labels"]),
                    test_labels=_labels(arrays["test_labels"]),
                    num_levels=256,
                    description=LOCAL_DATASETS[name] + f" ({directory})",
                )
            )
    from_tfds = _load_tfds(name, root)
    if from_tfds is not None:
        return from_tfds
    raise DataError(
        f"dataset {name!r}: IDX files not found; searched "
        f"{', '.join(str(d) for d in searched)} for {', '.join(IDX_FILES.values())} "
        "(each plain or .gz). Nothing is downloaded: copy the files there, or point "
        "data_dir / GENJAX_DATA_DIR to the folder that holds them."
    )


def load_npz(path: str | os.PathLike) -> Dataset:
    """Load a dataset from a ``.npz`` file holding ``x_train``, ``x_test`` (+ ``y_*``).

    * Images ``[N, H, W]`` or ``[N, H, W, C]`` (uint8, or floats holding integers
      0..255) become float32 channels-last raw levels with ``num_levels = 256``.
    * Any uint8 array is treated as 256-level data as well.
    * Other float arrays (e.g. ``[N, D]`` points) are continuous (``num_levels=None``).
    * An optional scalar ``num_levels`` entry overrides the guess (``0`` = continuous).

    The dataset's name is the path as given. Labels, when present, become int32.

    Raises:
      DataError: missing file, missing keys, a non-numeric dtype, NaN/inf, values off the level
        grid.
    """
    path_str = os.fspath(path)
    file = Path(path_str).expanduser()
    if not file.is_file():
        raise DataError(f"npz file {file} not found (nothing is downloaded)")
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: np.asarray(npz[key]) for key in npz.files}
    except Exception as err:
        raise DataError(f"cannot read npz file {file}: {type(err).__name__}: {err}") from err
    missing = [k for k in ("x_train", "x_test") if k not in arrays]
    if missing:
        raise DataError(
            f"npz file {file} lacks {', '.join(missing)}; it holds {sorted(arrays)} and must "
            "hold x_train, x_test (and optionally y_train, y_test, num_levels)"
        )
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    for key, array in (("x_train", x_train), ("x_test", x_test)):
        if not (
            np.issubdtype(array.dtype, np.integer)
            or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_
        ):
            raise DataError(
                f"{key} in {file} has dtype {array.dtype}; expected real numbers "
                "(uint8 levels 0..255 for images, or floats)"
            )
    if "num_levels" in arrays:
        num_levels: int | None = int(arrays["num_levels"]) or None
    elif x_train.dtype == np.uint8 or x_train.ndim in (3, 4):
        num_levels = 256
    else:
        num_levels = None
    if num_levels is not None and x_train.ndim == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]
    kind = f"L={num_levels}" if num_levels else "continuous"
    return validate_dataset(
        Dataset(
            name=path_str,
            train=np.asarray(x_train, np.float32),
            test=np.asarray(x_test, np.float32),
            train_labels=_labels(arrays.get("y_train")),
            test_labels=_labels(arrays.get("y_test")),
            num_levels=num_levels,
            description=f"local npz {file}: {x_train.shape[0]}/{x_test.shape[0]} examples, "
            f"event {tuple(x_train.shape[1:])}, {kind}",
        )
    )
