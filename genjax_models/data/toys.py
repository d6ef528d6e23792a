"""2-D toy densities with exact log-densities and entropies, for flows and diffusion.

Each toy is a :class:`Dataset` with fixed ``train`` (20 000) and ``test`` (5 000) arrays
and a JAX ``sampler(key, num) -> float32[num, 2]``. The fixed arrays are drawn with
``numpy.random.RandomState`` (seeds :data:`TRAIN_SEED`, :data:`TEST_SEED`), so they are
identical on every jax version; the JAX samplers draw from the same distributions.

* ``eight-gaussians``: ``p(x) = 1/8 sum_k N(x; c_k, s^2 I)`` with centres
  ``c_k = R (cos(k pi/4), sin(k pi/4))``, ``R = 2``, ``s = 0.2``. Exact ``log_prob``
  via logsumexp; entropy by quadrature (:func:`eight_gaussians_entropy`).
* ``checkerboard``: uniform on the 8 dark unit squares of a 4x4 board on ``[-2, 2]^2``:
  square ``(i, j)``, ``i, j in 0..3``, covers ``[-2+i, -1+i) x [-2+j, -1+j)`` and is
  dark when ``i + j`` is even. ``log p = -log 8`` inside, ``-inf`` outside; entropy
  ``log 8`` exactly.
* ``two-moons``: two interleaved half circles (sklearn ``make_moons`` geometry, shifted
  by ``-(0.5, 0.25)`` so the mean is 0) plus ``N(0, 0.05^2 I)`` noise. No closed-form
  density: ``log_prob = None``, ``entropy = None``.

Labels (int32) are the mixture component, the square index (0..7) or the moon (0/1).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.data.dataset import Dataset
from genjax_models.data.validation import validate_dataset

NUM_TRAIN = 20_000
NUM_TEST = 5_000
TRAIN_SEED = 1
TEST_SEED = 2

EIGHT_GAUSSIANS_RADIUS = 2.0
EIGHT_GAUSSIANS_STD = 0.2
EIGHT_GAUSSIANS_CENTRES = np.stack(
    [
        EIGHT_GAUSSIANS_RADIUS * np.cos(np.arange(8) * np.pi / 4),
        EIGHT_GAUSSIANS_RADIUS * np.sin(np.arange(8) * np.pi / 4),
    ],
    axis=1,
)  # [8, 2]

CHECKERBOARD_LOW = -2.0  # the board covers [-2, 2]^2 with unit squares
CHECKERBOARD_SQUARES = np.array(
    [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=np.int32
)  # [8, 2]: (column i along x, row j along y) of the dark squares
CHECKERBOARD_ENTROPY = math.log(8.0)

TWO_MOONS_NOISE = 0.05
TWO_MOONS_SHIFT = np.array([0.5, 0.25])

_DESCRIPTIONS = {
    "eight-gaussians": "2-D mixture of 8 Gaussians (radius 2, std 0.2); exact log_prob and entropy",
    "checkerboard": (
        "2-D uniform on the 8 dark unit squares of a 4x4 board on [-2,2]^2; exact log_prob"
    ),
    "two-moons": "2-D two interleaved half circles, noise 0.05, centred; sampler only",
}
_SPLITS = f"; fixed {NUM_TRAIN} train / {NUM_TEST} test (RandomState({TRAIN_SEED}/{TEST_SEED}))"
TOY_DESCRIPTIONS = {k: v + _SPLITS for k, v in _DESCRIPTIONS.items()}


# ----------------------------------------------------------------------- eight gaussians
def eight_gaussians_log_prob(x: jax.Array) -> jax.Array:
    """Exact log-density of the eight-Gaussians mixture.

    ``log p(x) = logsumexp_k(-|x - c_k|^2 / (2 s^2)) - log 8 - log(2 pi s^2)``.

    Args:
      x: float ``[B, 2]``.

    Returns:
      float ``[B]`` log-densities in nats.
    """
    x = jnp.asarray(x)
    centres = jnp.asarray(EIGHT_GAUSSIANS_CENTRES, dtype=x.dtype)
    sq = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)  # [B, 8]
    var = EIGHT_GAUSSIANS_STD**2
    return jax.nn.logsumexp(-sq / (2 * var), axis=-1) - math.log(8.0) - math.log(2 * math.pi * var)


def _eight_gaussians_log_prob_np(x: np.ndarray) -> np.ndarray:
    sq = np.sum((x[:, None, :] - EIGHT_GAUSSIANS_CENTRES[None]) ** 2, axis=-1)
    a = -sq / (2 * EIGHT_GAUSSIANS_STD**2)
    m = a.max(axis=-1)
    lse = m + np.log(np.exp(a - m[:, None]).sum(axis=-1))
    return lse - math.log(8.0) - math.log(2 * math.pi * EIGHT_GAUSSIANS_STD**2)


@functools.cache
def eight_gaussians_entropy(step: float = 0.01, half_width: float = 4.0) -> float:
    """Differential entropy ``H = -int p log p`` of eight-Gaussians, by quadrature (nats).

    Uses the trapezoid rule (equal weights; the integrand is ~0 at the edges) on the grid
    ``[-half_width, half_width]^2`` with spacing ``step``, in float64. The integrand is
    smooth and Gaussian-decaying, so the rule converges spectrally: the discretisation
    error is of order ``exp(-2 pi^2 s^2 / step^2)`` (``exp(-790)`` at the default) and the
    truncation error is below ``exp(-(half_width - R)^2 / (2 s^2)) = exp(-50)``; the result
    is accurate to float64 round-off, about 1e-12. The value is close to
    ``log 8 + log(2 pi e s^2) = 1.6984`` (the components barely overlap).
    """
    g = np.arange(-half_width, half_width + step / 2, step)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    logp = _eight_gaussians_log_prob_np(pts)
    return float(-(np.exp(logp) * logp).sum() * step * step)


def _eight_gaussians_np(rng: np.random.RandomState, num: int) -> tuple[np.ndarray, np.ndarray]:
    k = rng.randint(0, 8, size=num)
    x = EIGHT_GAUSSIANS_CENTRES[k] + EIGHT_GAUSSIANS_STD * rng.standard_normal((num, 2))
    return x, k


def eight_gaussians_sample(key: jax.Array, num: int) -> jax.Array:
    """Draw ``num`` points ``c_k + s * eps``, ``k ~ U{0..7}``, ``eps ~ N(0, I)``: ``[num, 2]``."""
    k_key, e_key = jax.random.split(key)
    k = jax.random.randint(k_key, (num,), 0, 8)
    centres = jnp.asarray(EIGHT_GAUSSIANS_CENTRES, dtype=jnp.float32)
    return centres[k] + EIGHT_GAUSSIANS_STD * jax.random.normal(e_key, (num, 2), jnp.float32)


# -------------------------------------------------------------------------- checkerboard
def checkerboard_log_prob(x: jax.Array) -> jax.Array:
    """Exact log-density of the checkerboard: ``-log 8`` on dark squares, ``-inf`` elsewhere.

    A point is inside when ``i = floor(x_0 + 2)`` and ``j = floor(x_1 + 2)`` are both in
    ``0..3`` and ``i + j`` is even (squares are half-open, so ``x = 2`` is outside).

    Args:
      x: float ``[B, 2]``.

    Returns:
      float ``[B]``.
    """
    x = jnp.asarray(x)
    ij = jnp.floor(x - CHECKERBOARD_LOW)
    in_board = jnp.all((ij >= 0) & (ij <= 3), axis=-1)
    dark = jnp.mod(ij[:, 0] + ij[:, 1], 2) == 0
    return jnp.where(in_board & dark, -math.log(8.0), -jnp.inf).astype(x.dtype)


def _checkerboard_np(rng: np.random.RandomState, num: int) -> tuple[np.ndarray, np.ndarray]:
    s = rng.randint(0, 8, size=num)
    x = CHECKERBOARD_LOW + CHECKERBOARD_SQUARES[s] + rng.uniform(size=(num, 2))
    return x, s


def checkerboard_sample(key: jax.Array, num: int) -> jax.Array:
    """Draw ``num`` points uniformly on the dark squares: ``[num, 2]``."""
    s_key, u_key = jax.random.split(key)
    s = jax.random.randint(s_key, (num,), 0, 8)
    squares = jnp.asarray(CHECKERBOARD_SQUARES, dtype=jnp.float32)
    return CHECKERBOARD_LOW + squares[s] + jax.random.uniform(u_key, (num, 2), jnp.float32)


# ----------------------------------------------------------------------------- two moons
def _moons(t, moon, xp):
    outer = xp.stack([xp.cos(t), xp.sin(t)], axis=-1)
    inner = xp.stack([1.0 - xp.cos(t), 0.5 - xp.sin(t)], axis=-1)
    return xp.where(moon[:, None] == 0, outer, inner) - xp.asarray(
        TWO_MOONS_SHIFT, dtype=outer.dtype
    )


def _two_moons_np(rng: np.random.RandomState, num: int) -> tuple[np.ndarray, np.ndarray]:
    moon = rng.randint(0, 2, size=num)
    t = rng.uniform(0.0, np.pi, size=num)
    return _moons(t, moon, np) + TWO_MOONS_NOISE * rng.standard_normal((num, 2)), moon


def two_moons_sample(key: jax.Array, num: int) -> jax.Array:
    """Draw ``num`` two-moons points: angle ``t ~ U[0, pi]``, moon ``~ U{0, 1}``.

    Outer moon ``(cos t, sin t)``, inner moon ``(1 - cos t, 0.5 - sin t)``, both shifted
    by ``-(0.5, 0.25)``, plus ``N(0, 0.05^2 I)`` noise. Returns ``[num, 2]``.
    """
    m_key, t_key, e_key = jax.random.split(key, 3)
    moon = jax.random.randint(m_key, (num,), 0, 2)
    t = jax.random.uniform(t_key, (num,), jnp.float32, 0.0, jnp.pi)
    return _moons(t, moon, jnp) + TWO_MOONS_NOISE * jax.random.normal(e_key, (num, 2), jnp.float32)


# ------------------------------------------------------------------------------ datasets
def _toy(name, draw_np, log_prob, entropy, sampler) -> Dataset:
    x_tr, y_tr = draw_np(np.random.RandomState(TRAIN_SEED), NUM_TRAIN)
    x_te, y_te = draw_np(np.random.RandomState(TEST_SEED), NUM_TEST)
    arrays = [
        np.asarray(x_tr, np.float32),
        np.asarray(x_te, np.float32),
        np.asarray(y_tr, np.int32),
        np.asarray(y_te, np.int32),
    ]
    for a in arrays:
        a.setflags(write=False)
    return validate_dataset(
        Dataset(
            name=name,
            train=arrays[0],
            test=arrays[1],
            train_labels=arrays[2],
            test_labels=arrays[3],
            num_levels=None,
            log_prob=log_prob,
            entropy=entropy,
            sampler=sampler,
            description=TOY_DESCRIPTIONS[name],
        )
    )


@functools.cache
def load_toy(name: str) -> Dataset:
    """Load a 2-D toy by name (``eight-gaussians``, ``checkerboard``, ``two-moons``). Cached."""
    if name == "eight-gaussians":
        return _toy(
            name,
            _eight_gaussians_np,
            eight_gaussians_log_prob,
            eight_gaussians_entropy(),
            eight_gaussians_sample,
        )
    if name == "checkerboard":
        return _toy(
            name, _checkerboard_np, checkerboard_log_prob, CHECKERBOARD_ENTROPY, checkerboard_sample
        )
    if name == "two-moons":
        return _toy(name, _two_moons_np, None, None, two_moons_sample)
    from genjax_models.errors import unknown_name

    raise unknown_name("toy dataset", name, TOY_DESCRIPTIONS)
