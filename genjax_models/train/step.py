"""The jitted, data-parallel training step, K optimiser steps per call via ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from genjax_models.data.batch import Batch, as_batch
from genjax_models.data.batching import (
    batch_indices,
    batch_indices_from_orders,
    epoch_orders,
    epochs_spanned,
)
from genjax_models.model import GenerativeModel
from genjax_models.train.mixed_precision import compute_dtype as resolve_compute_dtype
from genjax_models.train.mixed_precision import with_compute_dtype
from genjax_models.train.sharding import batch_sharded, replicated
from genjax_models.train.state import TrainState

StepFn = Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict[str, jax.Array]]]
UpdateFn = Callable[..., tuple[TrainState, dict[str, jax.Array]]]
BatchUpdateFn = Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict[str, jax.Array]]]


def split_run_key(run_key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Split a run's key into (batching key, per-step base key); both fixed for the run."""
    data_key, step_base = jax.random.split(run_key)
    return data_key, step_base


def make_batch_update(
    model: GenerativeModel,
    optimizer: optax.GradientTransformation,
    *,
    train_transform: Callable[[jax.Array, jax.Array], jax.Array] = lambda x, key: x,
    ema_decay: float = 0.0,
    mesh: Mesh | None = None,
    compute_dtype: str = "float32",
) -> BatchUpdateFn:
    """One pure optimiser step on a given batch: ``(state, raw, run_key) -> (state, metrics)``.

    ``raw = Batch(x [B, *event], y [B] or None)`` is the step's batch as stored (before the
    per-step transform). The step's keys are ``k_t = fold_in(step_base, t)`` with ``t =
    state.step``, split into the transform key (``train_transform(x, k_t')``: dynamic
    binarisation, dequantisation) and the loss key, so a run resumed at step t draws exactly
    the numbers an uninterrupted run would. With a mesh the batch is constrained to be split
    over the ``"data"`` axis, so ``jit`` runs the loss data-parallel and all-reduces the
    gradients. A model with ``loss_uses_step`` gets ``step=state.step`` (the number of
    optimiser steps taken before this one), so schedules such as KL warm-up resume exactly
    too. A model with ``has_post_update`` gets its ``post_update(params, batch, key,
    step=...)`` applied after the optimiser's update.

    ``compute_dtype="bfloat16"`` differentiates the loss with its matmuls and convolutions in
    bf16 (:func:`~genjax_models.train.mixed_precision.with_compute_dtype`); params, gradients
    and optimiser state stay float32.
    """
    loss_fn = with_compute_dtype(model.loss, resolve_compute_dtype(compute_dtype))

    def update_on(state: TrainState, raw: Batch, run_key: jax.Array):
        step_base = split_run_key(run_key)[1]
        step_key = jax.random.fold_in(step_base, state.step)
        transform_key, loss_key = jax.random.split(step_key)
        batch = Batch(train_transform(raw.x, transform_key), raw.y)
        if mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharded(mesh))
        schedule = {"step": state.step} if getattr(model, "loss_uses_step", False) else {}
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, loss_key, **schedule
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if getattr(model, "has_post_update", False):  # non-gradient updates (EMA codebooks)
            post_key = jax.random.fold_in(step_key, 2)
            params = model.post_update(params, batch, post_key, step=state.step)
        ema = state.ema_params
        if ema is not None:
            ema = optax.incremental_update(params, ema, step_size=1.0 - ema_decay)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree_utils.tree_norm(grads)}
        new_state = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema
        )
        return new_state, metrics

    return update_on


def make_update(
    model: GenerativeModel,
    optimizer: optax.GradientTransformation,
    *,
    batch_size: int,
    train_transform: Callable[[jax.Array, jax.Array], jax.Array] = lambda x, key: x,
    ema_decay: float = 0.0,
    mesh: Mesh | None = None,
    compute_dtype: str = "float32",
) -> UpdateFn:
    """Return one pure optimiser step ``(state, data, run_key, orders=None) -> (state, metrics)``.

    ``data`` is the whole training set, a :class:`~genjax_models.data.batch.Batch` of arrays
    ``x [N, *event]`` and labels ``y [N]`` (or ``None``), or a plain array ``x``. The batch for
    step ``t`` is ``Batch(x[idx], y[idx])`` with ``idx = batch_indices(data_key, t)``, then
    the step of :func:`make_batch_update` (same keyword arguments) runs on it.

    ``orders=(first_epoch, epoch_orders)`` are the data orders that :func:`make_train_step`
    precomputes once per call (the same indices, without a permutation sort every step).
    """
    update_on = make_batch_update(
        model,
        optimizer,
        train_transform=train_transform,
        ema_decay=ema_decay,
        mesh=mesh,
        compute_dtype=compute_dtype,
    )

    def update(state: TrainState, data: Batch | jax.Array, run_key: jax.Array, orders=None):
        data = as_batch(data)
        data_key = split_run_key(run_key)[0]
        num_examples = data.x.shape[0]
        if orders is None:
            idx = batch_indices(data_key, state.step, num_examples, batch_size)
        else:
            idx = batch_indices_from_orders(orders[1], orders[0], state.step, batch_size)
        labels = None if data.y is None else data.y[idx]
        return update_on(state, Batch(data.x[idx], labels), run_key)

    return update


def make_train_step(
    update: UpdateFn,
    num_steps: int,
    mesh: Mesh | None = None,
    *,
    batch_size: int | None = None,
) -> StepFn:
    """Compile ``num_steps`` optimiser steps into one jitted call with donated state.

    Args:
      update: a step from :func:`make_update`.
      num_steps: K, the steps per call (a ``lax.scan``: compile time does not grow with K).
      mesh: the device mesh (params replicated, outputs replicated).
      batch_size: the update's batch size; when given, the data orders of the epochs the K
        steps span are computed once per call (:func:`epoch_orders`) instead of every step.

    Returns:
      ``train_step(state, data, run_key) -> (state, metrics)`` with every metric stacked over
      the steps, shape ``[num_steps]``.
    """

    def many(state: TrainState, data: Batch | jax.Array, run_key: jax.Array):
        orders = None
        if batch_size is not None:  # the data orders of the epochs these steps span, once
            num_examples = as_batch(data).x.shape[0]
            first_epoch = state.step // (num_examples // batch_size)
            spanned = epochs_spanned(num_steps, num_examples, batch_size)
            data_key = split_run_key(run_key)[0]
            orders = (first_epoch, epoch_orders(data_key, first_epoch, spanned, num_examples))

        def body(carry: TrainState, _: Any):
            return update(carry, data, run_key, orders)

        return jax.lax.scan(body, state, None, length=num_steps)

    if mesh is None:
        return jax.jit(many, donate_argnums=0)
    rep = replicated(mesh)
    return jax.jit(many, donate_argnums=0, out_shardings=(rep, rep))


def make_fed_train_step(update_on: BatchUpdateFn, mesh: Mesh | None = None) -> StepFn:
    """Compile a scan of :func:`make_batch_update` over host-fed batches, with donated state.

    Returns ``train_step(state, batches, run_key) -> (state, metrics)``: ``batches`` is a
    ``Batch`` of ``x [K, B, *event]`` and ``y [K, B]`` (or ``None``), one row per optimiser
    step (the streaming input path, :mod:`genjax_models.train.streaming`); every metric is
    stacked over the K steps. One compile per K, as :func:`make_train_step`.
    """

    def many(state: TrainState, batches: Batch, run_key: jax.Array):
        return jax.lax.scan(lambda carry, raw: update_on(carry, raw, run_key), state, batches)

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
