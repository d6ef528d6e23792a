"""The mask-aware VAE encoder q(z | x_o, m) and its training masks, against the PPCA oracle.

Oracle (float64): p(z) = N(0, I_K), p(x | z) = N(W z + b, s^2 I_D). Given the observed dims o,
the posterior is p(z | x_o) = N(G (x_o - b_o), s^2 M^-1) with M = W_o^T W_o + s^2 I and
G = M^-1 W_o^T; W_o is chosen with orthogonal columns so that M, hence the posterior, is
diagonal. A linear mask-aware encoder on ``[x * m, m]`` can then be set to the exact
posterior for the mask, and with q = p(z | x_o) every importance weight equals p(x_o): the
completion bound is exact for any k, even k = 1.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.stats import multivariate_normal

from genjax_models.errors import ConfigError, UnknownNameError
from genjax_models.latent import VAE
from genjax_models.latent.m2 import M2
from genjax_models.latent.training_masks import half_masks, random_training_masks
from tests.x64 import float64

D, K, S = 5, 2, 0.5
SEEN = np.array([True, False, True, False, True])  # observed dims 0, 2, 4
W = np.array([[1.0, 0.5], [0.7, 0.2], [0.5, -1.0], [-0.4, 0.9], [0.3, 0.0]])
BIAS = np.array([0.3, -0.2, 0.1, 0.4, -0.5])


def _posterior_encoder_params() -> dict:
    """The linear mask-aware encoder whose q(z | x_o, m = SEEN) is exactly p(z | x_o)."""
    w_o = W[SEEN]
    precision = np.diag(w_o.T @ w_o) + S**2  # diagonal: W_o has orthogonal columns
    gain = w_o.T / precision[:, None]  # [K, |o|]
    kernel = np.zeros((2 * D, 2 * K))
    kernel[2 * np.flatnonzero(SEEN), :K] = gain.T  # the x_d * m_d inputs of observed d
    bias = np.concatenate([-gain @ BIAS[SEEN], 0.5 * np.log(S**2 / precision)])
    return {"net": {"Dense_0": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}}}


def _params() -> dict:
    return {
        "encoder": _posterior_encoder_params(),
        "decoder": {"net": {"Dense_0": {"kernel": jnp.asarray(W.T), "bias": jnp.asarray(BIAS)}},
                    "log_scale": jnp.full((D,), math.log(S))},
    }


def _model(**kw) -> VAE:
    return VAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K,
               mask_aware=True, **kw)


def _data(num: int = 4) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.normal(size=(num, K)) @ W.T + BIAS + S * rng.normal(size=(num, D))


def _exact_observed(x: np.ndarray) -> np.ndarray:
    cov = (W @ W.T + S**2 * np.eye(D))[np.ix_(SEEN, SEEN)]
    return multivariate_normal(BIAS[SEEN], cov).logpdf(x[:, SEEN])


def test_exact_posterior_encoder_makes_every_importance_weight_the_marginal() -> None:
    with float64():
        model, params = _model(), _params()
        x = _data()
        exact = _exact_observed(x)
        poisoned = np.where(SEEN, x, np.nan)  # the missing values never reach the model
        for k in (1, 7):
            result = model.complete(params, jax.random.key(k), jnp.asarray(poisoned), SEEN, 3,
                                    num_samples=k)
            np.testing.assert_allclose(result.log_p_observed, exact, rtol=0, atol=1e-9)
            assert np.all(np.isfinite(np.asarray(result.samples)))


def test_masked_training_term_is_the_bound_on_the_observed_marginal() -> None:
    """bound_loss(observed=m) is -E_q[log p(x_o | z)] + KL: here its mean is log p(x_o)."""
    with float64():
        model = _model(num_importance=20000)
        x = jnp.asarray(_data())
        seen = jnp.broadcast_to(jnp.asarray(SEEN), x.shape)
        loss, metrics = model.bound_loss(_params(), x, jax.random.key(0), observed=seen)
        exact = float(np.mean(_exact_observed(np.asarray(x))))
        assert float(metrics["elbo"]) == pytest.approx(exact, abs=0.01)
        assert float(loss) == pytest.approx(-float(metrics["elbo"]), abs=1e-9)
        # the training loss adds mask_weight times the masked term to the full-data term
        full, _ = model.bound_loss(_params(), x, jax.random.key(0))
        for weight in (0.0, 0.5):
            total, m = _model(num_importance=20000, mask_weight=weight).loss(
                _params(), x, jax.random.key(0))
            np.testing.assert_allclose(total, full - weight * m["masked_bound"], atol=1e-9)
            assert 0.0 < float(m["observed_fraction"]) < 1.0


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_encoder_sees_the_mask_and_never_the_missing_values(architecture: str) -> None:
    model = VAE(event_shape=(4, 4, 2), likelihood="bernoulli", hidden=(16,), latent_dim=3,
                architecture=architecture, conv_channels=4, conv_downsample=1,
                mask_aware=True)
    x = jax.random.bernoulli(jax.random.key(0), 0.5, (3, 4, 4, 2)).astype(jnp.float32)
    params = model.init(jax.random.key(1), x)
    flat = x.reshape(3, -1)
    seen = jax.random.bernoulli(jax.random.key(2), 0.5, flat.shape)
    other = jnp.where(seen, flat, 1.0 - flat)
    np.testing.assert_array_equal(model.encode(params, flat, observed=seen)[0],
                                  model.encode(params, other, observed=seen)[0])
    assert not np.allclose(model.encode(params, flat, observed=seen)[0],
                           model.encode(params, flat)[0])
    np.testing.assert_array_equal(model.encode(params, flat)[0],
                                  model.encode(params, flat, observed=jnp.ones_like(seen))[0])
    loss, metrics = model.loss(params, x, jax.random.key(3))
    assert np.isfinite(float(loss)) and "masked_bound" in metrics


def test_training_masks() -> None:
    image = half_masks((4, 6, 2)).reshape(4, 4, 6, 2)
    assert image[0, :2].all() and not image[0, 2:].any()  # top
    np.testing.assert_array_equal(image[1], ~image[0])  # bottom
    assert image[2, :, :3].all() and not image[2, :, 3:].any()  # left
    np.testing.assert_array_equal(half_masks((5,)), [[1, 1, 1, 0, 0], [0, 0, 0, 1, 1]])
    halves = np.asarray(random_training_masks(jax.random.key(0), 64, (4, 6, 2), "halves"))
    assert all(any((row == h).all() for h in half_masks((4, 6, 2))) for row in halves)
    pixels = np.asarray(random_training_masks(jax.random.key(1), 4000, (30,), "pixels"))
    assert pixels.mean() == pytest.approx(0.5, abs=0.02)  # E[1 - r], r ~ U(0, 1)
    per_example = pixels.mean(axis=1)
    assert per_example.min() < 0.1 and per_example.max() > 0.9
    mixed = random_training_masks(jax.random.key(2), 8, (4, 6, 2))
    assert mixed.shape == (8, 48) and mixed.dtype == bool
    with pytest.raises(UnknownNameError, match="halves, mixed, pixels"):
        random_training_masks(jax.random.key(0), 2, (3,), "blocks")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="halves, mixed, pixels"):
        _model(train_masks="rows")
    with pytest.raises(ConfigError, match="mask_weight"):
        _model(mask_weight=-1.0)
    with pytest.raises(ConfigError, match="m2 cannot be mask_aware"):
        M2(event_shape=(4,), num_classes=2, mask_aware=True)


def _observed_gap(model: VAE, params: dict, x: np.ndarray, seen: np.ndarray) -> float:
    """Mean exact log p(x_o) - ELBO(x_o) = KL(q || p(z | x_o)) of a linear-Gaussian VAE."""
    dense = params["decoder"]["net"]["Dense_0"]
    a, b = np.asarray(dense["kernel"]).T, np.asarray(dense["bias"])
    scale = np.exp(np.clip(np.asarray(params["decoder"]["log_scale"]), -7.0, 5.0))
    cov = a @ a.T + np.diag(scale**2)
    exact = np.mean([multivariate_normal(b[m], cov[np.ix_(m, m)]).logpdf(row[m])
                     for row, m in zip(x, seen, strict=True)])
    wide = dataclasses.replace(model, num_importance=2000)
    _, metrics = wide.bound_loss(params, jnp.asarray(x), jax.random.key(9),
                                 observed=jnp.asarray(seen))
    return float(exact - metrics["elbo"])


def test_mask_aware_training_tightens_the_observed_data_bound() -> None:
    """On PPCA data, the learned mask-aware proposal is closer to p(z | x_o) than the plain one.

    Both models are linear-Gaussian, so each one's exact log p(x_o) is known in closed form and
    the gap exact - ELBO(x_o) = KL(q || p(z | x_o)) >= 0 is measured on half-observed inputs.
    """
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, K)) @ W.T + BIAS + S * rng.normal(size=(500, D)))
    xj = jnp.asarray(x, jnp.float32)
    seen = np.asarray(random_training_masks(jax.random.key(5), 300, (D,), "halves"))
    optimizer = optax.adam(0.03)
    gaps = {}
    for mask_aware in (False, True):
        model = VAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K,
                    mask_aware=mask_aware, train_masks="halves")

        @jax.jit
        def train(params, model=model):
            def step(carry, key):
                params, state = carry
                grads = jax.grad(lambda p: model.loss(p, xj, key)[0])(params)
                updates, state = optimizer.update(grads, state)
                return (optax.apply_updates(params, updates), state), None

            keys = jax.random.split(jax.random.key(1), 600)
            return jax.lax.scan(step, (params, optimizer.init(params)), keys)[0][0]

        params = train(model.init(jax.random.key(0), xj))
        gaps[mask_aware] = _observed_gap(model, params, x[:300], seen)
    print(f"KL(q || p(z | x_o)) on half-observed inputs: plain {gaps[False]:.4f}, "
          f"mask-aware {gaps[True]:.4f} nats")
    assert gaps[True] >= -0.02  # a bound (up to Monte Carlo error)
    assert gaps[True] < 0.5 * gaps[False], gaps
