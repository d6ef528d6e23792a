"""The run directory: ``config.json``, ``metrics.jsonl``, eval records, checkpoints and plots.

Layout of ``WORKDIR``::

    config.json                the resolved run configuration (written once, atomically)
    metrics.jsonl              one JSON object per logged step: {"step": ..., "loss": ..., ...}
    eval_<split>_<estimator>.json   evaluation records
    checkpoints/<N>/           orbax checkpoints of the train state
    samples.png                preview samples at the end of a run
    loss.png                   loss curve at the end of a run

This module is neutral ground: ``train/``, ``eval/`` and the CLI import it, and it imports
neither.

Every write is atomic (a temporary file renamed into place), and nothing already in a
workdir is overwritten unless it belongs to the same run (same resolved config).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from typing import Any

from genjax_models.errors import CheckpointError, ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_config(workdir: str) -> dict[str, Any] | None:
    """The saved config of ``workdir``, or ``None`` if it has none."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path} is unreadable ({err}); it is not a valid genjax workdir"
        ) from err


def require_config(workdir: str) -> dict[str, Any]:
    """The saved config of an existing run directory, with a clear error if there is none."""
    if not os.path.isdir(workdir):
        raise CheckpointError(
            f"workdir {workdir} does not exist; "
            f"train first with `genjax train MODEL --workdir {workdir}`"
        )
    config = read_config(workdir)
    if config is None:
        raise CheckpointError(f"{workdir} has no {CONFIG_FILE}; it is not a genjax run directory")
    return config


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def config_differences(
    saved: dict[str, Any], wanted: dict[str, Any], ignore: Iterable[str] = ()
) -> list[str]:
    """List ``key: saved -> wanted`` for every field that differs, except those in ``ignore``."""
    a, b = _flatten(saved), _flatten(json.loads(json.dumps(wanted)))
    skip = set(ignore)
    return [
        f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}"
        for key in sorted(set(a) | set(b))
        if key not in skip and a.get(key) != b.get(key)
    ]


def claim_workdir(
    workdir: str, config: dict[str, Any], resumable_changes: Iterable[str], write: bool = True
) -> bool:
    """Make ``workdir`` hold this run, or refuse without touching it.

    With ``write=False`` only the checks run (the other processes of a multi-process run,
    whose process 0 writes).

    Returns:
      True when the workdir already held the same run (a resume), False when it was new.

    Raises:
      ConfigError: the saved config differs in a field other than ``resumable_changes``, or
        the directory is non-empty and not a genjax run.
    """
    saved = read_config(workdir) if os.path.isdir(workdir) else None
    if saved is None:
        if os.path.isdir(workdir) and any(not name.startswith(".") for name in os.listdir(workdir)):
            raise ConfigError(
                f"workdir {workdir} is not empty and has no {CONFIG_FILE}; "
                "refusing to write into it — choose a new or empty --workdir"
            )
        if write:
            record_config(workdir, config)
        return False
    diffs = config_differences(saved, config, ignore=resumable_changes)
    if diffs:
        raise ConfigError(
            f"workdir {workdir} was created by a different run; differing settings:\n  "
            + "\n  ".join(diffs)
            + "\nUse a new --workdir, or repeat the original settings (only train.steps and "
            "logging/checkpoint intervals may change when continuing a run)"
        )
    return True


def record_config(workdir: str, config: dict[str, Any]) -> None:
    """Write ``config`` as the workdir's config (after a continued run succeeded)."""
    atomic_write_text(
        os.path.join(workdir, CONFIG_FILE), json.dumps(config, indent=2, sort_keys=True) + "\n"
    )


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    """All records of ``WORKDIR/metrics.jsonl`` (a torn last line from a kill is skipped)."""
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def truncate_metrics(workdir: str, last_step: int) -> list[dict[str, Any]]:
    """Drop metric records past ``last_step`` (logged after the checkpoint a run resumes from)."""
    path = os.path.join(workdir, METRICS_FILE)
    kept = [r for r in read_metrics(workdir) if int(r.get("step", -1)) <= last_step]
    if os.path.exists(path):  # rewrite even if nothing is dropped: it removes a torn last line
        atomic_write_text(path, "".join(_json_line(r) for r in kept))
    return kept


def append_metrics(workdir: str, record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk."""
    with open(os.path.join(workdir, METRICS_FILE), "a") as f:
        f.write(_json_line(record))
        f.flush()


def _json_line(record: dict[str, Any]) -> str:
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
    }
    return json.dumps(clean, sort_keys=False) + "\n"


def write_eval(workdir: str, report: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Write ``WORKDIR/eval_<split>_<estimator>.json`` (atomically) and return the full record."""
    record = {"model": config["model"], "data": config["data"], **report}
    name = f"eval_{report['split']}_{report['estimator']}.json"
    atomic_write_text(os.path.join(workdir, name), json.dumps(record, indent=2) + "\n")
    return record
