"""The streaming input path: the training set stays in host memory, batches go to the devices.

The default (``train.input=device``) replicates the whole training set on every device and
gathers each batch inside the jitted step: fastest for small data (digits, mnist5k, the
toys), but it costs N x (example size) of memory on *every* device. With
``train.input=stream`` the set stays where it is on the host (a numpy array, or a
``np.memmap`` of an ``.npy`` file: anything indexable by an int array) and each jitted call of
K optimiser steps receives its batches ``x [K, B, *event]`` (and labels ``[K, B]``), already
split over the mesh's ``"data"`` axis:

    idx[k] = batch_indices(data_key, s + k)     (the in-memory path's indices, bit for bit)
    x[k]   = train[idx[k]]                      (gathered on the host)

so the order is a function of (seed, step) alone, a resumed run continues exactly, and a run
streams the same batches as the in-memory path with the same seed (tested). Each process
gathers only the rows of the global batch that its own devices hold
(``jax.make_array_from_process_local_data``), so with several processes every host reads its
slice. A background thread prepares the next ``train.prefetch`` calls' batches while the
devices run the current one. The per-step transform (dynamic binarisation, dequantisation)
still runs on the devices, with the same keys.
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax_models.data.batch import Batch
from genjax_models.data.batching import epoch_orders, epochs_spanned
from genjax_models.train.sharding import DATA_AXIS


class HostBatches:
    """The batches of consecutive optimiser steps, gathered from a host-resident training set.

    Args:
      data: ``Batch(x [N, *event], y [N] or None)`` of host arrays (numpy, memmap).
      data_key: the run's data-order key (``split_run_key(run_key)[0]``).
      batch_size: B, the global batch.
      mesh: the device mesh; batches are split over its ``"data"`` axis.
    """

    def __init__(self, data: Batch, data_key: jax.Array, batch_size: int, mesh: Mesh):
        self.data = data
        self.data_key = data_key
        self.batch_size = int(batch_size)
        self.mesh = mesh
        self.num_examples = int(data.x.shape[0])
        self._orders: dict[int, Any] = {}  # one jitted epoch_orders per number of epochs

    def indices(self, step: int, num_steps: int) -> np.ndarray:
        """Example indices of steps ``step .. step + num_steps - 1``: int ``[K, B]``, equal to
        :func:`~genjax_models.data.batching.batch_indices` of each step."""
        per_epoch = self.num_examples // self.batch_size
        first_epoch = step // per_epoch
        spanned = epochs_spanned(num_steps, self.num_examples, self.batch_size)
        if spanned not in self._orders:
            self._orders[spanned] = jax.jit(
                lambda key, first: epoch_orders(key, first, spanned, self.num_examples)
            )
        orders = np.asarray(jax.device_get(self._orders[spanned](self.data_key, first_epoch)))
        steps = np.arange(step, step + num_steps)
        rows = steps // per_epoch - first_epoch
        starts = (steps % per_epoch) * self.batch_size
        return np.stack(
            [orders[r, s : s + self.batch_size] for r, s in zip(rows, starts, strict=True)]
        )

    def sharding(self, ndim: int) -> NamedSharding:
        """``[K, B, ...]`` split over the data axis along B."""
        return NamedSharding(self.mesh, PartitionSpec(None, DATA_AXIS, *([None] * (ndim - 2))))

    def local_rows(self, num_steps: int) -> slice:
        """The columns of the ``[K, B]`` index array whose examples this process's devices hold."""
        index_map = self.sharding(2).addressable_devices_indices_map((num_steps, self.batch_size))
        starts = [index[1].start or 0 for index in index_map.values()]
        stops = [self.batch_size if index[1].stop is None else index[1].stop
                 for index in index_map.values()]
        return slice(min(starts), max(stops))

    def gather(self, step: int, num_steps: int) -> Batch:
        """The batches of ``num_steps`` steps from ``step``, as global arrays on the mesh."""
        idx = self.indices(step, num_steps)[:, self.local_rows(num_steps)]
        return Batch(*(self._to_devices(a, idx, num_steps) for a in (self.data.x, self.data.y)))

    def _to_devices(self, array: Any, idx: np.ndarray, num_steps: int) -> jax.Array | None:
        if array is None:
            return None
        # sorted reads are kinder to a memory map; the result is put back in batch order
        flat = idx.reshape(-1)
        order = np.argsort(flat, kind="stable")
        rows = np.empty((flat.size, *array.shape[1:]), dtype=array.dtype)
        rows[order] = np.asarray(array[flat[order]])
        local = rows.reshape(*idx.shape, *array.shape[1:])
        global_shape = (num_steps, self.batch_size, *array.shape[1:])
        return jax.make_array_from_process_local_data(
            self.sharding(local.ndim), local, global_shape
        )


class Prefetcher:
    """Gathers the batches of the upcoming calls in a background thread.

    Args:
      source: a :class:`HostBatches`.
      calls: the ``(step, num_steps)`` of every upcoming jitted call, in order.
      depth: how many calls to prepare ahead (>= 1).
    """

    def __init__(self, source: HostBatches, calls: Iterable[tuple[int, int]], depth: int):
        self._source = source
        self._calls: Iterator[tuple[int, int]] = iter(calls)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._pending: collections.deque = collections.deque()
        for _ in range(max(1, int(depth))):
            self._submit()

    def _submit(self) -> None:
        call = next(self._calls, None)
        if call is not None:
            self._pending.append((call, self._pool.submit(self._source.gather, *call)))

    def next(self, step: int, num_steps: int) -> Batch:
        """The batches of the call ``(step, num_steps)``: must be the next one announced."""
        (expected, future) = self._pending.popleft()
        if expected != (step, num_steps):
            raise RuntimeError(f"prefetcher out of order: expected call {expected}, got "
                               f"{(step, num_steps)}")
        self._submit()
        return future.result()

    def close(self) -> None:
        for _, future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
