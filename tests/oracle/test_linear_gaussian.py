"""The linear-Gaussian (probabilistic PCA) oracle for the VAE machinery (see ORACLES.md).

p(z) = N(0, I_K), p(x | z) = N(W z + b, s^2 I_D): log p(x) and p(z | x) are exact. With the
exact posterior as encoder every log importance weight equals log p(x); with any other
encoder ELBO <= IWAE-k <= IWAE-k' <= log p(x) in expectation (k <= k'), IWAE-k -> log p(x).
All checks run in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from genjax_models.latent import (
    IWAE,
    VAE,
    gaussian_log_likelihood,
    importance_log_prob,
    iwae_bound,
    ppca_log_prob,
    ppca_posterior,
)
from tests.x64 import float64

D, K, B = 6, 3, 8
S = 0.5


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _ppca(orthogonal: bool = True, seed: int = 0):
    """Return (x, W, b) with x drawn from the model; W has orthogonal columns if asked."""
    rng = np.random.default_rng(seed)
    if orthogonal:
        q, _ = np.linalg.qr(rng.normal(size=(D, K)))
        w = q * np.array([2.0, 1.0, 0.5])  # distinct column norms, W^T W diagonal
    else:
        w = rng.normal(size=(D, K))
    b = rng.normal(size=D)
    z = rng.normal(size=(B, K))
    x = z @ w.T + b + S * rng.normal(size=(B, D))
    return jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)


def _log_likelihood(w: jax.Array, b: jax.Array):
    return lambda x, z: gaussian_log_likelihood(x, z @ w.T + b, jnp.log(S))


def _exact_encoder(w: jax.Array, b: jax.Array, shift: float = 0.0, log_std_shift: float = 0.0):
    """The exact posterior (W orthogonal: diagonal covariance), optionally perturbed."""

    def encode(x):
        mean, cov = ppca_posterior(x, w, b, S)
        log_std = 0.5 * jnp.log(jnp.diag(cov))
        return mean + shift, jnp.broadcast_to(log_std + log_std_shift, mean.shape)

    return encode


@pytest.mark.parametrize("orthogonal", [True, False])
def test_ppca_log_prob_and_posterior_match_direct_gaussian_algebra(orthogonal: bool) -> None:
    x, w, b = _ppca(orthogonal, seed=1)
    xn, wn, bn = map(np.asarray, (x, w, b))
    cov_x = wn @ wn.T + S**2 * np.eye(D)
    expected = stats.multivariate_normal(bn, cov_x).logpdf(xn)
    np.testing.assert_allclose(ppca_log_prob(x, w, b, S), expected, rtol=1e-12, atol=1e-10)
    # Posterior by conditioning the joint Gaussian of (z, x): W^T C^{-1} (x - b), I - W^T C^{-1} W.
    gain = np.linalg.solve(cov_x, wn).T  # W^T C^{-1}
    mean, cov = ppca_posterior(x, w, b, S)
    np.testing.assert_allclose(mean, (xn - bn) @ gain.T, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cov, np.eye(K) - gain @ wn, rtol=1e-10, atol=1e-10)


def test_exact_posterior_makes_every_bound_equal_log_p() -> None:
    x, w, b = _ppca()
    _, cov = ppca_posterior(x, w, b, S)
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-12)  # diagonal, as designed
    log_p = ppca_log_prob(x, w, b, S)
    encode, log_lik = _exact_encoder(w, b), _log_likelihood(w, b)
    keys = jax.random.split(jax.random.key(0), 5)

    @jax.jit
    def estimates(keys: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        elbo = jax.vmap(lambda k: iwae_bound(k, x, encode, log_lik, 1))(keys)
        iwae = iwae_bound(keys[0], x, encode, log_lik, 10)
        chunked = importance_log_prob(keys[1], x, encode, log_lik, 100, 30)
        return elbo, iwae, chunked

    elbo, iwae, chunked = estimates(keys)
    # log w is constant: every single-sample ELBO is exact, and so is every IWAE-k
    np.testing.assert_allclose(elbo, jnp.broadcast_to(log_p, elbo.shape), rtol=0, atol=1e-6)
    np.testing.assert_allclose(iwae, log_p, rtol=0, atol=1e-6)
    np.testing.assert_allclose(chunked, log_p, rtol=0, atol=1e-6)


def test_bounds_are_ordered_and_converge_for_a_perturbed_encoder() -> None:
    x, w, b = _ppca()
    log_p = np.asarray(ppca_log_prob(x, w, b, S))
    encode = _exact_encoder(w, b, shift=0.3, log_std_shift=0.3)
    log_lik = _log_likelihood(w, b)
    keys = jax.random.split(jax.random.key(0), 300)
    stats_k = {}
    for k in (1, 10, 100):
        f = jax.jit(jax.vmap(lambda key, k=k: iwae_bound(key, x, encode, log_lik, k)))
        vals = np.asarray(f(keys))  # [keys, B]
        stats_k[k] = (vals.mean(0), vals.std(0, ddof=1) / math.sqrt(len(keys)))
    (m1, s1), (m10, s10), (m100, s100) = stats_k[1], stats_k[10], stats_k[100]
    # ELBO <= IWAE-10 <= IWAE-100 <= log p(x), per example, up to 3 standard errors.
    assert np.all(m1 <= m10 + 3 * np.hypot(s1, s10))
    assert np.all(m10 <= m100 + 3 * np.hypot(s10, s100))
    assert np.all(m100 <= log_p + 3 * s100)
    # and the gaps are real, not just within noise (on average over the batch)
    assert (m10 - m1).mean() > 0.05 and (m100 - m10).mean() > 0.005
    assert np.all(log_p - m1 > 0.05)  # the perturbed ELBO is strictly below log p(x)
    # IWAE-1000 (chunked) for a mildly perturbed encoder is within a small tolerance of log p(x)
    mild = _exact_encoder(w, b, shift=0.05, log_std_shift=0.1)
    iwae_1000 = jax.jit(lambda key: importance_log_prob(key, x, mild, log_lik, 1000, 100))(
        jax.random.key(1)
    )
    np.testing.assert_allclose(iwae_1000, log_p, atol=0.05)
    assert abs(float(np.mean(iwae_1000 - log_p))) < 0.02


def _vae_params_for_ppca(w: jax.Array, b: jax.Array) -> dict:
    """Hand-set VAE(hidden=()) params: PPCA decoder and the exact-posterior linear encoder."""
    a = jnp.linalg.solve(w.T @ w + S**2 * jnp.eye(K), w.T)  # M^{-1} W^T: [K, D]
    post_var = S**2 / jnp.diag(w.T @ w + S**2 * jnp.eye(K))  # diagonal of s^2 M^{-1}
    enc_kernel = jnp.concatenate([a.T, jnp.zeros((D, K))], axis=1)  # [D, 2K]
    enc_bias = jnp.concatenate([-a @ b, 0.5 * jnp.log(post_var)])
    return {
        "encoder": {"net": {"Dense_0": {"kernel": enc_kernel, "bias": enc_bias}}},
        "decoder": {
            "net": {"Dense_0": {"kernel": w.T, "bias": b}},
            "log_scale": jnp.full((D,), math.log(S)),
        },
    }


def test_vae_class_reproduces_the_ppca_oracle() -> None:
    x, w, b = _ppca()
    log_p = ppca_log_prob(x, w, b, S)
    model = VAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K)
    params = _vae_params_for_ppca(w, b)
    # the hand-set tree has exactly the structure (and shapes) that init produces
    init = jax.eval_shape(model.init, jax.random.key(0), x)
    assert jax.tree.structure(init) == jax.tree.structure(params)
    assert jax.tree.map(jnp.shape, init) == jax.tree.map(jnp.shape, params)
    iwae_model = IWAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K)
    keys = jax.random.split(jax.random.key(4), 2000)

    @jax.jit
    def run(params: dict) -> tuple:
        elbo = model.log_prob(params, x, keys[0], num_samples=1)
        iwae = model.log_prob(params, x, keys[1])  # k = 1000 in chunks of 100
        iwae_loss = iwae_model.loss(params, x, keys[2])
        vae_losses = jax.vmap(lambda key: model.loss(params, x, key))(keys)
        return elbo, iwae, iwae_loss, vae_losses

    elbo, iwae, (loss, metrics), (losses, vae_metrics) = run(params)
    np.testing.assert_allclose(elbo, log_p, rtol=0, atol=1e-5)
    np.testing.assert_allclose(iwae, log_p, rtol=0, atol=1e-5)

    # IWAE's loss is built from log w only, so it is exact for every draw.
    np.testing.assert_allclose(loss, -log_p.mean(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(metrics["elbo"], log_p.mean(), rtol=0, atol=1e-5)

    # The VAE loss uses the analytic KL plus a one-sample reconstruction term: it equals
    # -mean log p(x) in expectation (its per-draw noise does not vanish), checked to 4 SE.
    se = float(losses.std()) / math.sqrt(len(keys))
    assert abs(float(losses.mean()) + float(log_p.mean())) < 4 * se + 1e-6
    mean, cov = ppca_posterior(x, w, b, S)
    var = jnp.diag(cov)
    kl = 0.5 * jnp.sum(jnp.square(mean), -1) + 0.5 * jnp.sum(var - 1.0 - jnp.log(var))
    np.testing.assert_allclose(vae_metrics["kl"], jnp.full(len(keys), kl.mean()), rtol=1e-10)
