"""Evaluation: one likelihood convention (nats, bits/dim) for every model, and sample metrics."""

from genjax_models.eval.likelihood import (
    bits_per_dim,
    evaluate,
    log_prob_batched,
    nll_in_data_space,
)
from genjax_models.eval.sample_metrics import (
    median_bandwidth,
    mmd2,
    random_directions,
    sliced_wasserstein_distance,
    squared_frechet_distance,
    squared_gaussian_frechet_distance,
    squared_wasserstein2_1d,
)

__all__ = [
    "bits_per_dim",
    "evaluate",
    "squared_frechet_distance",
    "squared_gaussian_frechet_distance",
    "log_prob_batched",
    "median_bandwidth",
    "mmd2",
    "nll_in_data_space",
    "random_directions",
    "sliced_wasserstein_distance",
    "squared_wasserstein2_1d",
]
