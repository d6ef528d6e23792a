"""The importance-weighted autoencoder (Burda et al., 2016): a VAE trained on the IWAE-k bound.

Same networks as :class:`~genjax_models.latent.vae.VAE`; the training objective is

    L_k(x) = E[logsumexp_i log w_i - log k],   log w_i = log p(x, z_i) - log q(z_i | x),

with z_1..z_k ~ q(z | x) reparameterised. L_1 is the ELBO and L_k tightens towards log p(x)
as k grows, at the cost of k decoder passes per example.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from genjax_models.latent.bounds import log_importance_weights
from genjax_models.latent.kl_control import reject_kl_controls
from genjax_models.latent.vae import VAE
from genjax_models.model import Metrics, Params, RunRecipe


@dataclasses.dataclass(frozen=True)
class IWAE(VAE):
    """A VAE whose loss is the negative IWAE-k bound, k = ``num_importance`` (default 10).

    All other attributes, ``sample`` and ``log_prob`` are those of :class:`VAE`, except the
    KL controls (``beta``, ``kl_warmup_steps``, ``free_bits``): the IWAE bound has no separate
    KL term, so they must keep their defaults.
    """

    num_importance: int = 10

    name: ClassVar[str] = "iwae"
    loss_uses_step: ClassVar[bool] = False
    default_run: ClassVar[RunRecipe] = dataclasses.replace(
        VAE.default_run, expected="about two minutes on a 2-core CPU; test NLL ~97.5 nats"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        reject_kl_controls(self, "iwae trains the IWAE-k bound, which has no separate KL term")

    def bound_loss(
        self,
        params: Params,
        batch: Any,
        key: jax.Array,
        *,
        step: Any = None,
        observed: jax.Array | None = None,
    ) -> tuple[jax.Array, Metrics]:
        """Compute the mean negative IWAE-k bound (of log p(x_o) when ``observed`` is given).

        ``step`` is unused (no KL schedule); ``observed`` as in
        :meth:`~genjax_models.latent.vae.VAE.bound_loss`. :meth:`VAE.loss` adds the masked
        term of a mask-aware model.

        Returns:
          ``(loss, metrics)`` with metrics ``loss``, ``iwae_bound`` (mean L_k), ``elbo`` (mean
          of log w over the same k samples: a k-sample Monte Carlo ELBO, <= L_k) and
          ``nll`` (-L_k, nats; the trainer reports it as data-space ``bits_per_dim``).
        """
        x, encode, log_likelihood = self.bound_pieces(params, batch, observed)
        log_w = log_importance_weights(key, x, encode, log_likelihood, self.num_importance)
        bound = jnp.mean(jax.nn.logsumexp(log_w, axis=0) - math.log(self.num_importance))
        loss = -bound
        metrics = {
            "loss": loss,
            "iwae_bound": bound,
            "elbo": jnp.mean(log_w),
            "nll": loss,
        }
        return loss, metrics
