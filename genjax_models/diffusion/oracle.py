"""Closed-form Gaussian-mixture oracle for every forward process (../shared/ORACLES.md).

Data p0 = sum_k w_k N(mu_k, S_k). Under any process x_t = a_t x0 + s_t eps the perturbed density
stays a mixture,

    p_t = sum_k w_k N(a_t mu_k, C_k),   C_k = a_t^2 S_k + s_t^2 I,

so at every t, with responsibilities r_k(x) = w_k N(x; a_t mu_k, C_k) / p_t(x) (via logsumexp):

- ``log_prob``:  log p_t(x)
- ``score``:     grad log p_t(x) = sum_k r_k C_k^{-1} (a_t mu_k - x)
- ``denoiser``:  E[x0 | x_t = x] = sum_k r_k [mu_k + a_t S_k C_k^{-1} (x - a_t mu_k)]
- ``eps``:       E[eps | x_t = x] = (x - a_t E[x0 | x]) / s_t = -s_t score
- ``velocity``:  v = a_t eps - s_t x0 (Salimans & Ho 2022) at the posterior means.

For a class-conditional mixture, in which each class owns some components (``component_classes
[K]``): ``class_mixture`` (p0(x | y)), ``class_log_posterior`` (the exact noisy classifier
log p(y | x_t)) and ``conditional_denoiser`` (E[x0 | x_t, y]).

Everything is exact up to floating point; use float64 for tight tests. A public module: useful for
teaching and for testing any sampler, loss or likelihood code against the truth.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.errors import ShapeError


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    """A mixture sum_k w_k N(mu_k, S_k) in D dimensions.

    Attributes:
      weights: ``[K]`` mixture weights (positive, summing to 1).
      means: ``[K, D]`` component means.
      covs: ``[K, D, D]`` component covariances (symmetric positive definite).
    """

    weights: jax.Array
    means: jax.Array
    covs: jax.Array

    def tree_flatten(self):
        return (self.weights, self.means, self.covs), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux
        return cls(*children)

    @property
    def dim(self) -> int:
        """D."""
        return self.means.shape[-1]

    def _check(self, x: jax.Array) -> None:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"expected points of shape [B, {self.dim}], got {tuple(x.shape)}")

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Return log p(x) for ``x [B, D]`` as ``[B]``."""
        self._check(x)
        return _mixture_log_prob(self.weights, self.means, self.covs, x)

    def sample(self, key: jax.Array, num: int) -> jax.Array:
        """Draw ``num`` points ``[num, D]``."""
        comp_key, noise_key = jax.random.split(key)
        comps = jax.random.choice(comp_key, self.weights.shape[0], (num,), p=self.weights)
        chol = jnp.linalg.cholesky(self.covs)[comps]
        eps = jax.random.normal(noise_key, (num, self.dim), self.means.dtype)
        return self.means[comps] + jnp.einsum("nij,nj->ni", chol, eps)

    def mean_and_cov(self) -> tuple[jax.Array, jax.Array]:
        """Return the overall mean ``[D]`` and covariance ``[D, D]`` of the mixture."""
        mean = self.weights @ self.means
        centred = self.means - mean
        cov = jnp.einsum("k,kij->ij", self.weights, self.covs) + jnp.einsum(
            "k,ki,kj->ij", self.weights, centred, centred
        )
        return mean, cov


def _mixture_log_prob(weights, means, covs, x):
    """log sum_k w_k N(x; mu_k, C_k) for ``x [B, D]``."""
    return jax.nn.logsumexp(_component_log_probs(means, covs, x) + jnp.log(weights), axis=-1)


def _component_log_probs(means, covs, x):
    """``[B, K]`` log N(x_b; mu_k, C_k)."""
    d = means.shape[-1]
    chol = jnp.linalg.cholesky(covs)  # [K, D, D]
    diff = x[:, None, :] - means[None]  # [B, K, D]
    solved = jax.vmap(
        lambda c, r: jax.scipy.linalg.solve_triangular(c, r.T, lower=True).T,
        in_axes=(0, 1),
        out_axes=1,
    )(chol, diff)
    maha = jnp.sum(solved**2, axis=-1)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * (maha + log_det[None] + d * math.log(2 * math.pi))


def _coefficients(process, t, x):
    """a_t, s_t broadcast per example: ``[B]`` each."""
    t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
    return process.alpha(t).astype(x.dtype), process.sigma(t).astype(x.dtype)


def marginal(mixture: GaussianMixture, process, t: float | jax.Array) -> GaussianMixture:
    """Return p_t as a :class:`GaussianMixture` for a scalar time ``t``."""
    a, s = process.alpha(t), process.sigma(t)
    eye = jnp.eye(mixture.dim, dtype=mixture.means.dtype)
    return GaussianMixture(mixture.weights, a * mixture.means, a**2 * mixture.covs + s**2 * eye)


def _per_example(mixture, process, x, t, fn):
    """Apply ``fn(x_b [D], a_b, s_b)`` to every example with its own time."""
    mixture._check(x)
    a, s = _coefficients(process, t, x)
    return jax.vmap(fn)(x, a, s)


def _responsibilities_and_precisions(mixture, x, a, s, keep=None):
    """For one point: r ``[K]``, C_k^{-1} ``[K, D, D]`` (r over the ``keep [K]`` components)."""
    eye = jnp.eye(mixture.dim, dtype=x.dtype)
    covs = a**2 * mixture.covs + s**2 * eye
    logits = _component_log_probs(a * mixture.means, covs, x[None])[0] + jnp.log(mixture.weights)
    if keep is not None:
        logits = jnp.where(keep, logits, -jnp.inf)
    r = jax.nn.softmax(logits)
    return r, jnp.linalg.inv(covs)


def _posterior_mean(mixture, x, a, r, prec):
    """sum_k r_k [mu_k + a S_k C_k^{-1} (x - a mu_k)] for one point."""
    centred = x - a * mixture.means  # [K, D]
    gain = a * jnp.einsum("kij,kjl,kl->ki", mixture.covs, prec, centred)
    return jnp.einsum("k,ki->i", r, mixture.means + gain)


def log_prob(mixture: GaussianMixture, process, x: jax.Array, t: float | jax.Array) -> jax.Array:
    """Return log p_t(x) for ``x [B, D]`` at time ``t`` (scalar or ``[B]``): ``[B]``."""

    def one(x_b, a, s):
        eye = jnp.eye(mixture.dim, dtype=x.dtype)
        covs = a**2 * mixture.covs + s**2 * eye
        return _mixture_log_prob(mixture.weights, a * mixture.means, covs, x_b[None])[0]

    return _per_example(mixture, process, x, t, one)


def score(mixture: GaussianMixture, process, x: jax.Array, t: float | jax.Array) -> jax.Array:
    """Return grad_x log p_t(x) for ``x [B, D]``: ``[B, D]``."""

    def one(x_b, a, s):
        r, prec = _responsibilities_and_precisions(mixture, x_b, a, s)
        return jnp.einsum("k,kij,kj->i", r, prec, a * mixture.means - x_b)

    return _per_example(mixture, process, x, t, one)


def denoiser(mixture: GaussianMixture, process, x: jax.Array, t: float | jax.Array) -> jax.Array:
    """Return E[x0 | x_t = x] for ``x [B, D]``: ``[B, D]``."""

    def one(x_b, a, s):
        return _posterior_mean(mixture, x_b, a, *_responsibilities_and_precisions(
            mixture, x_b, a, s))

    return _per_example(mixture, process, x, t, one)


# ------------------------------------------------------- class-conditional mixtures
# Classes own components: ``component_classes [K]`` gives each component's class y in 0..C-1,
# so p0(x | y) = sum_{k: c_k = y} w_k N(mu_k, S_k) / sum_{k: c_k = y} w_k, p(y) = that sum, and
# under the process p(y | x_t) = sum_{k: c_k = y} r_k(x_t) (the noisy classifier, exact).


def class_mixture(mixture: GaussianMixture, component_classes, label: int) -> GaussianMixture:
    """Return p0(x | y = label): the class's components, weights renormalised (static label)."""
    keep = [k for k, c in enumerate(component_classes) if int(c) == int(label)]
    if not keep:
        raise ShapeError(f"no component has class {label}; component classes "
                         f"{list(component_classes)}")
    index = jnp.asarray(keep)
    weights = mixture.weights[index]
    return GaussianMixture(weights / weights.sum(), mixture.means[index], mixture.covs[index])


def class_log_posterior(
    mixture: GaussianMixture, component_classes, num_classes: int, process, x: jax.Array,
    t: float | jax.Array,
) -> jax.Array:
    """Return log p(y | x_t = x) for every class, ``[B, C]`` (the exact noisy classifier)."""
    onehot = jax.nn.one_hot(jnp.asarray(component_classes), num_classes, dtype=x.dtype)  # [K, C]

    def one(x_b, a, s):
        eye = jnp.eye(mixture.dim, dtype=x.dtype)
        covs = a**2 * mixture.covs + s**2 * eye
        logits = (_component_log_probs(a * mixture.means, covs, x_b[None])[0]
                  + jnp.log(mixture.weights))
        log_r = jax.nn.log_softmax(logits)  # [K]
        return jax.nn.logsumexp(log_r[:, None], axis=0, b=onehot)

    return _per_example(mixture, process, x, t, one)


def conditional_denoiser(
    mixture: GaussianMixture, component_classes, process, x: jax.Array, t: float | jax.Array,
    labels: jax.Array,
) -> jax.Array:
    """Return E[x0 | x_t = x, y] for ``x [B, D]`` and int ``labels [B]``: ``[B, D]``."""
    classes = jnp.asarray(component_classes)
    mixture._check(x)
    a, s = _coefficients(process, t, x)

    def one(x_b, a_b, s_b, y_b):
        r, prec = _responsibilities_and_precisions(mixture, x_b, a_b, s_b, classes == y_b)
        return _posterior_mean(mixture, x_b, a_b, r, prec)

    return jax.vmap(one)(x, a, s, jnp.asarray(labels))


def observed_conditional(
    mixture: GaussianMixture, x_observed: jax.Array, observed
) -> GaussianMixture:
    """Return p0(x_m | x_o) for one point: the mixture over the missing coordinates.

    With o the observed and m the missing coordinates (``observed``: a static boolean ``[D]``),
    each component conditions as a Gaussian, mu_{m|o} = mu_m + S_mo S_oo^{-1} (x_o - mu_o),
    S_{m|o} = S_mm - S_mo S_oo^{-1} S_om, and its weight becomes w_k N(x_o; mu_o, S_oo) / Z.

    Args:
      mixture: the data distribution p0.
      x_observed: ``[D]`` a point (its missing coordinates are ignored).
      observed: static ``[D]`` booleans, at least one True and one False.

    Returns:
      The conditional mixture over the ``M`` missing coordinates (in their order).
    """
    mask = np.asarray(observed, bool)
    if mask.shape != (mixture.dim,) or mask.all() or not mask.any():
        raise ShapeError(
            f"observed must be [{mixture.dim}] booleans with at least one True and one False, "
            f"got {mask.tolist()}"
        )
    o, m = np.flatnonzero(mask), np.flatnonzero(~mask)
    s_oo = mixture.covs[:, o][:, :, o]
    s_mo = mixture.covs[:, m][:, :, o]
    s_mm = mixture.covs[:, m][:, :, m]
    x_o = jnp.asarray(x_observed)[o]
    gain = jnp.linalg.solve(s_oo, jnp.swapaxes(s_mo, 1, 2))  # [K, |o|, M] = S_oo^-1 S_om
    means = mixture.means[:, m] + jnp.einsum("koi,ko->ki", gain, x_o - mixture.means[:, o])
    covs = s_mm - jnp.einsum("kmo,kon->kmn", s_mo, gain)
    logits = _component_log_probs(mixture.means[:, o], s_oo, x_o[None])[0]
    weights = jax.nn.softmax(logits + jnp.log(mixture.weights))
    return GaussianMixture(weights, means, 0.5 * (covs + jnp.swapaxes(covs, 1, 2)))


def eps(mixture: GaussianMixture, process, x: jax.Array, t: float | jax.Array) -> jax.Array:
    """Return E[eps | x_t = x] = (x - a_t E[x0 | x]) / s_t: ``[B, D]``."""
    a, s = _coefficients(process, t, x)
    return (x - a[:, None] * denoiser(mixture, process, x, t)) / s[:, None]


def velocity(mixture: GaussianMixture, process, x: jax.Array, t: float | jax.Array) -> jax.Array:
    """Return E[v | x_t = x] with v = a_t eps - s_t x0: ``[B, D]``."""
    a, s = _coefficients(process, t, x)
    return a[:, None] * eps(mixture, process, x, t) - s[:, None] * denoiser(mixture, process, x, t)


def example_mixture(
    dim: int = 2, num_components: int = 3, key: jax.Array | None = None, dtype=jnp.float32
) -> GaussianMixture:
    """Return a fixed, well-separated test mixture in ``dim`` dimensions.

    Means lie on a circle of radius 2 (in the first two coordinates; other coordinates get
    smaller offsets), covariances are random SPD with eigenvalues in [0.05, 0.3], weights uneven.
    Deterministic for a given ``key`` (default ``key(0)``).
    """
    key = jax.random.key(0) if key is None else key
    k_mean, k_rot, k_eig, k_w = jax.random.split(key, 4)
    angles = 2 * jnp.pi * jnp.arange(num_components) / num_components
    means = 0.5 * jax.random.normal(k_mean, (num_components, dim))
    circle = jnp.stack([2 * jnp.cos(angles), 2 * jnp.sin(angles)], axis=-1)
    means = means.at[:, : min(2, dim)].set(circle[:, : min(2, dim)])
    rot, _ = jnp.linalg.qr(jax.random.normal(k_rot, (num_components, dim, dim)))
    eig = jax.random.uniform(k_eig, (num_components, dim), minval=0.05, maxval=0.3)
    covs = jnp.einsum("kij,kj,klj->kil", rot, eig, rot)
    weights = jax.nn.softmax(0.5 * jax.random.normal(k_w, (num_components,)))
    return GaussianMixture(weights.astype(dtype), means.astype(dtype), covs.astype(dtype))
