"""Deterministic, jittable minibatch selection and evaluation chunking.

Training batches are a pure function of ``(key, step)``: with
``S = num_examples // batch_size`` steps per epoch (the remainder is dropped each epoch),

    epoch = step // S
    perm  = jax.random.permutation(fold_in(key, epoch), num_examples)
    idx   = perm[(step % S) * batch_size : (step % S + 1) * batch_size]

so a resumed run sees exactly the batches an uninterrupted one would, every epoch visits
``S * batch_size`` distinct examples, and ``step`` may be a traced value inside ``jit`` or
``lax.scan``. Each call recomputes the epoch permutation, an ``O(N log N)`` sort that is
cheap next to a model step for N up to a few hundred thousand.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ConfigError


def _check_sizes(num_examples: int, batch_size: int) -> None:
    if not isinstance(batch_size, int | np.integer) or not isinstance(
        num_examples, int | np.integer
    ):
        raise ConfigError(
            f"batch_size and num_examples must be Python ints (static), got "
            f"batch_size={batch_size!r}, num_examples={num_examples!r}"
        )
    if batch_size < 1 or batch_size > num_examples:
        raise ConfigError(
            f"batch_size={batch_size} must be between 1 and the number of examples ({num_examples})"
        )


def batch_indices(
    key: jax.Array, step: int | jax.Array, num_examples: int, batch_size: int
) -> jax.Array:
    """Return the example indices of training batch ``step``: int32 ``[batch_size]``.

    Args:
      key: data-order key (typed ``jax.random.key`` or raw uint32 key).
      step: global step, a Python int or a traced int scalar.
      num_examples: N, static.
      batch_size: B, static, ``1 <= B <= N``.

    Raises:
      ConfigError: ``batch_size`` outside ``1..num_examples``.
    """
    _check_sizes(num_examples, batch_size)
    steps_per_epoch = num_examples // batch_size
    step = jnp.asarray(step, dtype=jnp.int32)
    epoch = step // steps_per_epoch
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
    start = (step % steps_per_epoch) * batch_size
    return jax.lax.dynamic_slice(perm, (start,), (batch_size,)).astype(jnp.int32)


def get_batch(
    data: np.ndarray | jax.Array, key: jax.Array, step: int | jax.Array, batch_size: int
) -> jax.Array:
    """Return ``data[batch_indices(key, step, len(data), batch_size)]``: ``[B, *event]``."""
    data = jnp.asarray(data)
    idx = batch_indices(key, step, int(data.shape[0]), batch_size)
    return jnp.take(data, idx, axis=0)


def iterate_batches(
    array: np.ndarray, batch_size: int, pad: bool = False
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield consecutive chunks of ``array`` for evaluation, in order, covering it once.

    With ``pad=False`` (default) yields numpy arrays ``array[i : i + batch_size]``; the last
    one may be smaller (a jitted function then compiles at most twice). With ``pad=True``
    yields ``(batch, valid)`` pairs of fixed shape ``[batch_size, *event]`` and bool
    ``[batch_size]``: the last chunk is padded by repeating its final example, and
    ``valid`` marks the real rows, so ``sum(metric * valid)`` over chunks is exact.

    Raises:
      ConfigError: ``batch_size < 1``.
    """
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    array = np.asarray(array)
    n = array.shape[0]
    for start in range(0, n, batch_size):
        chunk = array[start : start + batch_size]
        if not pad:
            yield chunk
            continue
        valid = np.ones(batch_size, dtype=bool)
        short = batch_size - chunk.shape[0]
        if short:
            valid[-short:] = False
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)], axis=0)
        yield chunk, valid
