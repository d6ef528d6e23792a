"""Deterministic, jittable minibatch selection and evaluation chunking.

Training batches are a pure function of ``(key, step)``: with
``S = num_examples // batch_size`` steps per epoch (the remainder is dropped each epoch),

    epoch = step // S
    perm  = jax.random.permutation(fold_in(key, epoch), num_examples)
    idx   = perm[(step % S) * batch_size : (step % S + 1) * batch_size]

so a resumed run sees exactly the batches an uninterrupted one would, every epoch visits
``S * batch_size`` distinct examples, and ``step`` may be a traced value inside ``jit`` or
``lax.scan``. :func:`batch_indices` recomputes the epoch permutation (an ``O(N log N)``
sort) on every call; a training loop that runs K steps per call instead computes the few
epochs those steps span once with :func:`epoch_orders` and slices them with
:func:`batch_indices_from_orders`, which gives bit-identical indices.
"""

from __future__ import annotations

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


def epochs_spanned(num_steps: int, num_examples: int, batch_size: int) -> int:
    """Upper bound on the number of epochs that ``num_steps`` consecutive steps touch."""
    _check_sizes(num_examples, batch_size)
    steps_per_epoch = num_examples // batch_size
    # steps s .. s+K-1 lie in epochs floor(s/S) .. floor((s+K-1)/S): at most this many.
    return (num_steps + steps_per_epoch - 2) // steps_per_epoch + 1


def epoch_orders(
    key: jax.Array, first_epoch: int | jax.Array, num_epochs: int, num_examples: int
) -> jax.Array:
    """Permutations of epochs ``first_epoch .. first_epoch + num_epochs - 1``: int32 ``[E, N]``.

    Row ``e`` equals ``jax.random.permutation(fold_in(key, first_epoch + e), N)``, the
    order :func:`batch_indices` uses for that epoch.
    """
    epochs = jnp.asarray(first_epoch, dtype=jnp.int32) + jnp.arange(num_epochs, dtype=jnp.int32)
    return jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), num_examples))(
        epochs
    ).astype(jnp.int32)


def batch_indices_from_orders(
    orders: jax.Array, first_epoch: int | jax.Array, step: int | jax.Array, batch_size: int
) -> jax.Array:
    """Indices of batch ``step`` sliced from precomputed :func:`epoch_orders` (no sort).

    ``step`` must fall in the epochs ``orders`` covers; the result equals
    ``batch_indices(key, step, N, batch_size)``.
    """
    num_examples = int(orders.shape[1])
    _check_sizes(num_examples, batch_size)
    steps_per_epoch = num_examples // batch_size
    step = jnp.asarray(step, dtype=jnp.int32)
    row = step // steps_per_epoch - jnp.asarray(first_epoch, dtype=jnp.int32)
    start = (step % steps_per_epoch) * batch_size
    return jax.lax.dynamic_slice(orders, (row, start), (1, batch_size))[0]
