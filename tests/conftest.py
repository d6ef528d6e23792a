"""Shared test settings: CPU only, quiet logs, small run configurations."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

# A run that trains in a few seconds on 2 CPU cores: tiny VAE on thresholded digits.
TINY_SETS = [
    "model.hidden=(32,)",
    "model.latent_dim=4",
    "model.eval_samples=10",
    "data.binarize=threshold(8)",
    "train.batch_size=32",
    "train.log_every=5",
    "train.checkpoint_every=10",
    "train.steps_per_call=5",
    "train.num_preview_samples=4",
]


@pytest.fixture
def tiny_sets() -> list[str]:
    return list(TINY_SETS)
