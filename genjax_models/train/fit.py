"""One generic training loop for every model that implements the protocol."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from genjax_models.data.batch import Batch
from genjax_models.data.dataset import PreparedData
from genjax_models.errors import ConfigError, NonFiniteLossError
from genjax_models.model import GenerativeModel
from genjax_models.train.checkpoint import Checkpointer
from genjax_models.train.config import TrainConfig, learning_rate_schedule, make_optimizer
from genjax_models.train.distributed import is_writer
from genjax_models.train.sharding import check_batch_divisible, data_mesh, replicate
from genjax_models.train.state import TrainState
from genjax_models.train.step import (
    first_nonfinite,
    make_batch_update,
    make_fed_train_step,
    make_train_step,
    make_update,
    split_run_key,
)
from genjax_models.train.streaming import HostBatches, Prefetcher
from genjax_models.workdir import append_metrics, read_metrics, truncate_metrics


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
      state: the final :class:`TrainState` (replicated on the mesh).
      history: the logged metric records, ``[{"step": ..., "loss": ..., ...}, ...]``,
        including those of earlier runs in the same workdir.
      resumed_from: the checkpoint step this run continued from, or ``None``.
    """

    state: TrainState
    history: list[dict[str, Any]]
    resumed_from: int | None


def training_data(model: GenerativeModel, data: PreparedData) -> Batch:
    """Return the training set as the model takes it: ``Batch(x, y)``, labels where used.

    Raises:
      ConfigError: the model needs labels and the data has none, or the data hide labels
        (``data.num_labelled``) from a model that is not semi-supervised.
    """
    if model.labels == "needs" and not data.has_labels:
        raise ConfigError(
            f"model {model.name!r} needs class labels, but dataset {data.dataset.name!r} has "
            "none; use a labelled dataset (digits, mnist5k, mnist, an .npz with y_train/y_test)"
        )
    labels = data.train_labels if model.labels != "ignores" and data.has_labels else None
    if labels is not None and not getattr(model, "semi_supervised", False):
        if np.any(np.asarray(labels) < 0):
            raise ConfigError(
                f"the training labels are partly hidden (data.num_labelled), but model "
                f"{model.name!r} is not semi-supervised; train m2 on such data, or drop "
                "data.num_labelled"
            )
    return Batch(data.train, labels)


def init_state(model: GenerativeModel, data: PreparedData, config: TrainConfig) -> TrainState:
    """Initialise params and optimiser state from the run's seed (deterministic)."""
    init_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    train = training_data(model, data)
    x = data.train_transform(jax.numpy.asarray(train.x[: config.batch_size]), init_key)
    y = None if train.y is None else jax.numpy.asarray(train.y[: config.batch_size])
    params = model.init(init_key, Batch(x, y))
    return TrainState.create(params, make_optimizer(config), use_ema=config.ema_decay > 0)


def abstract_state(model: GenerativeModel, data: PreparedData, config: TrainConfig) -> TrainState:
    """Return the shapes and dtypes of :func:`init_state` without running it (a restore target)."""
    return jax.eval_shape(lambda: init_state(model, data, config))


def run_key(config: TrainConfig) -> jax.Array:
    """The key every batch index and per-step key derives from (fixed for the run)."""
    return jax.random.fold_in(jax.random.key(config.seed), 2)


def fit(
    model: GenerativeModel,
    data: PreparedData,
    config: TrainConfig,
    workdir: str | None = None,
    mesh: Mesh | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` on ``data`` for ``config.steps`` optimiser steps.

    The global batch is sharded over ``mesh`` (default: all devices) and params are
    replicated. The training set is replicated on every device (``config.input="device"``)
    or stays on the host and is streamed, each call's batches gathered there in the same
    order (``"stream"``, :mod:`genjax_models.train.streaming`). With a ``workdir``, the run
    resumes from its latest checkpoint, appends to ``metrics.jsonl`` every ``log_every``
    steps (process 0 of a multi-process run), checkpoints every ``checkpoint_every`` steps
    and always at the end. A non-finite loss stops the run with
    :class:`NonFiniteLossError` naming the step, and the bad state is never saved.

    Args:
      model: any :class:`GenerativeModel`.
      data: prepared data (see :func:`genjax_models.data.prepare`).
      config: the training hyper-parameters.
      workdir: run directory for checkpoints and metrics, or ``None`` for an in-memory run.
      mesh: device mesh with a ``"data"`` axis; default every device of every process
        (:mod:`genjax_models.train.distributed`).
      progress: show a tqdm bar with the loss and steps/s.

    Returns:
      A :class:`FitResult`.
    """
    mesh = data_mesh() if mesh is None else mesh
    writer = is_writer()  # process 0 of a multi-process run writes the metrics
    check_batch_divisible(config.batch_size, mesh)
    if config.batch_size > data.train.shape[0]:
        raise ConfigError(
            f"batch size {config.batch_size} exceeds the {data.train.shape[0]} training examples"
        )
    state = replicate(init_state(model, data, config), mesh)
    train = training_data(model, data)
    streaming = config.input == "stream"
    key = run_key(config)
    optimizer = make_optimizer(config)
    schedule = learning_rate_schedule(config)
    step_options = dict(
        train_transform=data.train_transform,
        ema_decay=config.ema_decay,
        mesh=mesh,
        compute_dtype=config.compute_dtype,
    )
    if streaming:  # the set stays on the host; each call's batches are sent to the devices
        host_batches = HostBatches(train, split_run_key(key)[0], config.batch_size, mesh)
        update_on = make_batch_update(model, optimizer, **step_options)
    else:  # the set replicated on every device, batches gathered in the step
        train_arrays = replicate(jax.tree_util.tree_map(jax.numpy.asarray, train), mesh)
        update = make_update(model, optimizer, batch_size=config.batch_size, **step_options)

    checkpointer = None
    history: list[dict[str, Any]] = []
    resumed_from = None
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        checkpointer = Checkpointer(workdir, keep=config.keep_checkpoints)
        latest = checkpointer.latest_step()
        if latest is not None:
            state = checkpointer.restore(state, latest)
            resumed_from = latest
        if writer:
            history = truncate_metrics(workdir, latest or 0)
        else:  # process 0 rewrites the file; the others only read what it keeps
            kept = latest or 0
            history = [r for r in read_metrics(workdir) if int(r.get("step", -1)) <= kept]

    start = int(jax.device_get(state.step))
    compiled: dict[int, Any] = {}
    preprocessing = ",".join(f"{k}={v}" for k, v in sorted(data.preprocessing.items()))
    bar = tqdm(
        total=config.steps,
        initial=min(start, config.steps),
        disable=not (progress and writer),
        dynamic_ncols=True,
        unit="step",
    )
    step, last_saved = start, resumed_from
    prefetcher = (
        Prefetcher(host_batches, _calls(start, config), config.prefetch) if streaming else None
    )
    window_start, window_steps = time.perf_counter(), 0
    try:
        while step < config.steps:
            num = _chunk_length(step, config)
            if num not in compiled:
                compiled[num] = (
                    make_fed_train_step(update_on, mesh)
                    if streaming
                    else make_train_step(update, num, mesh, batch_size=config.batch_size)
                )
            inputs = prefetcher.next(step, num) if streaming else train_arrays
            state, metrics = compiled[num](state, inputs, key)
            losses = np.asarray(jax.device_get(metrics["loss"]))
            bad = first_nonfinite(losses)
            if bad is not None:
                where = (
                    f"; the last good checkpoint (step {last_saved}) is kept in {workdir}"
                    if workdir
                    else ""
                )
                raise NonFiniteLossError(
                    f"loss became {losses[bad]} at step {step + bad + 1}{where}. "
                    "Lower train.lr, set train.grad_clip, or check the data for extreme values"
                )
            step += num
            window_steps += num
            bar.update(num)
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
            if step % config.log_every == 0 or step == config.steps:
                now = time.perf_counter()
                record = {"step": step, **{k: float(np.asarray(v)[-1]) for k, v in metrics.items()}}
                if "nll" in record:  # data-space bits/dim, the evaluator's convention
                    record["bits_per_dim"] = float(data.spec.bits_per_dim(record["nll"]))
                record["lr"] = float(schedule(step - 1))
                record["steps_per_sec"] = window_steps / max(now - window_start, 1e-9)
                record["preprocessing"] = preprocessing
                window_start, window_steps = now, 0
                history.append(record)
                if workdir is not None and writer:
                    append_metrics(workdir, record)
            if checkpointer is not None and (
                step % config.checkpoint_every == 0 or step == config.steps
            ):
                checkpointer.save(state)
                last_saved = step
        if checkpointer is not None and last_saved != step:
            checkpointer.save(state)  # always a checkpoint at the end, e.g. steps <= start
    finally:
        bar.close()
        if prefetcher is not None:
            prefetcher.close()
        if checkpointer is not None:
            checkpointer.close()
    return FitResult(state=state, history=history, resumed_from=resumed_from)


def _calls(start: int, config: TrainConfig) -> Iterator[tuple[int, int]]:
    """``(step, num_steps)`` of every jitted call from ``start`` to ``config.steps``."""
    step = start
    while step < config.steps:
        num = _chunk_length(step, config)
        yield step, num
        step += num


def _chunk_length(step: int, config: TrainConfig) -> int:
    """Steps in the next jitted call: up to ``steps_per_call``, ending on log/save boundaries."""
    to_log = config.log_every - step % config.log_every
    to_save = config.checkpoint_every - step % config.checkpoint_every
    return max(1, min(config.steps_per_call, to_log, to_save, config.steps - step))
