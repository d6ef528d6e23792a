"""The streaming input path (``train.input=stream``): host-gathered batches, same order, resume."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from genjax_models.data.batch import Batch
from genjax_models.data.batching import batch_indices
from genjax_models.errors import UnknownNameError
from genjax_models.experiment import train_and_evaluate
from genjax_models.train import TrainConfig, data_mesh
from genjax_models.train.streaming import HostBatches, Prefetcher
from genjax_models.workdir import read_metrics
from tests.train.helpers import model_metrics, tiny_config


def _host_set(tmp_path, num=37):
    """A memory-mapped ``.npy`` training set whose first entry is the example's index."""
    x = np.zeros((num, 3, 2), np.float32)
    x[:, 0, 0] = np.arange(num)
    np.save(tmp_path / "x.npy", x)
    labels = (np.arange(num) % 5).astype(np.int32)
    return Batch(np.load(tmp_path / "x.npy", mmap_mode="r"), labels)


def test_host_batches_are_the_in_memory_path_batches_across_epochs(tmp_path):
    data = _host_set(tmp_path)
    key = jax.random.key(7)
    source = HostBatches(data, key, batch_size=8, mesh=data_mesh())
    # 37 // 8 = 4 steps per epoch: steps 2..12 span three epochs
    idx = source.indices(2, 11)
    expected = np.stack([np.asarray(batch_indices(key, t, 37, 8)) for t in range(2, 13)])
    np.testing.assert_array_equal(idx, expected)
    batches = source.gather(2, 11)
    assert batches.x.shape == (11, 8, 3, 2) and batches.y.shape == (11, 8)
    np.testing.assert_array_equal(np.asarray(batches.x)[..., 0, 0], expected)
    np.testing.assert_array_equal(np.asarray(batches.y), expected % 5)
    assert batches.x.sharding.spec[1] == "data"  # split over the devices along the batch


def test_prefetcher_serves_the_announced_calls_in_order(tmp_path):
    source = HostBatches(_host_set(tmp_path), jax.random.key(0), batch_size=4, mesh=data_mesh())
    calls = [(0, 3), (3, 3), (6, 1)]
    prefetcher = Prefetcher(source, calls, depth=2)
    try:
        for step, num in calls:
            batch = prefetcher.next(step, num)
            np.testing.assert_array_equal(
                np.asarray(batch.x)[..., 0, 0], source.indices(step, num)
            )
    finally:
        prefetcher.close()
    prefetcher = Prefetcher(source, calls, depth=1)
    with pytest.raises(RuntimeError, match="out of order"):
        prefetcher.next(3, 3)
    prefetcher.close()


def test_streamed_run_equals_the_in_memory_run_and_resumes_exactly(tmp_path):
    device = train_and_evaluate(tiny_config(20), str(tmp_path / "device"), progress=False)
    streamed_dir = str(tmp_path / "stream")
    for steps in (10, 20):  # stop at a checkpoint, then continue in the same workdir
        config = tiny_config(steps)
        config["train"]["input"] = "stream"
        result = train_and_evaluate(config, streamed_dir, progress=False)
    assert result.resumed_from == 10
    assert model_metrics(read_metrics(streamed_dir)) == model_metrics(device.history)


def test_unknown_input_mode_lists_the_choices():
    with pytest.raises(UnknownNameError, match="device, stream"):
        TrainConfig(input="disk")
