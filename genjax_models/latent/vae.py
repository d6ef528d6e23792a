"""The variational autoencoder (Kingma & Welling, 2014) trained on the analytic-KL ELBO.

Model: p(z) = N(0, I_K), p(x | z) a factorised decoder over the D = prod(event_shape) data
dimensions (Bernoulli, Gaussian with a learned per-dimension scale, or discretised logistic
on a grid of L levels); encoder q(z | x) = N(mean(x), diag(std(x)^2)). Encoder and decoder
are MLPs on flattened inputs, or for images (``architecture="conv"``) strided-conv / upsampling
stacks around one dense layer (:mod:`genjax_models.latent.networks`). Training maximises

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)),

with the KL term in closed form and the expectation estimated with ``num_importance``
reparameterised samples. ``log_prob`` reports the IWAE-k estimate of log p(x) (k = 1000
by default), a stochastic lower bound that tightens with k.

The training loss may reshape the KL term (:mod:`genjax_models.latent.kl_control`): a weight
``beta`` (beta-VAE), a linear warm-up of that weight over ``kl_warmup_steps`` optimiser steps,
and a ``free_bits`` floor per latent dimension:

    loss = -E_q log p(x | z) + w(step) * sum_k max(lambda, mean_b KL_bk),
    w(step) = beta * min(1, step / kl_warmup_steps).

With the defaults (beta = 1, no warm-up, lambda = 0) the loss is the negative ELBO. Whatever
the settings, the reported ``elbo`` / ``nll`` metrics and ``log_prob`` are the true bound.
``diagnostics`` counts the active units (Burda et al., 2016) on the evaluated split.

``complete`` fills in missing entries (:mod:`genjax_models.latent.vae_completion`): the
missing dimensions drop out of the factorised likelihood, so importance sampling gives a
bound on log p(x_observed), and resampling the importance samples by weight gives
approximate draws from p(x_missing | x_observed). With ``mask_aware`` the encoder takes the
mask as an input, q(z | x_o, m) = encoder([x * m, m]) (missing entries zeroed, the mask beside
them), and the training loss adds the bound on log p(x_o) of randomly masked copies of the
batch (:mod:`genjax_models.latent.training_masks`),

    loss = loss(x) + mask_weight * (-E_q(z|x_o,m) log p(x_o | z) + w(step) KL(q(z|x_o,m) || p)),

so that the proposal at completion time is fitted to partial observations (the partial-VAE /
MIWAE idea: Ma et al., 2019; Mattei & Frellsen, 2019). Fully observed inputs use m = 1.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar, Self

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.completion import Completion, flat_observed
from genjax_models.data.batch import Batch
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, unknown_name
from genjax_models.fields import Option
from genjax_models.latent.bounds import (
    gaussian_kl_standard_per_dim,
    importance_log_prob,
    standard_normal_log_prob,
)
from genjax_models.latent.kl_control import (
    ACTIVE_UNIT_THRESHOLD,
    free_bits_kl,
    kl_weight,
    unit_activity,
)
from genjax_models.latent.likelihoods import (
    bernoulli_log_likelihood,
    discretized_logistic_log_likelihood,
    gaussian_log_likelihood,
)
from genjax_models.latent.networks import (
    ConvDecoderHead,
    ConvGaussianEncoder,
    Decoder,
    GaussianEncoder,
)
from genjax_models.latent.training_masks import TRAINING_MASKS, random_training_masks
from genjax_models.latent.vae_completion import importance_completion, masked_sum
from genjax_models.model import (
    LogProbInfo,
    Metrics,
    ModelBase,
    Params,
    RunRecipe,
    cannot_complete,
)
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.validation import positive_int

LIKELIHOODS: tuple[str, ...] = ("bernoulli", "gaussian", "discretized-logistic")
ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")
_DEFAULT_LIKELIHOOD = {
    "binary": "bernoulli",
    "grey": "discretized-logistic",
    "continuous": "gaussian",
}


@dataclasses.dataclass(frozen=True)
class VAE(ModelBase):
    """A VAE with MLP (or, for images, convolutional) encoder / decoder.

    Attributes:
      event_shape: shape of one example, e.g. ``(28, 28, 1)``; batches are
        ``[B, *event_shape]`` and are flattened to ``[B, D]``.
      likelihood: decoder family, one of ``"bernoulli"`` (logits), ``"gaussian"`` (mean and
        a learned per-dimension log-scale) or ``"discretized-logistic"`` (same, on the grid
        ``level / (num_levels - 1)``).
      num_levels: L, required by ``"discretized-logistic"``.
      latent_dim: K, the dimension of the latent z.
      hidden: encoder hidden widths; the decoder uses them reversed. ``()`` makes both maps
        linear (with a Gaussian decoder this is probabilistic PCA plus a linear encoder).
      activation: one of :data:`~genjax_models.nn.ACTIVATIONS`.
      num_importance: reparameterised samples per example in the training ELBO (averaged).
      eval_samples: default k of the importance-sampled ``log_prob``.
      eval_chunk: samples per chunk in ``log_prob`` (memory O(B * eval_chunk * D)).
      clip_range: ``(lo, hi)`` to clip decoder means to in ``sample(mean=True)`` for
        image-like data with a Gaussian decoder (``from_spec`` sets ``(0, 1)`` for image
        data); ``None`` leaves them unclipped. Discretised-logistic means are always clipped
        to ``[0, 1]``; Bernoulli means are probabilities.
      beta: weight of the KL term in the training loss (beta-VAE), >= 0; 1 is the ELBO.
      kl_warmup_steps: the KL weight ramps linearly from 0 to ``beta`` over this many
        optimiser steps; 0 (default) applies ``beta`` from the first step.
      free_bits: lambda, nats per latent dimension: the training KL term is
        sum_k max(lambda, batch-mean KL_k); 0 (default) is the plain KL.
      architecture: ``"mlp"`` or ``"conv"``, MLPs of widths ``hidden`` or conv stacks for
        images ``[H, W, C]`` with H and W divisible by 2^conv_downsample
        (:class:`~genjax_models.latent.networks.ConvGaussianEncoder` and
        :class:`~genjax_models.latent.networks.ConvDecoderHead`; ``hidden`` is then unused).
      conv_channels: F, channels of the convolutional stacks.
      conv_downsample: S, stride-2 stages of the encoder (and 2x upsamplings of the decoder).
      conv_residual: R, residual blocks at the low resolution on each side.
      mask_aware: the encoder takes ``[x * m, m]`` (the observed-entry mask beside the
        zeroed input) and training adds the bound of randomly masked copies of each batch.
      train_masks: masks of the mask-aware training term, ``"pixels"``, ``"halves"`` or
        ``"mixed"`` (:mod:`~genjax_models.latent.training_masks`).
      mask_weight: weight of the masked term in the training loss, >= 0.
    """

    likelihood: str = "bernoulli"
    num_levels: int | None = None
    latent_dim: int = 32
    hidden: tuple[int, ...] = (512, 256)
    activation: str = "gelu"
    num_importance: int = 1
    eval_samples: int = 1000
    eval_chunk: int = 100
    clip_range: tuple[float, float] | None = None
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    architecture: str = "mlp"
    conv_channels: int = 32
    conv_downsample: int = 2
    conv_residual: int = 1
    mask_aware: bool = False
    train_masks: str = "mixed"
    mask_weight: float = 1.0

    name: ClassVar[str] = "vae"
    loss_uses_step: ClassVar[bool] = True
    sample_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "mean",
            bool,
            False,
            "return decoder means (Bernoulli probabilities) instead of draws from p(x | z)",
        ),
    )
    can_complete: ClassVar[bool] = True
    complete_options: ClassVar[tuple[Option, ...]] = (
        Option("num_samples", int | None, None,
               "importance samples k of the bound on log p(x_observed) and of the resampling "
               "(default: eval_samples)"),
        Option("fill", float, 0.0,
               "value the encoder sees at missing entries (any value gives a valid bound; a "
               "mask_aware encoder sees zeros and the mask instead)"),
    )
    log_prob_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "num_samples",
            int | None,
            None,
            "importance samples k of the IWAE-k estimate (default: eval_samples)",
        ),
        Option(
            "chunk_size", int | None, None, "samples per chunk, memory only (default: eval_chunk)"
        ),
    )
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="mnist5k",
        binarize="dynamic",
        train={
            "steps": 5000,
            "batch_size": 128,
            "lr": 1e-3,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 20,
        },
        expected="about a minute on a 2-core CPU; test NLL ~99 nats (IWAE-1000)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(n < 1 for n in self.hidden):
            raise ConfigError(f"hidden widths must be positive, got {self.hidden}")
        if self.likelihood not in LIKELIHOODS:
            raise unknown_name("likelihood", self.likelihood, LIKELIHOODS)
        if self.activation not in ACTIVATIONS:
            raise unknown_name("activation", self.activation, ACTIVATIONS)
        if self.likelihood == "discretized-logistic" and (
            self.num_levels is None or self.num_levels < 2
        ):
            raise ConfigError(
                "likelihood='discretized-logistic' needs num_levels >= 2 (the number of "
                f"quantisation levels of the data), got num_levels={self.num_levels!r}"
            )
        for field in ("latent_dim", "num_importance", "eval_samples", "eval_chunk"):
            positive_int(field, getattr(self, field))
        for field in ("beta", "free_bits", "mask_weight"):
            value = getattr(self, field)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"{field} must be a finite number >= 0, got {value!r}")
        if self.kl_warmup_steps < 0:
            raise ConfigError(f"kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")
        if self.architecture not in ARCHITECTURES:
            raise unknown_name("architecture", self.architecture, ARCHITECTURES)
        if self.architecture == "conv":
            self._check_conv_shape()
        if self.train_masks not in TRAINING_MASKS:
            raise unknown_name("train_masks", self.train_masks, TRAINING_MASKS)

    def _check_conv_shape(self) -> None:
        """Require an image event shape ``[H, W, C]`` that the conv stacks can halve S times."""
        positive_int("conv_channels", self.conv_channels)
        positive_int("conv_downsample", self.conv_downsample)
        if self.conv_residual < 0:
            raise ConfigError(f"conv_residual must be >= 0, got {self.conv_residual!r}")
        scale = 2**self.conv_downsample
        shape = tuple(self.event_shape)
        if len(shape) != 3 or shape[0] % scale or shape[1] % scale:
            raise ConfigError(
                f"architecture='conv' needs images [H, W, C] with H and W divisible by "
                f"2^conv_downsample = {scale}, got event_shape {shape}"
            )

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Return the decoder family and preview clipping the data call for.

        A Bernoulli decoder for ``"binary"`` data, a discretised logistic with
        ``spec.num_levels`` levels for ``"grey"`` data, a Gaussian for ``"continuous"`` data;
        decoder means are clipped to [0, 1] for image data (binary, grey, or continuous data
        that was quantised).
        """
        kwargs: dict[str, Any] = {"likelihood": _DEFAULT_LIKELIHOOD[spec.data_type]}
        if spec.data_type == "grey":
            kwargs["num_levels"] = spec.num_levels
        if spec.data_type != "continuous" or spec.num_levels is not None:
            kwargs["clip_range"] = (0.0, 1.0)
        return kwargs

    @classmethod
    def from_spec(cls, spec: DataSpec, **overrides: Any) -> Self:
        """Build the model for ``spec``; an explicit ``likelihood`` override picks its levels."""
        if overrides.get("likelihood") == "discretized-logistic" and "num_levels" not in overrides:
            overrides = {**overrides, "num_levels": spec.num_levels}
        return super().from_spec(spec, **overrides)

    # ------------------------------------------------------------------ pieces
    def encoder(self) -> GaussianEncoder | ConvGaussianEncoder:
        """Return the Flax encoder module, ``[B, D (+ C)] -> (mean, log_std) [B, K]``.

        A mask-aware encoder's input is ``[B, 2D (+ C)]`` (:meth:`encoder_input`).
        """
        if self.architecture == "conv":
            height, width, channels = self.event_shape
            image_shape = (height, width, channels * (2 if self.mask_aware else 1))
            return ConvGaussianEncoder(image_shape, self.conv_channels,
                                       self.conv_downsample, self.conv_residual,
                                       self.latent_dim)
        return GaussianEncoder(self.hidden, self.latent_dim, ACTIVATIONS[self.activation])

    def decoder(self) -> Decoder | ConvDecoderHead:
        """Return the Flax decoder, ``[B, K (+ C)] -> (out [B, D], log_scale [D] | None)``."""
        if self.architecture == "conv":
            return ConvDecoderHead(tuple(self.event_shape), self.conv_channels,
                                   self.conv_downsample, self.conv_residual,
                                   learn_scale=self.likelihood != "bernoulli")
        return Decoder(
            tuple(reversed(self.hidden)),
            self.num_dims,
            ACTIVATIONS[self.activation],
            learn_scale=self.likelihood != "bernoulli",
        )

    def flatten(self, batch: Batch | jax.Array) -> Float[Array, "b d"]:
        """Check ``batch`` is ``[B, *event_shape]`` and return it as floats ``[B, D]``."""
        x, _ = self.check_batch(batch)
        return x.reshape(x.shape[0], self.num_dims)

    def inputs(self, batch: Batch | jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Return flat ``x [B, D]`` and the conditioning vector ``c [B, C]`` of ``batch``.

        The VAE is unconditional (``c`` is ``None``); :class:`~genjax_models.latent.cvae.CVAE`
        returns one-hot labels.
        """
        return self.flatten(batch), None

    def sample_condition(self, labels: jax.Array | None) -> jax.Array | None:
        """Return the conditioning vector ``c [num, C]`` for checked sample labels (VAE: None)."""
        del labels
        return None

    def encoder_input(
        self, x: jax.Array, c: jax.Array | None = None, observed: jax.Array | None = None
    ) -> Float[Array, "b e"]:
        """Return the encoder's input for flat ``x [B, D]``: x, then ``c [B, C]`` if given.

        A mask-aware model interleaves the zeroed input and the mask entry by entry,
        ``[x_1 m_1, m_1, x_2 m_2, m_2, ...]`` (``[B, 2D]``; for images, 2 C_img channels per
        pixel), with m = ``observed`` (bools ``[B, D]``) or all ones; the values at missing
        entries never reach the network.
        """
        if self.mask_aware:
            seen = jnp.ones(x.shape, bool) if observed is None else observed
            x = jnp.stack([jnp.where(seen, x, 0.0), seen.astype(x.dtype)], axis=-1)
            x = x.reshape(x.shape[0], -1)
        return x if c is None else jnp.concatenate([x, c.astype(x.dtype)], axis=-1)

    def encode(
        self,
        params: Params,
        x: jax.Array,
        c: jax.Array | None = None,
        observed: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Return q(z | x[, c]) as ``(mean, log_std)``, each ``[B, K]``, for flat ``x [B, D]``.

        A conditioning vector ``c [B, C]`` is concatenated to the encoder's input; a
        mask-aware encoder also sees ``observed`` (bools ``[B, D]``, default all True).
        """
        h = self.encoder_input(x, c, observed)
        return self.encoder().apply({"params": params["encoder"]}, h)

    def decode(
        self, params: Params, z: jax.Array, c: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array | None]:
        """Return the decoder output ``(out [B, D], log_scale [D] | None)`` for ``z [B, K]``.

        A conditioning vector ``c [B, C]`` is concatenated to the decoder's input.
        """
        h = z if c is None else jnp.concatenate([z, c.astype(z.dtype)], axis=-1)
        return self.decoder().apply({"params": params["decoder"]}, h)

    def log_likelihood(
        self, params: Params, x: jax.Array, z: jax.Array, c: jax.Array | None = None
    ) -> jax.Array:
        """Compute log p(x | z[, c]) summed over dimensions.

        Flat ``x [B, D]``, ``z [B, K]`` (and ``c [B, C]``) -> ``[B]``.
        """
        out, log_scale = self.decode(params, z, c)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, out)
        if self.likelihood == "gaussian":
            return gaussian_log_likelihood(x, out, log_scale)
        return discretized_logistic_log_likelihood(x, out, log_scale, self.num_levels)

    def log_likelihood_terms(
        self, params: Params, x: jax.Array, z: jax.Array, c: jax.Array | None = None
    ) -> Float[Array, "b d"]:
        """Compute log p(x_d | z[, c]) per dimension, ``[B, D]`` (its row sums: log_likelihood).

        The likelihood functions sum over their last axis; a trailing axis of size 1 makes
        that sum the identity.
        """
        out, log_scale = self.decode(params, z, c)
        xs, outs = x[..., None], out[..., None]
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(xs, outs)
        if self.likelihood == "gaussian":
            return gaussian_log_likelihood(xs, outs, log_scale[..., None])
        return discretized_logistic_log_likelihood(xs, outs, log_scale[..., None],
                                                   self.num_levels)

    def bound_pieces(
        self, params: Params, batch: Batch | jax.Array, observed: jax.Array | None = None
    ) -> tuple[Any, Any, Any]:
        """Return ``(x [B, D], encode: x -> (mean, log_std), log_lik: (x, z) -> [B])``.

        The two functions close over ``params`` and the batch's conditioning vector, in the
        form :mod:`genjax_models.latent.bounds` takes. With ``observed`` (bools ``[B, D]``)
        they are the pieces of the bound on log p(x_o): the encoder sees the mask (if it is
        mask-aware) and ``log_lik`` sums log p(x_d | z) over the observed d only.
        """
        x, c = self.inputs(batch)

        def encode(x: jax.Array) -> tuple[jax.Array, jax.Array]:
            return self.encode(params, x, c, observed)

        def log_lik(x: jax.Array, z: jax.Array) -> jax.Array:
            if observed is None:
                return self.log_likelihood(params, x, z, c)
            return masked_sum(observed, self.log_likelihood_terms(params, x, z, c))

        return x, encode, log_lik

    # ------------------------------------------------------------------- prior
    def prior_log_prob(self, params: Params, z: Float[Array, "... k"]) -> Float[Array, "..."]:
        """Return log p(z) for ``z [..., K]``; the VAE's prior is N(0, I_K) (no parameters)."""
        del params
        return standard_normal_log_prob(z)

    def sample_latent(
        self, params: Params, key: jax.Array, num: int, options: dict[str, Any]
    ) -> Float[Array, "num k"]:
        """Draw ``z [num, K]`` from the prior (the VAE: N(0, I)); ``options`` are ``sample``'s."""
        del params, options
        return jax.random.normal(key, (num, self.latent_dim))

    def kl_terms(
        self,
        params: Params,
        mean: Float[Array, "b k"],
        log_std: Float[Array, "b k"],
        z: Float[Array, "n b k"],
    ) -> tuple[Float[Array, " b"], jax.Array]:
        """Return ``(KL [B], the training KL term)`` for q = N(mean, diag(exp(log_std)^2)).

        The VAE's KL(q || N(0, I)) is analytic (``z``, the reparameterised samples, unused);
        the training term applies the free-bits floor, sum_k max(lambda, mean_b KL_bk).
        """
        del params, z
        kl_per_dim = gaussian_kl_standard_per_dim(mean, log_std)  # [B, K]
        return jnp.sum(kl_per_dim, axis=-1), free_bits_kl(kl_per_dim, self.free_bits)

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise ``{"encoder": ..., "decoder": ...}`` (Flax ``params`` collections)."""
        x, c = self.inputs(batch)
        enc_key, dec_key = jax.random.split(key)
        z = jnp.zeros((x.shape[0], self.latent_dim), x.dtype)
        if c is not None:
            z = jnp.concatenate([z, c.astype(z.dtype)], axis=-1)
        return {
            "encoder": self.encoder().init(enc_key, self.encoder_input(x, c))["params"],
            "decoder": self.decoder().init(dec_key, z)["params"],
        }

    def loss(
        self,
        params: Params,
        batch: Batch | jax.Array,
        key: jax.Array,
        *,
        step: int | jax.Array | None = None,
    ) -> tuple[jax.Array, Metrics]:
        """Compute the training loss (:meth:`bound_loss`), plus the masked term if mask-aware.

        A mask-aware model draws one random mask per example
        (:func:`~genjax_models.latent.training_masks.random_training_masks`) and adds
        ``mask_weight`` times :meth:`bound_loss` of the masked batch (its bound is on
        log p(x_o)); its metrics gain ``masked_bound`` (mean bound on log p(x_o), nats) and
        ``observed_fraction``. All other metrics are those of the fully observed batch.
        """
        loss, metrics = self.bound_loss(params, batch, key, step=step)
        if not self.mask_aware:
            return loss, metrics
        mask_key, masked_key = jax.random.split(jax.random.fold_in(key, 1))
        observed = random_training_masks(mask_key, self.flatten(batch).shape[0],
                                         tuple(self.event_shape), self.train_masks)
        masked_loss, masked = self.bound_loss(params, batch, masked_key, step=step,
                                              observed=observed)
        loss = loss + self.mask_weight * masked_loss
        return loss, {
            **metrics,
            "loss": loss,
            "masked_bound": -masked["nll"],
            "observed_fraction": jnp.mean(observed.astype(loss.dtype)),
        }

    def bound_loss(
        self,
        params: Params,
        batch: Batch | jax.Array,
        key: jax.Array,
        *,
        step: int | jax.Array | None = None,
        observed: jax.Array | None = None,
    ) -> tuple[jax.Array, Metrics]:
        """Compute the negative ELBO, or its beta / warm-up / free-bits form.

        ELBO(x) = 1/n sum_{i=1..n} log p(x | z_i) - KL(q(z | x) || N(0, I)),
        z_i = mean + std * eps_i, n = ``num_importance``; the loss is
        -mean_b 1/n sum_i log p(x_b | z_i) + w(step) * sum_k max(lambda, mean_b KL_bk)
        (module docstring), which equals -mean_b ELBO(x_b) for the default settings.

        Args:
          params, batch, key: as in the protocol.
          step: optimiser steps taken so far (the trainer passes it); ``None`` applies the
            full weight ``beta`` (no warm-up).
          observed: bools ``[B, D]``: the bound is then on log p(x_o) (only the observed
            entries' likelihood terms; :meth:`bound_pieces`).

        Returns:
          ``(loss, metrics)`` with metrics ``loss``, ``elbo`` (mean ELBO, always with weight
          1 and no floor), ``recon`` (mean -E_q log p(x | z)), ``kl`` (mean KL),
          ``kl_weight`` (w(step)) and ``nll`` (-elbo, an upper bound on the NLL in nats; the
          trainer reports it as data-space ``bits_per_dim``).
        """
        x, encode, log_likelihood = self.bound_pieces(params, batch, observed)
        mean, log_std = encode(x)
        eps = jax.random.normal(key, (self.num_importance, *mean.shape), mean.dtype)
        z = mean + jnp.exp(log_std) * eps
        log_lik = jax.vmap(functools.partial(log_likelihood, x))(z).mean(axis=0)
        kl, kl_term = self.kl_terms(params, mean, log_std, z)
        elbo = jnp.mean(log_lik - kl)
        weight = kl_weight(step, self.beta, self.kl_warmup_steps)
        loss = -jnp.mean(log_lik) + weight * kl_term
        metrics = {
            "loss": loss,
            "elbo": elbo,
            "recon": -jnp.mean(log_lik),
            "kl": jnp.mean(kl),
            "kl_weight": weight,
            "nll": -elbo,
        }
        return loss, metrics

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples: z ~ p(z) (:meth:`sample_latent`), then x ~ p(x | z) (or its mean).

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          labels: must be ``None`` (the VAE is unconditional).
          **options: ``mean`` (default False): return decoder means instead of draws:
            Bernoulli probabilities, or the Gaussian / logistic location (clipped to
            ``clip_range`` / [0, 1]).

        Returns:
          ``[num, *event_shape]`` floats. Draws are in {0, 1} (Bernoulli), on the grid
          ``level / (L - 1)`` (discretised logistic) or real (Gaussian).
        """
        c = self.sample_condition(self.check_sample_labels(labels, num))
        resolved = self.resolve_sample_options(options)
        mean = resolved["mean"]
        z_key, x_key = jax.random.split(key)
        z = self.sample_latent(params, z_key, num, resolved)
        return self.draw_data(params, x_key, z, c, mean).reshape(num, *self.event_shape)

    def draw_data(
        self,
        params: Params,
        key: jax.Array,
        z: Float[Array, "b k"],
        c: jax.Array | None = None,
        mean: bool = False,
    ) -> Float[Array, "b d"]:
        """Draw flat x ~ p(x | z[, c]) ``[B, D]``, or return the decoder means if ``mean``."""
        out, log_scale = self.decode(params, z, c)
        if self.likelihood == "bernoulli":
            probs = jax.nn.sigmoid(out)
            return probs if mean else jax.random.bernoulli(key, probs).astype(probs.dtype)
        if self.likelihood == "gaussian":
            if mean:
                return out if self.clip_range is None else jnp.clip(out, *self.clip_range)
            return out + jnp.exp(log_scale) * jax.random.normal(key, out.shape, out.dtype)
        top = self.num_levels - 1
        if mean:
            return jnp.clip(out, 0.0, 1.0)
        y = out + jnp.exp(log_scale) * jax.random.logistic(key, out.shape, out.dtype)
        return jnp.clip(jnp.round(y * top), 0, top) / top

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Estimate log p(x) per example by importance sampling (IWAE-k), in nats.

        Args:
          params: model parameters.
          batch: ``[B, *event_shape]``.
          key: PRNG key.
          **options: ``num_samples`` k (static; default ``eval_samples``; k = 1 is the Monte
            Carlo ELBO) and ``chunk_size`` (static; default ``eval_chunk``).

        Returns:
          ``[B]``: a stochastic lower bound on log p(x) (see :func:`importance_log_prob`).
        """
        opts = self.resolve_log_prob_options(options)
        x, encode, log_likelihood = self.bound_pieces(params, batch)
        k = self.eval_samples if opts["num_samples"] is None else opts["num_samples"]
        chunk = self.eval_chunk if opts["chunk_size"] is None else opts["chunk_size"]
        return importance_log_prob(
            key,
            x,
            encode,
            log_likelihood,
            positive_int("num_samples", k),
            positive_int("chunk_size", chunk),
            functools.partial(self.prior_log_prob, params),
        )

    def diagnostics(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> dict[str, float]:
        """Return the active units of the encoder on ``batch`` (Burda et al., 2016).

        Returns:
          ``{"active_units": number of u with Var_x(E_q[z_u | x]) > 0.01, "latent_dim": K,
          "mean_unit_activity": mean_u Var_x(E_q[z_u | x])}``.
        """
        del key
        x, encode, _ = self.bound_pieces(params, batch)
        activity = unit_activity(encode(x)[0])
        return {
            "active_units": float(jnp.sum(activity > ACTIVE_UNIT_THRESHOLD)),
            "latent_dim": float(self.latent_dim),
            "mean_unit_activity": float(jnp.mean(activity)),
        }

    def completion_options(
        self, options: dict[str, Any], num_completions: int
    ) -> tuple[int, float]:
        """Check ``complete``'s options and count; return ``(k, fill)``."""
        opts = self.resolve_complete_options(options)
        k = self.eval_samples if opts["num_samples"] is None else opts["num_samples"]
        positive_int("num_completions", num_completions)
        return positive_int("num_samples", k), opts["fill"]

    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion:
        """Complete partly observed data by importance sampling (:mod:`.vae_completion`).

        The encoder sees x with its missing entries set to ``fill`` (a mask-aware encoder:
        zeros and the mask); k importance samples give the IWAE-k bound on log p(x_observed)
        (the missing dimensions drop out of the factorised likelihood), and each completion
        resamples one of them by its weight, then draws the missing entries from the decoder.

        Args:
          params: model parameters.
          key: PRNG key.
          batch: ``[B, *event_shape]`` (with labels for conditional models).
          observed: bool mask ``[*event_shape]`` or ``[B, *event_shape]`` (True = observed).
          num_completions: n, completions per example (static).
          **options: ``num_samples`` k (default ``eval_samples``), ``fill`` (default 0).

        Returns:
          :class:`~genjax_models.completion.Completion` with ``exact`` all False: the
          completions approximate p(x_missing | x_observed) and ``log_p_observed`` is a
          stochastic lower bound, both exact only as k grows.
        """
        if not self.can_complete:
            raise cannot_complete(self.name)
        k, fill = self.completion_options(options, num_completions)
        x, c = self.inputs(batch)
        num = x.shape[0]
        seen = flat_observed(observed, self.event_shape, num)
        mean, log_std = self.encode(params, jnp.where(seen, x, fill), c, seen)
        samples, log_p = importance_completion(
            key, x, seen, mean, log_std,
            lambda z: self.log_likelihood_terms(params, x, z, c),
            functools.partial(self.prior_log_prob, params),
            lambda kk, z: self.draw_data(params, kk, z, c),
            k, num_completions, self.eval_chunk,
        )
        return Completion(samples.reshape(num_completions, num, *self.event_shape), log_p,
                          jnp.zeros((num,), bool))

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: a lower bound, ``"elbo"`` for k = 1, else ``"iwae-k"``."""
        opts = self.resolve_log_prob_options(options)
        k = self.eval_samples if opts["num_samples"] is None else opts["num_samples"]
        estimator = "elbo" if k == 1 else f"iwae-{k}"
        return LogProbInfo("lower-bound", estimator, {"num_samples": k})
