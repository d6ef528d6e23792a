"""The jitted, data-parallel training step, K optimiser steps per call via ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from genjax_models.data.batching import (
    batch_indices,
    batch_indices_from_orders,
    epoch_orders,
    epochs_spanned,
)
from genjax_models.model import GenerativeModel
from genjax_models.train.sharding import batch_sharded, replicated
from genjax_models.train.state import TrainState

StepFn = Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict[str, jax.Array]]]


def step_keys(seed_key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Split a run's key into (batching key, per-step base key); both fixed for the run."""
    data_key, step_base = jax.random.split(seed_key)
    return data_key, step_base


def make_update(
    model: GenerativeModel,
    optimizer: optax.GradientTransformation,
    *,
    batch_size: int,
    train_transform: Callable[[jax.Array, jax.Array], jax.Array] = lambda x, key: x,
    ema_decay: float = 0.0,
    mesh: Mesh | None = None,
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Return one pure optimiser step ``(state, data, seed_key) -> (state, metrics)``.

    The batch for step ``t`` is ``data[batch_indices(data_key, t)]`` passed through
    ``train_transform(batch, k_t)`` and the loss key is ``k_t`` too, with
    ``k_t = fold_in(step_base, t)``: a run resumed at step t draws exactly the numbers an
    uninterrupted run would. With a mesh the batch is constrained to be split over the
    ``"data"`` axis, so ``jit`` runs the loss data-parallel and all-reduces the gradients.

    The returned function also takes ``orders=(first_epoch, epoch_orders)``, the data
    orders precomputed by :func:`make_train_step` once per call (the same indices, without
    a permutation sort every step), and carries ``update.batch_size``.
    """

    def update(state: TrainState, data: jax.Array, seed_key: jax.Array, orders=None):
        data_key, step_base = step_keys(seed_key)
        if orders is None:
            idx = batch_indices(data_key, state.step, data.shape[0], batch_size)
        else:
            idx = batch_indices_from_orders(orders[1], orders[0], state.step, batch_size)
        step_key = jax.random.fold_in(step_base, state.step)
        transform_key, loss_key = jax.random.split(step_key)
        batch = train_transform(data[idx], transform_key)
        if mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharded(mesh))
        (loss, metrics), grads = jax.value_and_grad(model.loss, has_aux=True)(
            state.params, batch, loss_key
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = state.ema_params
        if ema is not None:
            ema = optax.incremental_update(params, ema, step_size=1.0 - ema_decay)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree_utils.tree_norm(grads)}
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema)
        return new_state, metrics

    update.batch_size = batch_size
    return update


def make_train_step(
    update: Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict[str, jax.Array]]],
    num_steps: int,
    mesh: Mesh | None = None,
) -> StepFn:
    """Compile ``num_steps`` optimiser steps into one jitted call with donated state.

    Returns ``train_step(state, data, seed_key) -> (state, metrics)`` where every metric is
    stacked over the steps, shape ``[num_steps]``. The loop is a ``lax.scan``, so compile
    time does not grow with ``num_steps``.
    """

    batch_size = getattr(update, "batch_size", None)

    def many(state: TrainState, data: jax.Array, seed_key: jax.Array):
        orders = None
        if batch_size is not None:  # the data orders of the epochs these steps span, once
            num_examples = data.shape[0]
            first_epoch = state.step // (num_examples // batch_size)
            spanned = epochs_spanned(num_steps, num_examples, batch_size)
            orders = (first_epoch, epoch_orders(step_keys(seed_key)[0], first_epoch, spanned, num_examples))

        def body(carry: TrainState, _: Any):
            return update(carry, data, seed_key, orders)

        return jax.lax.scan(body, state, None, length=num_steps)

    if mesh is None:
        return jax.jit(many, donate_argnums=0)
    rep = replicated(mesh)
    return jax.jit(many, donate_argnums=0, out_shardings=(rep, rep))


def first_nonfinite(losses: jax.Array) -> int | None:
    """Index of the first NaN/inf in a host array of losses, or ``None`` if all finite."""
    bad = ~jnp.isfinite(jnp.asarray(losses))
    if not bool(bad.any()):
        return None
    return int(jnp.argmax(bad))
