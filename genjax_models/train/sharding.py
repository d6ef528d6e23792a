"""Data parallelism with ``jax.jit`` over a one-axis ``("data",)`` device mesh.

The batch is split along its first axis over the mesh (``P("data")``); parameters,
optimiser state and the in-memory dataset are replicated (``P()``). Plain ``jax.jit``
then partitions the computation and inserts the gradient all-reduce itself, so the same
code runs on 1 CPU, N host devices, a GPU or a TPU slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax_models.errors import ConfigError

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Return a mesh with one ``"data"`` axis over ``devices`` (default: every device of every
    process, ``jax.devices()``: the local ones in a single-process run).

    The mesh is built with the classic constructor, whose axes are ``Auto`` on every
    supported jax version (``jax.make_mesh`` defaults differ between 0.7 and 0.10).
    """
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy of an array on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding that splits an array's leading (batch) axis over the ``"data"`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_divisible(batch_size: int, mesh: Mesh) -> None:
    """Raise a clear error when the global batch does not split evenly over the devices."""
    num = mesh.devices.size
    if batch_size % num:
        raise ConfigError(
            f"batch size {batch_size} does not split evenly over {num} devices; "
            f"use a multiple of {num} (e.g. {num * max(1, round(batch_size / num))})"
        )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every array of ``tree`` on all devices of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))
