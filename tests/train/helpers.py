"""Small helpers shared by the trainer tests."""

from __future__ import annotations

import hashlib
import os

MODEL_METRICS = ("loss", "elbo", "recon", "kl", "grad_norm")


def tiny_config(steps: int, seed: int = 0, model: str = "vae") -> dict:
    from genjax_models.train.run import resolve_config
    from tests.conftest import TINY_SETS

    return resolve_config(
        model,
        flags={"data": "digits", "train": {"steps": steps, "seed": seed}},
        overrides=TINY_SETS,
    )


def model_metrics(history: list[dict]) -> list[tuple]:
    """The model-dependent numbers of a history (drops timings)."""
    return [tuple([r["step"]] + [r[k] for k in MODEL_METRICS if k in r]) for r in history]


def tree_digest(directory: str) -> dict[str, str]:
    """sha256 of every file under ``directory`` (to check nothing was changed)."""
    digest = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return digest
