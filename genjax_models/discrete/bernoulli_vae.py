"""The Bernoulli-latent VAE: N binary latents z_n in {0, 1} with a uniform Bernoulli(1/2) prior.

The encoder outputs one logit l_n per latent, q(z_n = 1 | x) = sigmoid(l_n); internally this
is the categorical case K = 2 with logits ``[0, l_n]``
(:func:`~genjax_models.discrete.bernoulli_logits`), so every estimator of
:data:`~genjax_models.discrete.ESTIMATORS` applies unchanged (Gumbel-softmax becomes the binary
Concrete relaxation). The decoder sees the N-vector z (class 1 of each one-hot); default
N = 200, as in the sigmoid-belief-network experiments of NVIL and VIMCO.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from jaxtyping import Array, Float

from genjax_models.discrete.categorical import bernoulli_logits
from genjax_models.discrete.vae_base import DiscreteVAE
from genjax_models.model import RunRecipe


@dataclasses.dataclass(frozen=True)
class BernoulliVAE(DiscreteVAE):
    """A VAE with N Bernoulli latents (the attributes are those of :class:`DiscreteVAE`)."""

    num_latents: int = 200

    name: ClassVar[str] = "bernoulli-vae"
    default_run: ClassVar[RunRecipe] = dataclasses.replace(
        DiscreteVAE.default_run,
        expected="about a minute on a 2-core CPU (gumbel-softmax, tau = 1); test NLL ~113 "
        "nats (IWAE-1000) after 3000 steps",
    )

    @property
    def num_classes(self) -> int:
        """K = 2."""
        return 2

    @property
    def encoder_width(self) -> int:
        """N: one logit per latent."""
        return self.num_latents

    def latent_logits(self, h: Float[Array, "b n"]) -> Float[Array, "b n 2"]:
        """Return the categorical logits ``[0, l]`` of the Bernoulli logits l."""
        return bernoulli_logits(h)

    def decoder_input(self, z: Float[Array, "... n 2"]) -> Float[Array, "... n"]:
        """Return z_n = the class-1 entry of each (relaxed) one-hot."""
        return z[..., 1]
