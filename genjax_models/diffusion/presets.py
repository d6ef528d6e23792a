"""The registered diffusion models: :class:`DiffusionModel` with the defaults of their papers.

=============  =====================================================================
``ddpm``       Ho et al. 2020: discrete linear-beta process (N = 1000), eps loss, ancestral
``score-sde``  Song et al. 2021: ``sde`` = vp | subvp | ve, denoising score matching, PC sampler
``edm``        Karras et al. 2022: sigma(t) = t, preconditioned denoiser, EDM loss, Heun (35 NFE)
=============  =====================================================================
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from genjax_models.diffusion.models import DiffusionModel
from genjax_models.errors import ConfigError, unknown_name
from genjax_models.model import RunRecipe

SDES: tuple[str, ...] = ("vp", "subvp", "ve")
_TRAIN_2D: dict[str, Any] = {
    "steps": 4000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.999, "log_every": 100,
    "checkpoint_every": 1000, "steps_per_call": 50, "num_preview_samples": 1000,
}
_TRAIN_IMAGES: dict[str, Any] = {
    "steps": 2000, "batch_size": 64, "lr": 2e-3, "ema_decay": 0.999, "log_every": 100,
    "checkpoint_every": 1000, "steps_per_call": 20, "num_preview_samples": 64,
}


@dataclasses.dataclass(frozen=True)
class DDPMModel(DiffusionModel):
    """DDPM (Ho et al. 2020): discrete linear-beta process, eps loss, ancestral sampling."""

    process: str = "ddpm"
    objective: str = "ddpm"
    sampler: str = "ancestral"
    nfe: int = 1000
    time_sampling: str = "uniform"

    name: ClassVar[str] = "ddpm"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="digits", dequantize="uniform", train=dict(_TRAIN_IMAGES),
        expected="about 3 minutes on a 2-core CPU, then 1000-step ancestral previews; "
        "~2.1 bits/dim on digits (experiments/configs/ddpm_digits.py)",
    )


@dataclasses.dataclass(frozen=True)
class ScoreSDE(DiffusionModel):
    """Score SDE (Song et al. 2021): ``sde`` chooses the process, DSM loss, PC sampling.

    VE uses EDM preconditioning (its x_t reaches std 50).

    Attributes:
      sde: the forward SDE, ``"vp"``, ``"subvp"`` or ``"ve"`` (sets ``process``).
    """

    sde: str = "vp"
    process: str = ""
    sampler: str = "pc"
    nfe: int = 400

    name: ClassVar[str] = "score-sde"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="eight-gaussians", dequantize="uniform", train=dict(_TRAIN_2D),
        expected="about 20 s on a 2-core CPU; test NLL ~0.1 nats above the entropy",
    )

    def __post_init__(self) -> None:
        if self.sde not in SDES:
            raise unknown_name("sde", self.sde, SDES)
        if self.process not in ("", self.sde):
            raise ConfigError(
                "score-sde chooses its process with sde=...; "
                f"got process={self.process!r}, sde={self.sde!r}"
            )
        object.__setattr__(self, "process", self.sde)
        if self.sde == "ve" and not self.preconditioning and self.prediction == "eps":
            object.__setattr__(self, "preconditioning", True)
            object.__setattr__(self, "prediction", "x0")
        super().__post_init__()


@dataclasses.dataclass(frozen=True)
class EDMModel(DiffusionModel):
    """EDM (Karras et al. 2022): sigma(t) = t, preconditioned denoiser, EDM loss, Heun sampler."""

    process: str = "edm"
    objective: str = "edm"
    prediction: str = "x0"
    preconditioning: bool = True
    time_sampling: str = "uniform"
    sampler: str = "heun"
    nfe: int = 35

    name: ClassVar[str] = "edm"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="digits", dequantize="uniform", train=dict(_TRAIN_IMAGES),
        expected="about 3 minutes on a 2-core CPU; ~1.9 bits/dim on digits "
        "(experiments/configs/edm_digits.py)",
    )


__all__ = ["SDES", "DDPMModel", "EDMModel", "ScoreSDE"]
