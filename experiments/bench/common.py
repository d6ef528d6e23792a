"""Helpers shared by every benchmark in ``experiments/bench``.

* :func:`machine_info` -- platform, CPU, JAX devices / backend and library versions.
* :func:`write_result` -- write ``experiments/results/<name>.json`` (payload + machine info).
* :func:`measure_matmul_flops` -- FLOP/s of a jitted dense matmul in *this* process, the
  yardstick that model FLOP/s are divided by (so the fraction is comparable across machines
  and under varying load).
* :func:`time_fn` -- median / best wall time of a JAX call (``block_until_ready``).
* :func:`fit_timed` -- one training run with the generic trainer and its wall time.
* :func:`compiled_flops` -- FLOPs XLA's cost analysis assigns to a compiled call. Note: XLA
  counts the body of a ``lax.scan`` / while loop once, not once per iteration, so for a
  K-step scanned training call multiply the FLOPs of a single step by K.
* :func:`parse_args` -- the ``--quick`` convention: every benchmark accepts ``--quick`` for a
  fast smoke run (CI-like) that exercises the code path with tiny budgets; quick results
  are written to ``<name>_quick.json`` so they never overwrite the real figures.

Run a benchmark as ``python experiments/bench/<name>.py [--quick]`` from the repo root.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

RESULTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "distrax", "numpy")


def parse_args(
    description: str,
    argv: list[str] | None = None,
    parts: tuple[str, ...] | None = None,
    only: bool = False,
) -> argparse.Namespace:
    """Parse the common benchmark flags (``--quick``; ``--part`` where a benchmark has parts;
    ``--only`` where a benchmark can rerun some of its runs and merge them into its results)."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny budgets for a smoke run; writes <name>_quick.json instead of <name>.json",
    )
    if parts:
        parser.add_argument(
            "--part",
            choices=("all", *parts),
            default="all",
            help="run one part only; writes <name>_<part>.json",
        )
    if only:
        parser.add_argument(
            "--only",
            metavar="LABEL[,LABEL...]",
            help="rerun these runs only, replacing them in the existing results file",
        )
    return parser.parse_args(argv)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info() -> dict[str, Any]:
    """Describe the machine, the JAX backend and the library versions of this process."""
    devices = jax.devices()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in devices],
        "jax_device_count": len(devices),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": {name: _version(name) for name in LIBRARIES},
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_result(name: str, payload: dict[str, Any]) -> str:
    """Write ``experiments/results/<name>.json`` with ``payload`` plus ``machine``.

    Returns the path.
    """
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    record = {"benchmark": name, **payload, "machine": machine_info()}
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2, default=_jsonable)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic | jax.Array):
        return np.asarray(value).tolist()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def _block(out: Any) -> Any:
    return jax.block_until_ready(out)


def time_fn(
    fn: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Time ``fn(*args)`` (blocking on its outputs) and return median / best / mean seconds.

    ``warmup`` untimed calls come first (compilation, caches). ``fn`` must not donate its
    arguments (or must be given fresh ones by a wrapper), since ``args`` are reused.
    """
    for _ in range(warmup):
        _block(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn(*args))
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "best_s": min(times),
        "mean_s": statistics.fmean(times),
        "repeats": repeats,
    }


def compiled_flops(jitted_fn: Any, *args: Any, **kwargs: Any) -> float:
    """FLOPs of one call of ``jitted_fn(*args)`` from XLA's compiled cost analysis.

    ``cost_analysis()`` returns a dict on recent jax and a list with one dict per
    computation on older versions; both are handled. Loops (scan / while) count their body
    once. Returns ``nan`` when the backend gives no estimate.
    """
    cost = jitted_fn.lower(*args, **kwargs).compile().cost_analysis()
    if cost is None:
        return float("nan")
    if isinstance(cost, dict):
        cost = [cost]
    total = 0.0
    for entry in cost:
        if entry and "flops" in entry:
            total += float(entry["flops"])
    return total if total > 0 else float("nan")


def measure_matmul_flops(
    n: int = 1024, dtype: Any = jnp.float32, repeats: int = 10, calls_per_repeat: int = 4
) -> dict[str, float]:
    """Measure the FLOP/s of a jitted dense ``[n, n] @ [n, n]`` matmul in this process.

    Best of ``repeats`` timed runs (each ``calls_per_repeat`` chained matmuls, to amortise
    dispatch) after a warm-up; ``2 n^3`` FLOPs per matmul.
    """
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), dtype) / np.sqrt(n)
    b = jax.random.normal(kb, (n, n), dtype) / np.sqrt(n)
    timing = time_fn(_matmul_chain, a, b, calls_per_repeat, repeats=repeats, warmup=2)
    flops = 2.0 * n**3 * calls_per_repeat
    return {
        "n": n,
        "dtype": jnp.dtype(dtype).name,
        "flops_per_call": flops,
        "best_s": timing["best_s"],
        "median_s": timing["median_s"],
        "flops_per_s_best": flops / timing["best_s"],
        "flops_per_s_median": flops / timing["median_s"],
    }


@functools.partial(jax.jit, static_argnums=2)
def _matmul_chain(a: jax.Array, b: jax.Array, length: int) -> jax.Array:
    def body(x, _):
        return x @ b, None

    return jax.lax.scan(body, a, None, length=length)[0]


def fit_timed(
    model: Any, prepared: Any, steps: int, batch_size: int, lr: float = 1e-3, seed: int = 0,
    steps_per_call: int = 50,
) -> tuple[Any, Any, float]:
    """Train ``model`` with the generic trainer (Adam, no checkpoints, no progress bar).

    Logs every ``min(500, steps)`` steps. Returns ``(result, eval_params, train_s)``, the
    wall time including compilation.
    """
    from genjax_models.train import TrainConfig, fit

    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                         log_every=max(1, min(500, steps)), checkpoint_every=10**9,
                         steps_per_call=steps_per_call)
    start = time.perf_counter()
    result = fit(model, prepared, config, progress=False)
    jax.block_until_ready(result.state.params)
    return result, result.state.eval_params, time.perf_counter() - start
