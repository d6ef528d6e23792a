"""Latent-variable models: Gaussian mixture and mixture of Bernoullis (EM), VAE, IWAE,
conditional VAE, GMVAE, KL controls, their bounds and likelihoods, and the PPCA oracle."""

from genjax_models.latent.bounds import (
    gaussian_kl_standard,
    importance_log_prob,
    iwae_bound,
    log_importance_weights,
)
from genjax_models.latent.cvae import CVAE
from genjax_models.latent.gmm import COVARIANCES, GaussianMixture
from genjax_models.latent.gmvae import GMVAE, mixture_log_prob
from genjax_models.latent.iwae import IWAE
from genjax_models.latent.likelihoods import (
    bernoulli_log_likelihood,
    discretized_logistic_log_likelihood,
    gaussian_log_likelihood,
)
from genjax_models.latent.linear_gaussian import ppca_log_prob, ppca_posterior
from genjax_models.latent.m2 import M2
from genjax_models.latent.marginal_estimators import (
    estimator_table,
    log_marginal_estimates,
    model_estimator_table,
)
from genjax_models.latent.mixture import (
    MixtureModel,
    assign,
    em_step,
    fit_em,
    kmeans_plus_plus,
    responsibilities,
)
from genjax_models.latent.mob import MixtureOfBernoullis
from genjax_models.latent.networks import Decoder, GaussianEncoder
from genjax_models.latent.vae import LIKELIHOODS, VAE

__all__ = [
    "COVARIANCES",
    "CVAE",
    "IWAE",
    "LIKELIHOODS",
    "GMVAE",
    "M2",
    "VAE",
    "Decoder",
    "GaussianEncoder",
    "GaussianMixture",
    "MixtureModel",
    "MixtureOfBernoullis",
    "assign",
    "bernoulli_log_likelihood",
    "discretized_logistic_log_likelihood",
    "em_step",
    "estimator_table",
    "fit_em",
    "gaussian_kl_standard",
    "gaussian_log_likelihood",
    "importance_log_prob",
    "iwae_bound",
    "kmeans_plus_plus",
    "log_importance_weights",
    "log_marginal_estimates",
    "mixture_log_prob",
    "model_estimator_table",
    "ppca_log_prob",
    "ppca_posterior",
    "responsibilities",
]
