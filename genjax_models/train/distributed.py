"""Multi-process (multi-host) data parallelism with ``jax.distributed``.

Every process runs the same program (JAX's multi-controller model): it loads the same data,
builds the same model and calls the same jitted steps; the mesh spans the devices of all
processes (``jax.devices()``), parameters are replicated and each step's global batch is split
over every device, so N processes x M devices train exactly as one process with N x M devices
(tested: 2 processes x 4 CPU devices against 1 x 8). Checkpoints are written by orbax from all
processes into one directory (which must be shared, e.g. a network file system on a cluster);
``config.json``, ``metrics.jsonl``, pictures, evaluation reports and console output come from
process 0 alone.

Start (one command per process, same flags otherwise)::

    genjax train vae --coordinator HOST:PORT --num-processes 2 --process-id 0 ...
    genjax train vae --coordinator HOST:PORT --num-processes 2 --process-id 1 ...

or ``--distributed`` on a cluster where ``jax.distributed.initialize()`` finds everything
itself (Cloud TPU pods, SLURM, Open MPI). On CPU the processes' collectives go through gloo.
"""

from __future__ import annotations

import jax
from jax.experimental import multihost_utils

from genjax_models.errors import ConfigError


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    auto: bool = False,
) -> None:
    """Join a multi-process run; call before any other jax computation of the process.

    Args:
      coordinator: ``HOST:PORT`` of process 0's coordination service.
      num_processes: how many processes take part.
      process_id: this process's index in ``0 .. num_processes - 1``.
      auto: let ``jax.distributed.initialize()`` detect all three (clusters that set them).

    Raises:
      ConfigError: an incomplete or inconsistent set of options.
    """
    explicit = (coordinator, num_processes, process_id)
    if auto:
        if any(v is not None for v in explicit):
            raise ConfigError(
                "--distributed detects the coordinator, process count and id itself; "
                "drop --coordinator/--num-processes/--process-id, or drop --distributed"
            )
    elif any(v is None for v in explicit):
        raise ConfigError(
            "a multi-process run needs all of --coordinator HOST:PORT, --num-processes N and "
            "--process-id I (or --distributed on a cluster that sets them)"
        )
    else:
        host, _, port = str(coordinator).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
        if int(num_processes) < 1 or not 0 <= int(process_id) < int(num_processes):
            raise ConfigError(
                f"--process-id must be in 0..{int(num_processes) - 1} for --num-processes "
                f"{num_processes}, got {process_id}"
            )
    try:  # cross-process collectives of the CPU backend (no effect on GPU/TPU)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):  # a jax without the option
        pass
    if auto:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=int(num_processes),
            process_id=int(process_id),
        )


def is_writer() -> bool:
    """Whether this process writes the run's files and console output (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (no-op with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
