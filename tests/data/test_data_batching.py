"""batch_indices / get_batch / iterate_batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import batch_indices, get_batch, iterate_batches
from genjax_models.errors import ConfigError


def test_deterministic_and_epoch_covers_distinct_examples():
    key = jax.random.key(7)
    n, b = 103, 10  # 10 steps per epoch, 3 examples dropped each epoch
    a = np.asarray(batch_indices(key, 4, n, b))
    np.testing.assert_array_equal(a, np.asarray(batch_indices(key, 4, n, b)))
    assert a.dtype == np.int32 and a.shape == (b,)
    epoch0 = np.concatenate([np.asarray(batch_indices(key, s, n, b)) for s in range(10)])
    epoch1 = np.concatenate([np.asarray(batch_indices(key, s, n, b)) for s in range(10, 20)])
    for epoch in (epoch0, epoch1):
        assert len(np.unique(epoch)) == 100 and epoch.min() >= 0 and epoch.max() < n
    assert not np.array_equal(epoch0, epoch1)  # reshuffled each epoch
    other = np.asarray(batch_indices(jax.random.key(8), 4, n, b))
    assert not np.array_equal(a, other)


def test_jit_with_traced_step_matches_eager():
    key = jax.random.key(0)
    data = jnp.arange(50.0)[:, None] * jnp.ones((1, 3))
    f = jax.jit(lambda step: get_batch(data, key, step, 8))
    for s in (0, 5, 6, 13):
        eager = np.asarray(get_batch(np.asarray(data), key, s, 8))
        np.testing.assert_array_equal(np.asarray(f(jnp.int32(s))), eager)
        np.testing.assert_array_equal(eager[:, 0], np.asarray(batch_indices(key, s, 50, 8)))

    def body(carry, step):
        return carry, batch_indices(key, step, 50, 8)

    _, idx = jax.lax.scan(body, None, jnp.arange(6))
    assert len(np.unique(np.asarray(idx))) == 48


@pytest.mark.parametrize("bad", [0, -1, 51])
def test_bad_batch_size(bad):
    with pytest.raises(ConfigError, match=f"batch_size={bad}.*50"):
        batch_indices(jax.random.key(0), 0, 50, bad)


def test_iterate_batches_chunks_and_padding():
    x = np.arange(23)[:, None].astype(np.float32)
    chunks = list(iterate_batches(x, 10))
    assert [len(c) for c in chunks] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate(chunks), x)
    padded = list(iterate_batches(x, 10, pad=True))
    assert all(c.shape == (10, 1) for c, _ in padded)
    assert [int(v.sum()) for _, v in padded] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate([c[v] for c, v in padded]), x)
    with pytest.raises(ConfigError):
        list(iterate_batches(x, 0))


@pytest.mark.parametrize("num_examples,batch_size,num_steps", [(100, 7, 1), (100, 7, 20), (50, 50, 5), (1000, 128, 3), (64, 3, 40)])
def test_precomputed_epoch_orders_give_identical_indices(num_examples, batch_size, num_steps):
    from genjax_models.data import batch_indices_from_orders, epoch_orders, epochs_spanned

    key = jax.random.key(11)
    steps_per_epoch = num_examples // batch_size
    for start in (0, 3, steps_per_epoch - 1, 5 * steps_per_epoch + 2):
        steps = range(start, start + num_steps)
        touched = {s // steps_per_epoch for s in steps}
        spanned = epochs_spanned(num_steps, num_examples, batch_size)
        assert len(touched) <= spanned <= len(touched) + 1
        first = start // steps_per_epoch
        orders = epoch_orders(key, first, spanned, num_examples)
        for step in steps:
            want = batch_indices(key, step, num_examples, batch_size)
            got = batch_indices_from_orders(orders, first, step, batch_size)
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
