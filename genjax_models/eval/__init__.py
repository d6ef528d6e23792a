"""Evaluation: one likelihood convention (nats, bits/dim) for every model."""

from genjax_models.eval.likelihood import (
    bits_per_dim,
    evaluate,
    log_prob_batched,
    nll_in_data_space,
    write_eval,
)

__all__ = ["bits_per_dim", "evaluate", "log_prob_batched", "nll_in_data_space", "write_eval"]
