"""Evaluation: one likelihood convention (nats, bits/dim) for every model, and sample metrics."""

from genjax_models.eval.likelihood import (
    bits_per_dim,
    evaluate,
    log_prob_batched,
    log_prob_kind,
    nll_in_data_space,
    write_eval,
)
from genjax_models.eval.sample_metrics import (
    frechet_distance,
    gaussian_frechet_distance,
    median_bandwidth,
    mmd2,
    random_directions,
    sliced_wasserstein,
    wasserstein2_1d,
)

__all__ = [
    "bits_per_dim",
    "evaluate",
    "frechet_distance",
    "gaussian_frechet_distance",
    "log_prob_batched",
    "log_prob_kind",
    "median_bandwidth",
    "mmd2",
    "nll_in_data_space",
    "random_directions",
    "sliced_wasserstein",
    "wasserstein2_1d",
    "write_eval",
]
