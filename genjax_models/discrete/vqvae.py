"""VQ-VAE (van den Oord et al., 2017) with a gated-PixelCNN prior over its grid of codes.

Model. A convolutional encoder maps an image ``x [H, W, C]`` to a grid ``z_e [h, w, D]``
(h = H / 2^S); each grid vector is replaced by its nearest code of a codebook ``e [K, D]``,
giving discrete codes ``k(x) [h, w]`` in {0..K-1} and ``z_q = e_k(x)``; a convolutional
decoder maps ``z_q`` to p(x | k) (Bernoulli logits for binary data, a discretised logistic
per pixel with a learned per-pixel log-scale for grey levels). The prior p(k) over code
grids is a categorical gated PixelCNN in raster order
(:class:`~genjax_models.autoregressive.pixelcnn.PixelCNN`, codes fed as k / (K - 1)), so

    p(x) = sum_k p(k) p(x | k),   k ranging over the K^(h w) code grids.

Training loss per example (nats; the codebook is not learned by gradient):

    -log p(x | k(x))                          reconstruction, through the straight-through z_q
    + commitment_weight ||z_e - sg(z_q)||^2   summed over the grid (the paper's beta = 0.25)
    - log p_prior(sg(k(x)))                   the prior's exact NLL of the current codes

The prior is trained jointly on stop-gradient codes (the paper fits it afterwards, on frozen
codes; jointly it follows the codes as they move, one run instead of two). After every
optimiser step :meth:`VQVAE.post_update` moves the codebook by EMA with Laplace smoothing
and restarts dead codes (:mod:`genjax_models.discrete.vector_quantizer`); the trainer calls it
for every model with ``has_post_update``.

``log_prob`` is the deterministic-encoder bound: q(k | x) puts all its mass on k(x), so the
ELBO is log p(x | k(x)) + log p(k(x)) - 0 (q's entropy is zero), a lower bound on log p(x)
(tight when one code grid explains x), comparable with the other families in nats and
bits/dim. Sampling draws a code grid from the PixelCNN (h w network passes), decodes it and
draws x. ``diagnostics`` reports the codebook usage on the evaluated split.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genjax_models.autoregressive.base import TEMPERATURE, check_temperature
from genjax_models.autoregressive.pixelcnn import PixelCNN
from genjax_models.data import DataSpec
from genjax_models.data.batch import Batch
from genjax_models.discrete import vector_quantizer as vq
from genjax_models.errors import ConfigError
from genjax_models.fields import Option
from genjax_models.latent.likelihoods import (
    bernoulli_log_likelihood,
    discretized_logistic_log_likelihood,
)
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params, RunRecipe
from genjax_models.nn.conv_autoencoder import ConvDecoder, ConvEncoder

LIKELIHOODS: tuple[str, ...] = ("bernoulli", "discretized-logistic")


@dataclasses.dataclass(frozen=True)
class VQVAE(ModelBase):
    """VQ-VAE with EMA codebook, dead-code restart and a PixelCNN prior (module docstring).

    Attributes:
      likelihood: decoder family, "bernoulli" (binary data) or "discretized-logistic" (grey
        levels on level / (num_levels - 1)); chosen from the data.
      num_levels: L, the grey levels of the discretised logistic (from the data).
      num_codes: K, the codebook size (>= 2).
      code_dim: D, the dimension of each code vector.
      channels: F, channels of the convolutional encoder and decoder.
      num_downsample: S, stride-2 stages: the code grid is (H / 2^S, W / 2^S).
      num_residual: residual blocks in the encoder and in the decoder.
      commitment_weight: beta, weight of ||z_e - sg(z_q)||^2 in the loss (>= 0).
      ema_decay: gamma of the EMA codebook update, in [0, 1).
      laplace_epsilon: eps of the Laplace smoothing of the EMA counts (>= 0).
      restart_threshold: a code whose EMA count falls below this is restarted (0: never).
      restart_every: restart dead codes after every this many optimiser steps.
      prior_channels: F of the gated PixelCNN prior over the code grid.
      prior_layers: gated layers of the prior.
    """

    likelihood: str = "bernoulli"
    num_levels: int | None = None
    num_codes: int = 64
    code_dim: int = 16
    channels: int = 32
    num_downsample: int = 2
    num_residual: int = 1
    commitment_weight: float = 0.25
    ema_decay: float = 0.99
    laplace_epsilon: float = 1e-5
    restart_threshold: float = 1.0
    restart_every: int = 100
    prior_channels: int = 64
    prior_layers: int = 5

    name: ClassVar[str] = "vqvae"
    labels: ClassVar[str] = "ignores"
    has_post_update: ClassVar[bool] = True
    sample_options: ClassVar[tuple[Option, ...]] = (
        Option("mean", bool, False, "return decoder means (Bernoulli probabilities), not draws"),
        TEMPERATURE,
    )
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="mnist5k",
        binarize="dynamic",
        train={
            "steps": 2000,
            "batch_size": 64,
            "lr": 1e-3,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 20,
        },
        expected="3-5 minutes on a 2-core CPU; test bound ~200 nats (vq-elbo, 0.37 bits/dim), "
        "all 64 codes used (experiments/configs/vqvae_mnist5k.py)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"vqvae: unknown likelihood {self.likelihood!r}; valid: {', '.join(LIKELIHOODS)}"
            )
        if self.likelihood == "discretized-logistic" and (
            self.num_levels is None or self.num_levels < 2
        ):
            raise ConfigError("likelihood='discretized-logistic' needs num_levels >= 2")
        if len(self.event_shape) != 3:
            raise ConfigError(
                f"vqvae models images: event_shape must be (H, W, C), got {self.event_shape}"
            )
        if self.num_codes < 2:
            raise ConfigError(f"num_codes must be >= 2, got {self.num_codes!r}")
        for field in ("code_dim", "channels", "restart_every", "prior_channels", "prior_layers"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{field} must be >= 1, got {getattr(self, field)!r}")
        for field in ("num_downsample", "num_residual"):
            if getattr(self, field) < 0:
                raise ConfigError(f"{field} must be >= 0, got {getattr(self, field)!r}")
        height, width, _ = self.event_shape
        factor = 2**self.num_downsample
        if height % factor or width % factor:
            raise ConfigError(
                f"vqvae: image size {height}x{width} is not divisible by 2^num_downsample = "
                f"{factor}; pick num_downsample so that it is (e.g. 2 for 28x28, 1 for 8x8)"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        for field in ("commitment_weight", "laplace_epsilon", "restart_threshold"):
            value = getattr(self, field)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"{field} must be a finite number >= 0, got {value!r}")

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Bernoulli for binary data, a discretised logistic for grey levels.

        Raises:
          ConfigError: continuous data (binarise or keep grey levels instead).
        """
        if spec.data_type == "binary":
            return {"likelihood": "bernoulli"}
        if spec.data_type == "grey":
            return {"likelihood": "discretized-logistic", "num_levels": spec.num_levels}
        raise ConfigError(
            "vqvae models discrete pixels, but the data are continuous: binarise them with "
            "--set data.binarize=dynamic (or threshold(T)), or keep grey levels with "
            "data.dequantize=none"
        )

    # ------------------------------------------------------------------ pieces
    @property
    def grid_shape(self) -> tuple[int, int]:
        """(h, w), the shape of the code grid."""
        factor = 2**self.num_downsample
        return self.event_shape[0] // factor, self.event_shape[1] // factor

    def encoder(self) -> ConvEncoder:
        """The encoder, ``[B, H, W, C] -> z_e [B, h, w, D]``."""
        return ConvEncoder(self.channels, self.num_downsample, self.num_residual, self.code_dim)

    def decoder(self) -> ConvDecoder:
        """The decoder, ``z_q [B, h, w, D] -> [B, H, W, C]`` (logits or logistic means)."""
        return ConvDecoder(
            self.channels, self.num_downsample, self.num_residual, self.event_shape[-1]
        )

    def prior(self) -> PixelCNN:
        """The categorical PixelCNN over code grids ``[h, w, 1]`` with K levels."""
        return PixelCNN(
            event_shape=(*self.grid_shape, 1),
            likelihood="categorical",
            num_levels=self.num_codes,
            channels=self.prior_channels,
            num_layers=self.prior_layers,
        )

    def codes_as_prior_input(self, codes: Int[Array, "b h w"]) -> Float[Array, "b q"]:
        """Codes ``[B, h, w]`` -> the prior's flat grid values k / (K - 1), ``[B, h w]``."""
        flat = codes.reshape(codes.shape[0], -1).astype(jnp.result_type(float))
        return flat / (self.num_codes - 1)

    def encode(self, params: Params, x: Float[Array, "b H W C"]) -> Float[Array, "b h w d"]:
        """Return the encoder's grid z_e ``[B, h, w, D]``."""
        return self.encoder().apply({"params": params["encoder"]}, x)

    def quantize(
        self, params: Params, z_e: Float[Array, "b h w d"]
    ) -> tuple[Int[Array, "b h w"], Float[Array, "b h w d"]]:
        """Return the nearest codes ``[B, h, w]`` and their vectors z_q ``[B, h, w, D]``."""
        embedding = jax.lax.stop_gradient(params["codebook"].embedding)
        flat = z_e.reshape(-1, self.code_dim)
        codes = vq.nearest_codes(flat, embedding)
        z_q = embedding[codes].reshape(z_e.shape)
        return codes.reshape(z_e.shape[:-1]), z_q

    def decode_log_likelihood(
        self, params: Params, x: Float[Array, "b H W C"], z_q: Float[Array, "b h w d"]
    ) -> Float[Array, " b"]:
        """Return log p(x | z_q) per example, ``[B]`` nats."""
        out = self.decoder().apply({"params": params["decoder"]}, z_q)
        x_flat, out_flat = x.reshape(x.shape[0], -1), out.reshape(x.shape[0], -1)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x_flat, out_flat)
        return discretized_logistic_log_likelihood(
            x_flat, out_flat, params["log_scale"], self.num_levels
        )

    def prior_log_prob(self, params: Params, codes: Int[Array, "b h w"]) -> Float[Array, " b"]:
        """Return the prior's exact log p(k) per example, ``[B]`` nats."""
        return self.prior().flat_log_prob(params["prior"], self.codes_as_prior_input(codes))

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise the networks; the codes start at encoder outputs of this batch."""
        x, _ = self.check_batch(batch)
        enc_key, dec_key, book_key, prior_key = jax.random.split(key, 4)
        encoder = self.encoder().init(enc_key, x)["params"]
        z_e = self.encoder().apply({"params": encoder}, x)
        book = vq.init_codebook(book_key, z_e.reshape(-1, self.code_dim), self.num_codes)
        decoder = self.decoder().init(dec_key, z_e)["params"]
        codes = jnp.zeros((x.shape[0], *self.grid_shape), jnp.int32)
        prior = self.prior().init_params(prior_key, self.codes_as_prior_input(codes), None)
        params = {"encoder": encoder, "decoder": decoder, "codebook": book, "prior": prior}
        if self.likelihood == "discretized-logistic":
            params["log_scale"] = jnp.full((self.num_dims,), -3.0, x.dtype)
        return params

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Reconstruction + commitment + prior NLL (module docstring); ``key`` is unused.

        Returns:
          ``(loss, metrics)``: ``recon`` (-log p(x | k(x))), ``commitment``, ``prior_nll``,
          ``nll`` (-(the log_prob bound)), ``perplexity`` and ``codes_used`` of the batch.
        """
        del key
        x, _ = self.check_batch(batch)
        z_e = self.encode(params, x)
        codes, z_q = self.quantize(params, z_e)
        recon = -self.decode_log_likelihood(params, x, vq.straight_through(z_e, z_q))
        commitment = jnp.sum(
            jnp.square(z_e - jax.lax.stop_gradient(z_q)), axis=(1, 2, 3)
        )
        prior_nll = -self.prior_log_prob(params, jax.lax.stop_gradient(codes))
        loss = jnp.mean(recon + self.commitment_weight * commitment + prior_nll)
        usage = vq.codebook_usage(codes, self.num_codes)
        metrics = {
            "loss": loss,
            "nll": jnp.mean(recon + prior_nll),
            "recon": jnp.mean(recon),
            "commitment": jnp.mean(commitment),
            "prior_nll": jnp.mean(prior_nll),
            **usage,
        }
        return loss, metrics

    def post_update(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, *, step: jax.Array
    ) -> Params:
        """Move the codebook after an optimiser step: EMA update, then dead-code restart.

        The encoder (already updated) is run on ``batch`` again; after optimiser step
        ``step + 1`` a multiple of ``restart_every``, codes with EMA count below
        ``restart_threshold`` are restarted at random encoder outputs of the batch.
        """
        x, _ = self.check_batch(batch)
        flat = jax.lax.stop_gradient(self.encode(params, x)).reshape(-1, self.code_dim)
        book = params["codebook"]
        codes = vq.nearest_codes(flat, book.embedding)
        book = vq.ema_update(book, flat, codes, self.ema_decay, self.laplace_epsilon)
        due = (step + 1) % self.restart_every == 0
        dead = vq.dead_codes(book, self.restart_threshold) & due
        book = vq.restart_dead_codes(book, key, flat, dead)
        return {**params, "codebook": book}

    def codes(self, params: Params, batch: Batch | jax.Array) -> Int[Array, "b h w"]:
        """Return the code grid k(x) ``[B, h, w]`` of every example."""
        x, _ = self.check_batch(batch)
        return self.quantize(params, self.encode(params, x))[0]

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Return log p(x | k(x)) + log p(k(x)) <= log p(x) per example, ``[B]`` nats."""
        del key
        self.resolve_log_prob_options(options)
        x, _ = self.check_batch(batch)
        codes, z_q = self.quantize(params, self.encode(params, x))
        return self.decode_log_likelihood(params, x, z_q) + self.prior_log_prob(params, codes)

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """The deterministic-encoder ELBO, a lower bound on log p(x)."""
        self.resolve_log_prob_options(options)
        return LogProbInfo(
            "lower-bound",
            "vq-elbo",
            {"q": "point mass at the nearest codes (entropy 0)", "prior": "gated pixelcnn"},
        )

    def decode_codes(
        self, params: Params, key: jax.Array, codes: Int[Array, "n h w"], mean: bool = False
    ) -> Float[Array, "n ..."]:
        """Decode code grids to images ``[n, *event_shape]``: draws, or means if ``mean``."""
        z_q = params["codebook"].embedding[codes]
        out = self.decoder().apply({"params": params["decoder"]}, z_q)
        if self.likelihood == "bernoulli":
            probs = jax.nn.sigmoid(out)
            return probs if mean else jax.random.bernoulli(key, probs).astype(probs.dtype)
        if mean:
            return jnp.clip(out, 0.0, 1.0)
        top = self.num_levels - 1
        log_scale = params["log_scale"].reshape(self.event_shape)
        noise = jax.random.logistic(key, out.shape, out.dtype)
        return jnp.clip(jnp.round((out + jnp.exp(log_scale) * noise) * top), 0, top) / top

    def sample_codes(
        self, params: Params, key: jax.Array, num: int, temperature: float = 1.0
    ) -> Int[Array, "num h w"]:
        """Draw ``num`` code grids from the PixelCNN prior (h w network passes)."""
        grid = self.prior().sample(params["prior"], key, num, temperature=temperature)
        codes = jnp.round(grid[..., 0] * (self.num_codes - 1)).astype(jnp.int32)
        return jnp.clip(codes, 0, self.num_codes - 1)

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw code grids from the prior and decode them, ``[num, *event_shape]``.

        Options: ``mean`` (decoder means instead of draws), ``temperature`` (of the prior).
        """
        self.check_sample_labels(labels, num)
        resolved = self.resolve_sample_options(options)
        temperature = check_temperature(resolved["temperature"])
        code_key, x_key = jax.random.split(key)
        codes = self.sample_codes(params, code_key, num, temperature)
        return self.decode_codes(params, x_key, codes, resolved["mean"])

    def diagnostics(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> dict[str, float]:
        """Codebook usage on ``batch``: codes used (count and fraction of K), perplexity."""
        del key
        usage = vq.codebook_usage(self.codes(params, batch), self.num_codes)
        used = float(usage["codes_used"])
        return {
            "codes_used": used,
            "codes_used_fraction": used / self.num_codes,
            "code_perplexity": float(usage["perplexity"]),
        }
