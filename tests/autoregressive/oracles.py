"""Shared closed-form checks for autoregressive models (shared/ORACLES.md), used by every test.

- :func:`all_configurations`: every image of a tiny discrete event shape, for enumeration;
- :func:`total_mass`: sum of exp(log_prob) over all configurations (must be 1);
- :func:`dependency_mask`: which inputs each conditional output depends on (Jacobian != 0);
- :func:`assert_autoregressive`: outputs depend only on earlier positions in an ordering;
- :func:`sample_total_variation`: TV distance between sample frequencies and exp(log_prob);
- :func:`completion_total_variation`: TV between completions and the enumerated conditional.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def all_configurations(event_shape: Sequence[int], levels: int = 2) -> jax.Array:
    """Return every example of ``event_shape`` on the grid ``level / (levels - 1)``.

    Returns:
      ``[levels ** D, *event_shape]``; row r has digits of r in base ``levels``, most
      significant first (raster position 0 is the slowest-changing).
    """
    d = int(np.prod(event_shape))
    grid = np.array(list(itertools.product(range(levels), repeat=d)), dtype=np.float64)
    return jnp.asarray(grid / (levels - 1)).reshape(-1, *event_shape)


def codes(x: np.ndarray, levels: int = 2) -> np.ndarray:
    """Return the index of each example in :func:`all_configurations` order."""
    flat = np.rint(np.asarray(x).reshape(len(x), -1) * (levels - 1)).astype(np.int64)
    d = flat.shape[1]
    return flat @ (levels ** np.arange(d - 1, -1, -1))


def total_mass(model, params, levels: int = 2, labels=None) -> float:
    """Return sum over all configurations of exp(log_prob) (1 for a normalised model)."""
    from genjax_models.data import Batch

    everything = all_configurations(model.event_shape, levels)
    batch = everything if labels is None else Batch(everything, jnp.full(len(everything), labels))
    log_p = model.log_prob(params, batch, jax.random.key(0))
    return float(jnp.exp(log_p).sum())


def dependency_mask(fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> np.ndarray:
    """Return ``dep [D_out, D_in]``: True where output i depends on input j at ``x``.

    ``fn`` maps a flat ``[D_in]`` vector to ``[D_out, ...]`` (trailing axes are reduced).
    """
    jac = np.asarray(jax.jacfwd(fn)(x))  # [D_out, ..., D_in]
    jac = jac.reshape(jac.shape[0], -1, jac.shape[-1])
    return np.any(jac != 0.0, axis=1)


def assert_autoregressive(
    fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    order: Sequence[int],
    *,
    complete: bool = True,
) -> None:
    """Assert output i depends only on inputs before i in ``order`` (and, if ``complete``, all).

    Args:
      fn: flat ``[D]`` -> ``[D, ...]`` conditional outputs.
      x: the point to differentiate at.
      order: positions first to last.
      complete: also require every earlier input to reach the output (no blind spot).
    """
    dep = dependency_mask(fn, x)
    rank = np.empty(len(order), dtype=np.int64)
    rank[np.asarray(order)] = np.arange(len(order))
    before = rank[None, :] < rank[:, None]  # [i, j]: j before i
    future = dep & ~before
    assert not future.any(), f"outputs depend on later inputs at (i, j) = {np.argwhere(future)}"
    if complete:
        missing = before & ~dep
        assert not missing.any(), f"blind spot: (i, j) = {np.argwhere(missing)[:10]}"


def total_variation(samples: np.ndarray, log_p: np.ndarray, levels: int = 2) -> float:
    """Return the TV distance between the frequencies of ``samples`` and ``exp(log_p)``.

    ``log_p`` is over :func:`all_configurations` order (normalised).
    """
    counts = np.bincount(codes(samples, levels), minlength=len(log_p))
    return 0.5 * float(np.abs(counts / len(samples) - np.exp(log_p)).sum())


def sample_total_variation(model, params, num: int, levels: int = 2, **options) -> float:
    """Return the TV distance between ``num`` samples and the enumerated distribution."""
    samples = jax.jit(lambda k: model.sample(params, k, num, **options))(jax.random.key(0))
    everything = all_configurations(model.event_shape, levels)
    log_p = np.asarray(model.log_prob(params, everything, jax.random.key(0)), np.float64)
    return total_variation(np.asarray(samples), log_p - np.logaddexp.reduce(log_p), levels)


def completion_total_variation(
    model, params, x: jax.Array, observed: np.ndarray, num: int, levels: int = 2, **options
) -> tuple[float, float, float]:
    """Complete one example ``num`` times; compare with the enumerated conditional.

    Args:
      x: ``[*event_shape]`` one example (its observed entries are used).
      observed: ``[*event_shape]`` bools.

    Returns:
      ``(tv, log_p_observed returned, log_p_observed enumerated)``.
    """
    everything = all_configurations(model.event_shape, levels)
    log_p = np.asarray(model.log_prob(params, everything, jax.random.key(0)), np.float64)
    flat_obs = np.asarray(observed).reshape(-1)
    flat_x = np.asarray(x).reshape(-1)
    match = np.all(np.asarray(everything).reshape(len(everything), -1)[:, flat_obs]
                   == flat_x[flat_obs], axis=1)
    log_marginal = float(np.logaddexp.reduce(log_p[match]))
    conditional = np.where(match, log_p - log_marginal, -np.inf)
    complete = jax.jit(
        lambda key, batch: model.complete(params, key, batch, observed, num, **options)
    )
    result = complete(jax.random.key(3), x[None])
    samples = np.asarray(result.samples)[:, 0]
    return (
        total_variation(samples, conditional, levels),
        float(result.log_p_observed[0]),
        log_marginal,
    )
