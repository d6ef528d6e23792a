"""batch_indices and the per-call epoch orders."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import batch_indices
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
    f = jax.jit(lambda step: data[batch_indices(key, step, 50, 8)])
    for s in (0, 5, 6, 13):
        eager = np.asarray(data)[np.asarray(batch_indices(key, s, 50, 8))]
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
