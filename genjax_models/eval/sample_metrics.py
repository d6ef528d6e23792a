"""Sample-quality metrics between two sample sets: MMD^2, sliced W_2, squared Fréchet distance.

Each name says whether its value is squared: ``mmd2`` (MMD^2), ``squared_wasserstein2_1d``
(W_2^2), ``sliced_wasserstein_distance`` (SW_2, not squared), ``squared_frechet_distance`` and
``squared_gaussian_frechet_distance`` (d^2, FID's number).

All take ``[N, *event]`` arrays (flattened to ``[N, D]``) and are pure ``jax.numpy`` (jittable).

- **MMD^2** (Gretton et al. 2012) with the kernel k(a, b) = sum_h exp(-|a - b|^2 / (2 h^2)) over
  bandwidths h, unbiased U-statistic
  MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
            - 2/(m n) sum_{i, j} k(x_i, y_j),
  whose expectation is the population MMD^2 (0 iff the distributions agree; it can be negative).
  Kernel sums are accumulated over row blocks, so memory is O(block * N).
- **Sliced Wasserstein-2**: SW_2(p, q) = (E_theta W_2^2(theta # p, theta # q))^(1/2) with theta
  uniform on the unit sphere, estimated with ``num_projections`` directions; each 1-D W_2^2 is
  computed exactly between the two empirical measures by integrating the squared difference of
  the quantile functions over the merged breakpoints {i/m} U {j/n} (sorting; any sizes).
- **Fréchet distance** between Gaussians fitted to two feature sets (FID's formula):
  d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}),
  with the matrix square roots taken by symmetric eigendecomposition (eigenvalues clipped at 0),
  which stays real and accurate for singular or ill-conditioned covariances (unlike sqrtm of the
  non-symmetric S_a S_b). Use float64 for tight values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError


def _flatten(x: jax.Array, name: str) -> jax.Array:
    """Return ``x`` as ``[N, D]`` (a float array)."""
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ShapeError(f"{name} must be [N, *event], got shape {tuple(x.shape)}")
    x = x.reshape(x.shape[0], -1)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _pair(x: jax.Array, y: jax.Array, min_size: int) -> tuple[jax.Array, jax.Array]:
    """Flatten both sets and check their dimensions agree and sizes are at least ``min_size``."""
    x, y = _flatten(x, "x"), _flatten(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ShapeError(
            f"x and y must have the same event size, got {x.shape[1]} and {y.shape[1]}"
        )
    if x.shape[0] < min_size or y.shape[0] < min_size:
        raise ShapeError(
            f"need at least {min_size} samples in each set, got {x.shape[0]} and {y.shape[0]}"
        )
    dtype = jnp.result_type(x.dtype, y.dtype)
    return x.astype(dtype), y.astype(dtype)


def median_bandwidth(x: jax.Array, y: jax.Array, max_points: int = 1000) -> jax.Array:
    """Return the median pairwise distance of the pooled samples (the median heuristic).

    Args:
      x: ``[M, *event]`` samples; y: ``[N, *event]`` samples.
      max_points: use at most this many points of the pooled set (its first ones).

    Returns:
      A scalar bandwidth h > 0.
    """
    x, y = _pair(x, y, 1)
    z = jnp.concatenate([x, y])[:max_points]
    sq = _sq_dists(z, z)
    off = ~jnp.eye(z.shape[0], dtype=bool)
    return jnp.sqrt(jnp.median(sq[off]))


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
    """``[m, n]`` squared distances |a_i - b_j|^2 (clipped at 0)."""
    sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None] - 2.0 * a @ b.T
    return jnp.maximum(sq, 0.0)


def _kernel_sum(a: jax.Array, b: jax.Array, inv_two_h2: jax.Array, block: int) -> jax.Array:
    """Return sum_{i, j} sum_h exp(-|a_i - b_j|^2 / (2 h^2)), accumulated over blocks of rows."""
    m = a.shape[0]
    num_blocks = -(-m // block)
    pad = num_blocks * block - m
    a_pad = jnp.concatenate([a, jnp.zeros((pad, a.shape[1]), a.dtype)])
    mask = jnp.concatenate([jnp.ones((m,), a.dtype), jnp.zeros((pad,), a.dtype)])

    def one(args):
        rows, w = args
        sq = _sq_dists(rows, b)
        k = jnp.sum(jnp.exp(-sq[..., None] * inv_two_h2), axis=-1)
        return jnp.sum(w[:, None] * k)

    blocks = (a_pad.reshape(num_blocks, block, -1), mask.reshape(num_blocks, block))
    return jnp.sum(jax.lax.map(one, blocks))


def mmd2(
    x: jax.Array,
    y: jax.Array,
    bandwidths: float | tuple[float, ...] | jax.Array | None = None,
    block_size: int = 1024,
) -> jax.Array:
    """Return the unbiased estimate of MMD^2 between the samples ``x`` and ``y`` (module docstring).

    Args:
      x: ``[M, *event]`` samples (M >= 2).
      y: ``[N, *event]`` samples (N >= 2).
      bandwidths: one or several Gaussian-kernel bandwidths h (the kernel is their sum, so with H
        bandwidths k(a, a) = H). ``None``: the median heuristic on the pooled samples (data
        dependent: pass fixed bandwidths to compare several sample sets on one kernel).
      block_size: rows per block of the kernel sums.

    Returns:
      Scalar MMD_u^2 (may be slightly negative when the distributions agree).
    """
    x, y = _pair(x, y, 2)
    if bandwidths is None:
        bandwidths = median_bandwidth(x, y)
    h = jnp.atleast_1d(jnp.asarray(bandwidths, x.dtype))
    inv_two_h2 = 0.5 / h**2
    m, n = x.shape[0], y.shape[0]
    num_kernels = h.shape[0]
    block = max(1, min(block_size, max(m, n)))
    kxx = (_kernel_sum(x, x, inv_two_h2, block) - m * num_kernels) / (m * (m - 1))
    kyy = (_kernel_sum(y, y, inv_two_h2, block) - n * num_kernels) / (n * (n - 1))
    kxy = _kernel_sum(x, y, inv_two_h2, block) / (m * n)
    return kxx + kyy - 2.0 * kxy


def random_directions(key: jax.Array, num: int, dim: int, dtype=None) -> jax.Array:
    """Return ``[num, dim]`` directions uniform on the unit sphere (normalised Gaussians)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    v = jax.random.normal(key, (num, dim), dtype)
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def squared_wasserstein2_1d(u: jax.Array, v: jax.Array) -> jax.Array:
    """Return W_2^2 between the empirical measures of ``u [..., M]`` and ``v [..., N]`` (last axis).

    Integrates (F_u^{-1}(q) - F_v^{-1}(q))^2 over q in [0, 1] exactly: both quantile functions are
    piecewise constant with breaks at i/M and j/N.
    """
    m, n = u.shape[-1], v.shape[-1]
    u, v = jnp.sort(u, axis=-1), jnp.sort(v, axis=-1)
    if m == n:
        return jnp.mean((u - v) ** 2, axis=-1)
    breaks = jnp.sort(jnp.concatenate([jnp.arange(1, m + 1) / m, jnp.arange(1, n) / n]))
    lower = jnp.concatenate([jnp.zeros((1,), breaks.dtype), breaks[:-1]])
    width = (breaks - lower).astype(u.dtype)
    mid = 0.5 * (breaks + lower)
    iu = jnp.minimum(jnp.floor(mid * m).astype(jnp.int32), m - 1)
    iv = jnp.minimum(jnp.floor(mid * n).astype(jnp.int32), n - 1)
    return jnp.sum(width * (u[..., iu] - v[..., iv]) ** 2, axis=-1)


def sliced_wasserstein_distance(
    x: jax.Array,
    y: jax.Array,
    key: jax.Array | None = None,
    num_projections: int = 128,
    directions: jax.Array | None = None,
) -> jax.Array:
    """Return the sliced Wasserstein-2 distance SW_2 between samples ``x`` and ``y``.

    Args:
      x: ``[M, *event]`` samples; y: ``[N, *event]`` samples (any sizes).
      key: PRNG key for the random directions (needed unless ``directions`` is given).
      num_projections: number of random directions.
      directions: optional ``[P, D]`` unit directions to use instead of random ones.

    Returns:
      Scalar (mean over directions of the exact 1-D W_2^2) ** 0.5.
    """
    x, y = _pair(x, y, 1)
    if directions is None:
        if key is None:
            raise ConfigError("sliced_wasserstein_distance needs a key or explicit directions")
        directions = random_directions(key, num_projections, x.shape[1], x.dtype)
    directions = jnp.asarray(directions, x.dtype)
    if directions.ndim != 2 or directions.shape[1] != x.shape[1]:
        raise ShapeError(f"directions must be [P, {x.shape[1]}], got {tuple(directions.shape)}")
    w2 = squared_wasserstein2_1d(directions @ x.T, directions @ y.T)
    return jnp.sqrt(jnp.mean(w2))


def _sym_sqrt(mat: jax.Array) -> jax.Array:
    """Return the PSD square root of a symmetric matrix (eigenvalues clipped at 0)."""
    mat = 0.5 * (mat + mat.T)
    w, v = jnp.linalg.eigh(mat)
    return (v * jnp.sqrt(jnp.maximum(w, 0.0))) @ v.T


def squared_gaussian_frechet_distance(
    mean_a: jax.Array, cov_a: jax.Array, mean_b: jax.Array, cov_b: jax.Array
) -> jax.Array:
    """Return the squared Fréchet (2-Wasserstein) distance of N(mean_a, cov_a) and N(mean_b, cov_b).

    Args:
      mean_a, mean_b: ``[D]`` means; cov_a, cov_b: ``[D, D]`` symmetric PSD covariances.

    Returns:
      Scalar |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}) (clipped at 0).
    """
    root_a = _sym_sqrt(cov_a)
    middle = root_a @ (0.5 * (cov_b + cov_b.T)) @ root_a
    eig = jnp.linalg.eigvalsh(0.5 * (middle + middle.T))
    cross = jnp.sum(jnp.sqrt(jnp.maximum(eig, 0.0)))
    diff = mean_a - mean_b
    return jnp.maximum(diff @ diff + jnp.trace(cov_a) + jnp.trace(cov_b) - 2.0 * cross, 0.0)


def squared_frechet_distance(feats_a: jax.Array, feats_b: jax.Array) -> jax.Array:
    """Return the squared Fréchet distance (FID's formula) of Gaussians fitted to two feature sets.

    Args:
      feats_a: ``[M, *event]`` features (M >= 2); feats_b: ``[N, *event]`` features (N >= 2).

    Returns:
      Scalar d^2 with the unbiased (N - 1) sample covariances.
    """
    a, b = _pair(feats_a, feats_b, 2)
    mean_a, mean_b = jnp.mean(a, 0), jnp.mean(b, 0)
    cov_a = jnp.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])
    cov_b = jnp.cov(b, rowvar=False).reshape(b.shape[1], b.shape[1])
    return squared_gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b)
