"""Orbax checkpoints of the :class:`TrainState`: async, atomic, keep-last-N.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so
a process killed mid-save (even by SIGKILL) leaves only finished checkpoints behind; the
unfinished temporary directory is ignored and cleaned up by the next run. Restoring takes
an abstract target carrying the shardings of the *current* mesh, so a checkpoint written
on N devices restores onto M devices.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from genjax_models.errors import CheckpointError
from genjax_models.train.state import TrainState

CHECKPOINT_SUBDIR = "checkpoints"


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    """The directory under ``workdir`` holding the step-numbered checkpoints."""
    return os.path.join(os.path.abspath(os.fspath(workdir)), CHECKPOINT_SUBDIR)


def _quiet_orbax() -> None:
    """Silence orbax's informational absl warnings (e.g. about read-only managers)."""
    logging.getLogger("absl").setLevel(logging.ERROR)


class Checkpointer:
    """Save and restore :class:`TrainState` under ``WORKDIR/checkpoints/<step>``.

    Args:
      workdir: the run directory.
      keep: number of most recent checkpoints kept.
      async_save: write in a background thread (call :meth:`wait` or :meth:`close`).
      read_only: open an existing directory without creating or deleting anything (eval).
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        keep: int = 3,
        async_save: bool = True,
        read_only: bool = False,
    ):
        _quiet_orbax()
        self.directory = checkpoint_dir(workdir)
        if read_only and not os.path.isdir(self.directory):
            raise CheckpointError(
                f"no checkpoint directory {self.directory}; train first with "
                f"`genjax train MODEL --workdir {os.fspath(workdir)}`"
            )
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None if read_only else keep,
            save_interval_steps=0 if read_only else 1,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,
            enable_async_checkpointing=async_save,
        )
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        except Exception as err:  # orbax raises many kinds on an unreadable directory
            raise CheckpointError(
                f"cannot open checkpoint directory {self.directory}: {err}"
            ) from err

    def latest_step(self) -> int | None:
        """The newest finished checkpoint's step, or ``None``."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, state: TrainState) -> None:
        """Save ``state`` under its own step (asynchronously when enabled)."""
        step = int(jax.device_get(state.step))
        self._manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True
        )

    def restore(self, target: TrainState, step: int | None = None) -> TrainState:
        """Restore the checkpoint at ``step`` (default: latest) onto ``target``'s structure.

        ``target`` is a state of the right structure whose arrays (or
        ``jax.ShapeDtypeStruct`` leaves) carry the shardings to restore onto.

        Raises:
          CheckpointError: no checkpoint, or one that is unreadable or does not match the
            model (different architecture or hyper-parameters).
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no finished checkpoint in {self.directory}")
        abstract = jax.tree.map(_abstract_leaf, target)
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            )
        except Exception as err:
            raise CheckpointError(
                f"checkpoint {os.path.join(self.directory, str(step))} cannot be restored "
                f"({type(err).__name__}: {_first_line(err)}). It is corrupted or was written by a "
                "different model/config; move it away or use a new --workdir"
            ) from err
        return restored["state"]

    def wait(self) -> None:
        """Block until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _abstract_leaf(x: Any) -> Any:
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return x


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""
