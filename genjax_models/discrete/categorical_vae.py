"""The categorical VAE (Jang et al., 2017): N latent variables of K classes, uniform prior.

Default N = 20, K = 10, MLP 784-512-256-(20 x 10) encoder and a mirrored Bernoulli decoder,
as in the Gumbel-softmax paper. Every estimator of
:data:`~genjax_models.discrete.ESTIMATORS` trains it (``--set model.estimator=...``); the
losses, ``log_prob`` (IWAE-k with q as proposal) and the enumeration references are those of
:class:`~genjax_models.discrete.vae_base.DiscreteVAE`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from genjax_models.discrete.vae_base import DiscreteVAE
from genjax_models.errors import ConfigError
from genjax_models.model import RunRecipe


@dataclasses.dataclass(frozen=True)
class CategoricalVAE(DiscreteVAE):
    """A VAE with N categorical latents of K classes (z one-hot ``[N, K]``).

    Attributes:
      num_classes: K >= 2, the classes of each latent variable.

    The other attributes are those of :class:`DiscreteVAE`.
    """

    num_classes: int = 10

    name: ClassVar[str] = "categorical-vae"
    default_run: ClassVar[RunRecipe] = dataclasses.replace(
        DiscreteVAE.default_run,
        expected="about a minute on a 2-core CPU (gumbel-softmax, tau = 1); test NLL ~108 "
        "nats (IWAE-1000) after 3000 steps (experiments/configs/categorical_vae_mnist5k.py)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.num_classes, bool) or self.num_classes < 2:
            raise ConfigError(f"num_classes must be an int >= 2, got {self.num_classes!r}")
