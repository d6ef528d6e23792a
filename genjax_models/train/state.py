"""The training state: a plain pytree that jit, shardings and orbax take as it is."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
    """Everything that changes during training.

    Attributes:
      step: int32 scalar, the number of optimiser steps taken so far.
      params: the model's parameters (a pytree of arrays).
      opt_state: the optax optimiser state.
      ema_params: an exponential moving average of ``params`` (used for sampling and
        evaluation when present), or ``None`` when EMA is off.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    ema_params: Any = None

    @classmethod
    def create(
        cls, params: Any, optimizer: optax.GradientTransformation, use_ema: bool = False
    ) -> TrainState:
        """Build the state at step 0: fresh optimiser state, EMA initialised to ``params``."""
        ema = jax.tree.map(jnp.copy, params) if use_ema else None
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=optimizer.init(params),
            ema_params=ema,
        )

    @property
    def eval_params(self) -> Any:
        """The parameters to sample and evaluate with: the EMA ones when kept."""
        return self.params if self.ema_params is None else self.ema_params
