"""Training hyper-parameters and the optax optimiser they describe."""

from __future__ import annotations

import dataclasses
from typing import Any

import optax

from genjax_models.errors import ConfigError, unknown_name
from genjax_models.fields import coerce_fields
from genjax_models.train.mixed_precision import compute_dtype

INPUT_MODES = ("device", "stream")  # see genjax_models.train.streaming

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: steps, batch, optimiser, schedule, EMA, logging and checkpoints.

    The learning-rate schedule never depends on ``steps``, so extending a finished run with a
    larger ``steps`` continues exactly as an uninterrupted run would: ``cosine`` decays over
    ``decay_steps`` (which must be given), ``constant`` stays at ``lr`` after warm-up.

    Attributes:
      steps: total optimiser steps of the run.
      batch_size: global batch size (split over devices; must divide evenly).
      lr: peak learning rate.
      seed: seeds parameter init, batching and every per-step key (``fold_in(key, step)``).
      optimizer: one of ``adam``, ``adamw``, ``sgd`` (momentum 0.9).
      weight_decay: decoupled weight decay for ``adamw``.
      schedule: ``constant`` or ``cosine``; ``warmup_steps`` of linear warm-up first.
      decay_steps: length of the cosine decay (after warm-up); required for ``cosine``.
      grad_clip: clip gradients to this global norm; 0 disables.
      ema_decay: keep an EMA of the params with this decay; 0 disables.
      log_every: write a metrics line every this many steps (and at the end).
      checkpoint_every: save a checkpoint every this many steps (and always at the end).
      keep_checkpoints: how many recent checkpoints to keep.
      steps_per_call: optimiser steps per jitted call (a ``lax.scan``); calls also end at
        logging / checkpoint boundaries.
      num_preview_samples: samples drawn for ``samples.png`` at the end of a run.
      compute_dtype: ``float32`` (default) or ``bfloat16``: the loss's matmuls and
        convolutions in bf16 with params, gradients, optimiser state, checkpoints and every
        other operation in float32 (:mod:`genjax_models.train.mixed_precision`; for GPU/TPU,
        where bf16 products are several times faster; on CPU it is slower).
      input: ``device`` (default: the training set replicated on every device, batches
        gathered inside the jitted step) or ``stream`` (the set stays in host memory, each
        call's batches are gathered there, same order, and sent split over the devices;
        :mod:`genjax_models.train.streaming`).
      prefetch: with ``input=stream``, how many calls' batches a background thread prepares
        ahead.
    """

    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_steps: int = 0
    grad_clip: float = 0.0
    ema_decay: float = 0.0
    log_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    steps_per_call: int = 10
    num_preview_samples: int = 64
    compute_dtype: str = "float32"
    input: str = "device"
    prefetch: int = 2

    def __post_init__(self) -> None:
        positive = (
            "batch_size",
            "log_every",
            "checkpoint_every",
            "keep_checkpoints",
            "steps_per_call",
            "prefetch",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ConfigError(f"train.steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise unknown_name("optimizer", self.optimizer, OPTIMIZERS)
        if self.schedule not in SCHEDULES:
            raise unknown_name("schedule", self.schedule, SCHEDULES)
        compute_dtype(self.compute_dtype)  # checks the name
        if self.input not in INPUT_MODES:
            raise unknown_name("train input", self.input, INPUT_MODES)
        if self.schedule == "cosine" and self.decay_steps < 1:
            raise ConfigError(
                "train.schedule=cosine needs train.decay_steps >= 1 (independent of steps)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys with the list of valid ones."""
        valid = {f.name: f for f in dataclasses.fields(cls)}
        bad = sorted(set(values) - set(valid))
        if bad:
            raise ConfigError(
                f"unknown train option(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}"
            )
        return cls(**coerce_fields(cls, values, prefix="train."))


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    """Return the learning rate as a function of the step (see :class:`TrainConfig`)."""
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0 if config.warmup_steps else config.lr,
            peak_value=config.lr,
            warmup_steps=config.warmup_steps,
            decay_steps=config.warmup_steps + config.decay_steps,
        )
    if config.warmup_steps:
        return optax.join_schedules(
            [
                optax.linear_schedule(0.0, config.lr, config.warmup_steps),
                optax.constant_schedule(config.lr),
            ],
            [config.warmup_steps],
        )
    return optax.constant_schedule(config.lr)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Build the optax optimiser: optional global-norm clipping, then the chosen update rule."""
    schedule = learning_rate_schedule(config)
    if config.optimizer == "adam":
        rule = optax.adam(schedule)
    elif config.optimizer == "adamw":
        rule = optax.adamw(schedule, weight_decay=config.weight_decay)
    else:
        rule = optax.sgd(schedule, momentum=0.9)
    if config.grad_clip > 0:
        return optax.chain(optax.clip_by_global_norm(config.grad_clip), rule)
    return rule
