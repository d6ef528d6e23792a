"""Noise-level (time) embeddings and a class-label embedding with a null label.

A diffusion network is told the noise level through a scalar feature c per example (the time t, or
EDM's c_noise = log(sigma) / 4; see ``diffusion/parameterization.py``). It is lifted to a vector:

- sinusoidal (Vaswani et al. 2017; Ho et al. 2020): with k = 0..dim/2 - 1 and
  omega_k = max_period^(-k / (dim/2)), emb(c) = [sin(scale c omega_k), cos(scale c omega_k)];
  ``scale`` maps the feature's range onto the frequencies (1000 turns t in [0, 1] into DDPM's step
  index; it also suits c_noise in about [-1.6, 1.3]);
- Gaussian Fourier (Tancik et al. 2020; Song et al. 2021): emb(c) = [sin(2 pi W c), cos(2 pi W c)]
  with fixed random W ~ N(0, scale^2) of size dim/2 (stored as a parameter but never trained).

:class:`TimeEmbedding` follows either with the usual MLP Dense(hidden) -> SiLU -> Dense(dim).
:class:`LabelEmbedding` embeds K classes plus one extra "null" label (index K; any negative label
maps to it too), which classifier-free guidance uses as the unconditional input; :func:`drop_labels`
replaces labels by the null label at random during training. All map ``[B] -> [B, dim]``.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError, unknown_name

EMBEDDINGS: tuple[str, ...] = ("sinusoidal", "fourier")
_DEFAULT_SCALE = {"sinusoidal": 1000.0, "fourier": 16.0}


def _as_batch(t: jax.Array, batch: int | None = None) -> jax.Array:
    """Return ``t`` as a ``[B]`` vector (a scalar is broadcast to ``batch``, or to ``[1]``)."""
    t = jnp.asarray(t)
    if t.ndim == 0:
        return jnp.broadcast_to(t, (1 if batch is None else batch,))
    if t.ndim != 1 or (batch is not None and t.shape[0] != batch):
        expected = "[B]" if batch is None else f"[{batch}]"
        raise ShapeError(
            f"expected a scalar or {expected} noise feature, got shape {tuple(t.shape)}"
        )
    return t


def _check_even(dim: int) -> None:
    if dim < 2 or dim % 2:
        raise ConfigError(f"an embedding dimension must be even and >= 2, got {dim}")


def sinusoidal_embedding(
    t: jax.Array, dim: int, scale: float = 1000.0, max_period: float = 10000.0
) -> jax.Array:
    """Embed ``t [B]`` as ``[B, dim]`` sines and cosines of geometrically spaced frequencies.

    Args:
      t: ``[B]`` (or scalar) noise features.
      dim: even embedding width.
      scale: multiplies t before the frequencies are applied.
      max_period: the longest period (lowest frequency 1 / max_period).

    Returns:
      ``[B, dim]``: [sin(scale t omega_k)]_k followed by [cos(scale t omega_k)]_k.
    """
    _check_even(dim)
    t = _as_batch(t)
    half = dim // 2
    dtype = jnp.result_type(t.dtype, jnp.float32)
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=dtype) / half)
    args = scale * t.astype(dtype)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class SinusoidalEmbedding(nn.Module):
    """Parameter-free ``[B] -> [B, dim]`` sinusoidal embedding (:func:`sinusoidal_embedding`)."""

    dim: int
    scale: float = 1000.0
    max_period: float = 10000.0

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        return sinusoidal_embedding(t, self.dim, self.scale, self.max_period)


class GaussianFourierEmbedding(nn.Module):
    """``[B] -> [B, dim]``: [sin(2 pi W t), cos(2 pi W t)], fixed W ~ N(0, scale^2) of size dim/2.

    W lives in the ``params`` collection (so it is saved with the model) behind a stop-gradient, so
    optimisers see a zero gradient for it.
    """

    dim: int
    scale: float = 16.0

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        _check_even(self.dim)
        t = _as_batch(t)
        w = self.param("freqs", nn.initializers.normal(self.scale), (self.dim // 2,))
        args = 2 * math.pi * t[:, None] * jax.lax.stop_gradient(w)[None, :]
        return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class TimeEmbedding(nn.Module):
    """``[B] -> [B, dim]``: a sinusoidal or Fourier embedding followed by Dense -> SiLU -> Dense.

    Attributes:
      dim: output width (also the width of the raw embedding).
      kind: one of :data:`EMBEDDINGS`.
      scale: the embedding's scale (default 1000 for sinusoidal, 16 for Fourier).
      hidden: width of the MLP's hidden layer (default ``4 * dim``).
    """

    dim: int
    kind: str = "sinusoidal"
    scale: float | None = None
    hidden: int | None = None

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        if self.kind not in EMBEDDINGS:
            raise unknown_name("time embedding", self.kind, EMBEDDINGS)
        scale = _DEFAULT_SCALE[self.kind] if self.scale is None else self.scale
        if self.kind == "sinusoidal":
            emb = SinusoidalEmbedding(self.dim, scale)(t)
        else:
            emb = GaussianFourierEmbedding(self.dim, scale)(t)
        emb = nn.silu(nn.Dense(self.hidden or 4 * self.dim)(emb))
        return nn.Dense(self.dim)(emb)


class LabelEmbedding(nn.Module):
    """``[B]`` integer labels -> ``[B, dim]``: K learned class vectors plus a null vector (index K).

    Labels outside ``[0, K)`` (e.g. -1, or K itself) select the null vector, the input of the
    unconditional model in classifier-free guidance.
    """

    num_classes: int
    dim: int

    @property
    def null_label(self) -> int:
        """The index of the null label, K."""
        return self.num_classes

    @nn.compact
    def __call__(self, labels: jax.Array) -> jax.Array:
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")
        labels = jnp.asarray(labels)
        if labels.ndim != 1 or not jnp.issubdtype(labels.dtype, jnp.integer):
            raise ShapeError(
                f"expected integer labels of shape [B], got {labels.dtype}{labels.shape}"
            )
        valid = (labels >= 0) & (labels < self.num_classes)
        index = jnp.where(valid, labels, self.num_classes)
        return nn.Embed(self.num_classes + 1, self.dim)(index)


def drop_labels(key: jax.Array, labels: jax.Array, p: float, num_classes: int) -> jax.Array:
    """Replace each label by the null label ``num_classes`` with probability ``p``.

    Args:
      key: PRNG key.
      labels: ``[B]`` integer labels.
      p: drop probability (classifier-free guidance uses about 0.1-0.2).
      num_classes: K (the null label's index).

    Returns:
      ``[B]`` labels.
    """
    drop = jax.random.bernoulli(key, p, labels.shape)
    return jnp.where(drop, jnp.asarray(num_classes, labels.dtype), labels)
