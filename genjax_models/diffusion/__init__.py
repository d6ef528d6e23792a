"""Score-based and diffusion models: processes, parameterisations, losses, samplers, likelihood.

- :mod:`~genjax_models.diffusion.processes`: x_t = alpha(t) x0 + sigma(t) eps for DDPM, VP, sub-VP,
  VE and EDM, with SDE coefficients, posteriors, priors and time grids;
- :mod:`~genjax_models.diffusion.parameterization`: eps / x0 / v / score conversions, EDM
  preconditioning and ``make_denoiser`` (the denoiser is the interface everything else takes);
- :mod:`~genjax_models.diffusion.types`: the denoiser interface ``denoise_fn(x, t, cond=None)``;
- :mod:`~genjax_models.diffusion.losses`: DDPM, weighted DSM (likelihood weighting), v and EDM;
- :mod:`~genjax_models.diffusion.samplers`: one driver runs every sampler (one ``lax.scan``),
  budgeted in NFE; ``samplers.picard`` solves any of them in parallel over time;
- :mod:`~genjax_models.diffusion.guidance`: classifier-free and classifier guidance as denoiser
  wrappers;
- :mod:`~genjax_models.diffusion.likelihood`: probability-flow ODE log-likelihood, DDPM's bound;
- :mod:`~genjax_models.diffusion.oracle`: closed-form Gaussian-mixture score, denoiser, log p_t;
- :mod:`~genjax_models.diffusion.models`: the ``ddpm``, ``score-sde`` and ``edm`` models.
"""

from genjax_models.diffusion import guidance, oracle, samplers, types
from genjax_models.diffusion.guidance import classifier_free, classifier_guidance
from genjax_models.diffusion.likelihood import (
    affine_log_det,
    ddpm_vlb,
    pf_ode_drift,
    pf_ode_log_prob,
)
from genjax_models.diffusion.losses import LOSSES, dsm_loss, edm_loss, get_loss, v_loss
from genjax_models.diffusion.losses import ddpm_loss as ddpm_simple_loss
from genjax_models.diffusion.parameterization import (
    PREDICTIONS,
    convert,
    edm_preconditioning,
    from_denoised,
    make_denoiser,
    to_denoised,
)
from genjax_models.diffusion.processes import (
    DDPM,
    EDM,
    GRIDS,
    PROCESSES,
    VE,
    VP,
    ForwardProcess,
    SubVP,
    ddpm_betas,
    get_process,
)
from genjax_models.diffusion.samplers import SAMPLERS, Sampler, sample
from genjax_models.diffusion.types import DenoiseFn

__all__ = [
    "DDPM",
    "EDM",
    "GRIDS",
    "LOSSES",
    "PREDICTIONS",
    "PROCESSES",
    "SAMPLERS",
    "VE",
    "VP",
    "DenoiseFn",
    "ForwardProcess",
    "Sampler",
    "SubVP",
    "affine_log_det",
    "classifier_free",
    "classifier_guidance",
    "convert",
    "ddpm_betas",
    "ddpm_simple_loss",
    "ddpm_vlb",
    "dsm_loss",
    "edm_loss",
    "edm_preconditioning",
    "from_denoised",
    "get_loss",
    "get_process",
    "guidance",
    "make_denoiser",
    "oracle",
    "pf_ode_drift",
    "pf_ode_log_prob",
    "sample",
    "samplers",
    "to_denoised",
    "types",
    "v_loss",
]
