"""Discrete latents: gradient estimators (REINFORCE with baselines, VIMCO, Gumbel-softmax,
straight-through), their enumeration references, and the categorical / Bernoulli VAEs."""

from genjax_models.discrete.bernoulli_vae import BernoulliVAE
from genjax_models.discrete.categorical import (
    MAX_ENUMERATION,
    bernoulli_logits,
    categorical_kl_uniform,
    categorical_log_prob,
    enumerate_one_hot,
    exact_expectation,
    sample_one_hot,
)
from genjax_models.discrete.categorical_vae import CategoricalVAE
from genjax_models.discrete.estimators import ESTIMATORS, EstimatorInfo, check_estimator
from genjax_models.discrete.importance import (
    categorical_importance_log_prob,
    categorical_log_weights,
)
from genjax_models.discrete.relaxed import (
    gumbel_softmax_sample,
    straight_through_gumbel_sample,
    straight_through_sample,
    temperature_schedule,
)
from genjax_models.discrete.score_function import (
    baseline_regression_loss,
    leave_one_out_baseline,
    leave_one_out_surrogate,
    moving_average_update,
    score_function_surrogate,
)
from genjax_models.discrete.vae_base import DiscreteVAE
from genjax_models.discrete.vimco import iwae_objective, vimco_control_variates, vimco_surrogate

__all__ = [
    "ESTIMATORS",
    "MAX_ENUMERATION",
    "BernoulliVAE",
    "CategoricalVAE",
    "DiscreteVAE",
    "EstimatorInfo",
    "baseline_regression_loss",
    "bernoulli_logits",
    "categorical_importance_log_prob",
    "categorical_kl_uniform",
    "categorical_log_prob",
    "categorical_log_weights",
    "check_estimator",
    "enumerate_one_hot",
    "exact_expectation",
    "gumbel_softmax_sample",
    "iwae_objective",
    "leave_one_out_baseline",
    "leave_one_out_surrogate",
    "moving_average_update",
    "sample_one_hot",
    "score_function_surrogate",
    "straight_through_gumbel_sample",
    "straight_through_sample",
    "temperature_schedule",
    "vimco_control_variates",
    "vimco_surrogate",
]
