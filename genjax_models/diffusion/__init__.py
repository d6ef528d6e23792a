"""Score-based and diffusion models: forward processes, parameterisations, losses, samplers, likelihood."""

from genjax_models.diffusion import oracle
from genjax_models.diffusion.processes import (
    DDPM,
    EDM,
    PROCESSES,
    VE,
    VP,
    SubVP,
    ddpm_betas,
    get_process,
)

__all__ = ["DDPM", "EDM", "PROCESSES", "VE", "VP", "SubVP", "ddpm_betas", "get_process", "oracle"]
