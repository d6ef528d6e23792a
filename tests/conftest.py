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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the longest tests first: the notebook runs, then the other ``slow`` tests.

    With ``-n 2`` xdist hands the first items out round-robin, so the long tests spread over
    both workers instead of one of them finishing the run alone on a notebook (longest
    processing time first). The order is otherwise the collection order (a stable sort), and
    the same on every worker.
    """
    del config

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is None:
            return 2
        return 0 if "test_notebooks.py" in item.nodeid else 1

    items.sort(key=rank)


@pytest.fixture
def tiny_sets() -> list[str]:
    return list(TINY_SETS)
