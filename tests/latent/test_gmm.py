"""Gaussian mixture: EM against closed forms, scikit-learn and gradient training; missing data.

- EM never decreases the training log-likelihood (float64, every iteration);
- one EM step equals the M step written out in numpy; EM recovers a well-separated mixture;
- from the same initialisation EM follows scikit-learn's path (and reaches at least its best
  restart's log-likelihood); Adam on ``loss`` from k-means++ reaches EM's log-likelihood;
- log p(x_observed) equals scipy's Gaussian marginal on the observed sub-vector, and the
  completions' mean / covariance match the Schur-complement conditional mixture.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from genjax_models.errors import ConfigError
from genjax_models.latent import GaussianMixture, em_step, fit_em, responsibilities
from genjax_models.latent.gmm import scale_raw_from_tril
from genjax_models.latent.mixture import (
    assign,
    hard_responsibilities,
    initial_params,
    kmeans_plus_plus,
)
from tests.x64 import float64

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
COVS = np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.6, -0.2], [-0.2, 0.4]], [[0.3, 0.0], [0.0, 1.2]]])


def _mixture_data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    comps = rng.choice(3, size=n, p=WEIGHTS)
    eps = rng.standard_normal((n, 2))
    x = MEANS[comps] + np.einsum("nij,nj->ni", np.linalg.cholesky(COVS)[comps], eps)
    return x, comps


def _random_params(model: GaussianMixture, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    k, d = model.num_components, model.num_dims
    params = {
        "logits": jnp.asarray(rng.normal(size=k)),
        "means": jnp.asarray(rng.normal(size=(k, d))),
    }
    if model.covariance == "diag":
        params["log_scales"] = jnp.asarray(0.3 * rng.normal(size=(k, d)))
    else:
        a = rng.normal(size=(k, d, d))
        cov = a @ np.swapaxes(a, -1, -2) / d + 0.3 * np.eye(d)
        params["scale_raw"] = scale_raw_from_tril(jnp.asarray(np.linalg.cholesky(cov)))
    return params


def _numpy_params(model: GaussianMixture, params: dict) -> tuple[np.ndarray, ...]:
    weights = np.asarray(jax.nn.softmax(params["logits"]))
    return weights, np.asarray(params["means"]), np.asarray(model.covariances(params))


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_em_never_decreases_the_log_likelihood(covariance):
    with float64():
        x, _ = _mixture_data(1000, seed=1)
        # Overlapping, badly initialised components: many iterations of real progress.
        x = jnp.asarray(x * np.array([0.3, 0.3]))
        model = GaussianMixture((2,), num_components=5, covariance=covariance, min_variance=0.0)
        _, lls = fit_em(model, jax.random.key(3), x, 60)
        lls = np.asarray(lls)
        assert lls.shape == (60,) and lls[-1] - lls[0] > 1e-3  # it did move
        steps = np.diff(lls)
        assert np.all(steps >= -1e-9 * np.abs(lls[1:])), steps.min()


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_one_em_step_is_the_closed_form_m_step(covariance):
    with float64():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(7, 3))
        model = GaussianMixture((3,), num_components=2, covariance=covariance, min_variance=1e-3)
        params = _random_params(model, 1)
        weights, means, covs = _numpy_params(model, params)
        log_joint = np.stack([
            np.log(w) + multivariate_normal(m, c).logpdf(x)
            for w, m, c in zip(weights, means, covs, strict=True)
        ], axis=1)
        resp = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        nk = resp.sum(0)
        new_means = resp.T @ x / nk[:, None]
        new_covs = np.stack([
            (resp[:, k, None] * (x - new_means[k])).T @ (x - new_means[k]) / nk[k]
            for k in range(2)
        ])
        if covariance == "diag":
            new_covs = new_covs * np.eye(3)
        new_covs = new_covs + 1e-3 * np.eye(3)

        got, mean_ll = jax.jit(em_step, static_argnums=0)(model, params, jnp.asarray(x))
        np.testing.assert_allclose(mean_ll, logsumexp(log_joint, axis=1).mean(), rtol=1e-12)
        got_w, got_m, got_c = _numpy_params(model, got)
        np.testing.assert_allclose(got_w, nk / 7, rtol=1e-12)
        np.testing.assert_allclose(got_m, new_means, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_c, new_covs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(responsibilities(model, params, x), resp, rtol=1e-10, atol=1e-14)


def test_em_recovers_a_well_separated_mixture():
    with float64():
        x, comps = _mixture_data()
        model = GaussianMixture((2,), num_components=3)
        params, _ = fit_em(model, jax.random.key(0), jnp.asarray(x), 100)
        weights, means, covs = _numpy_params(model, params)
        order = [int(np.argmin(np.sum((means - m) ** 2, axis=1))) for m in MEANS]
        assert sorted(order) == [0, 1, 2]
        # Standard errors at N = 3000 (N_k >= 600): weights <= 0.009, means <= 0.045, covariance
        # entries <= 1.2 * sqrt(2 / 600) = 0.07; tolerances are ~4 standard errors.
        np.testing.assert_allclose(weights[order], WEIGHTS, atol=0.04)
        np.testing.assert_allclose(means[order], MEANS, atol=0.15)
        np.testing.assert_allclose(covs[order], COVS, atol=0.25)
        # The components found are the generating ones: hard assignments agree (> 99%).
        agree = np.mean(np.asarray(order)[comps] == np.asarray(assign(model, params, x)))
        assert agree > 0.99, agree


def test_em_matches_sklearn_from_the_same_init_and_its_best_restart():
    with float64():
        x, _ = _mixture_data(seed=2)
        x = x * 0.4  # overlapping components: EM takes many steps
        xj = jnp.asarray(x)
        model = GaussianMixture((2,), num_components=3)
        init = initial_params(model, jax.random.key(1), xj)
        params, lls = fit_em(model, jax.random.key(1), xj, 100, init_params=init)
        w0, m0, c0 = _numpy_params(model, init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk = SkGaussianMixture(3, reg_covar=1e-6, max_iter=100, tol=0.0, weights_init=w0,
                                   means_init=m0, precisions_init=np.linalg.inv(c0)).fit(x)
        # Same initialisation, same M step: the same path (to float64 round-off).
        assert abs(float(lls[-1]) - sk.score(x)) < 1e-8, (float(lls[-1]), sk.score(x))
        np.testing.assert_allclose(_numpy_params(model, params)[1], sk.means_, atol=1e-6)
        # Against scikit-learn's default (k-means init, 5 restarts): the best of 5 seeds.
        best_sk = SkGaussianMixture(3, n_init=5, random_state=0).fit(x).score(x)
        ours = max(float(fit_em(model, jax.random.key(s), xj, 100)[1][-1]) for s in range(3))
        print(f"EM best of 3 seeds {ours:.7f}  sklearn best of 5 restarts {best_sk:.7f}")
        assert ours >= best_sk - 1e-3, (ours, best_sk)


def test_gradient_training_from_kmeans_reaches_the_em_fit():
    with float64():
        x, _ = _mixture_data(1500, seed=3)
        xj = jnp.asarray(0.4 * x)  # overlapping: k-means++ alone is clearly short of EM
        model = GaussianMixture((2,), num_components=3, em_iterations=0)
        # Plain (one-trial) k-means++ and one M step, no EM: clearly short of the EM fit.
        centres = kmeans_plus_plus(jax.random.key(0), xj, 3, num_trials=1)
        start = model.m_step(xj, hard_responsibilities(xj, centres))
        _, em_lls = fit_em(model, jax.random.key(0), xj, 200, init_params=start)
        optimizer = optax.adam(0.03)

        @jax.jit
        def train(params):
            def step(carry, _):
                params, state = carry
                loss, grads = jax.value_and_grad(lambda p: model.loss(p, xj, None)[0])(params)
                updates, state = optimizer.update(grads, state)
                return (optax.apply_updates(params, updates), state), loss

            (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), None,
                                               length=600)
            return params, losses

        params, losses = train(start)
        final = -float(model.loss(params, xj, None)[0])
        first, em = -float(losses[0]), float(em_lls[-1])
        print(f"k-means++ {first:.7f}  Adam {final:.7f}  EM {em:.7f}")
        assert em - first > 1e-3  # k-means++ alone is short of the EM fit
        assert abs(final - em) < min(1e-4, 0.05 * (em - first)), (first, final, em)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_log_prob_observed_is_the_gaussian_marginal(covariance):
    with float64():
        d, b = 4, 12
        model = GaussianMixture((d,), num_components=3, covariance=covariance)
        params = _random_params(model, 5)
        weights, means, covs = _numpy_params(model, params)
        rng = np.random.default_rng(6)
        x = rng.normal(size=(b, d))
        observed = rng.random((b, d)) < 0.5
        observed[0] = True
        observed[1] = False
        got = np.asarray(jax.jit(model.log_prob_observed)(params, x, observed))
        for i in range(b):
            o = observed[i]
            if not o.any():
                want = 0.0
            else:
                want = logsumexp([
                    np.log(w) + multivariate_normal(m[o], c[np.ix_(o, o)]).logpdf(x[i, o])
                    for w, m, c in zip(weights, means, covs, strict=True)
                ])
            np.testing.assert_allclose(got[i], want, rtol=1e-10, atol=1e-12)
        assert got[1] == 0.0
        np.testing.assert_allclose(got[0], model.log_prob(params, x[:1], None)[0], rtol=1e-12)
        complete = jax.jit(model.complete, static_argnums=4)
        result = complete(params, jax.random.key(0), x, observed, 2)
        np.testing.assert_allclose(result.log_p_observed, got, rtol=1e-12)
        assert bool(jnp.all(result.exact)) and result.samples.shape == (2, b, d)
        np.testing.assert_array_equal(np.asarray(result.samples)[:, observed], np.broadcast_to(
            x[observed], (2, int(observed.sum()))))


def test_completions_match_the_schur_complement_conditional():
    with float64():
        d, n = 4, 40_000
        model = GaussianMixture((d,), num_components=2)
        params = _random_params(model, 7)
        weights, means, covs = _numpy_params(model, params)
        x = np.array([0.3, 9.0, -0.5, 9.0])  # entries 1 and 3 missing (their values unused)
        o = np.array([True, False, True, False])
        m = ~o
        log_w, cond_means, cond_covs = [], [], []
        for w, mu, c in zip(weights, means, covs, strict=True):
            gain = c[np.ix_(m, o)] @ np.linalg.inv(c[np.ix_(o, o)])
            cond_means.append(mu[m] + gain @ (x[o] - mu[o]))
            cond_covs.append(c[np.ix_(m, m)] - gain @ c[np.ix_(o, m)])
            log_w.append(np.log(w) + multivariate_normal(mu[o], c[np.ix_(o, o)]).logpdf(x[o]))
        post = np.exp(np.array(log_w) - logsumexp(log_w))
        assert post.min() > 0.05  # both components matter
        mean = sum(p * mc for p, mc in zip(post, cond_means, strict=True))
        cov = sum(
            p * (cc + np.outer(mc, mc))
            for p, mc, cc in zip(post, cond_means, cond_covs, strict=True)
        )
        cov = cov - np.outer(mean, mean)

        complete = jax.jit(model.complete, static_argnums=4)  # the mask may be traced
        result = complete(params, jax.random.key(1), x[None], jnp.asarray(o), n)
        draws = np.asarray(result.samples)[:, 0, m]
        se = np.sqrt(np.diag(cov) / n)
        np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * se)
        # Sample covariance: standard error of an entry <= sqrt((s_ii s_jj + s_ij^2) / n).
        cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
        np.testing.assert_array_less(np.abs(np.cov(draws.T) - cov), 5 * cov_se)
        np.testing.assert_array_equal(np.asarray(result.samples)[:, 0, o], np.tile(x[o], (n, 1)))


def test_sampling_and_bad_fields():
    model = GaussianMixture((2,), num_components=3)
    x, _ = _mixture_data(600)
    params = model.init(jax.random.key(0), jnp.asarray(x, jnp.float32))
    samples = np.asarray(jax.jit(model.sample, static_argnums=2)(params, jax.random.key(1), 20_000))
    assert samples.shape == (20_000, 2)
    weights, means, covs = _numpy_params(model, params)
    mean = weights @ means  # the model's own moments: the draws must match them
    cov = np.einsum("k,kij->ij", weights, covs + np.einsum("ki,kj->kij", means, means))
    cov = cov - np.outer(mean, mean)
    se = np.sqrt(np.diag(cov) / 20_000)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 4 * se)
    cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / 20_000)
    np.testing.assert_array_less(np.abs(np.cov(samples.T) - cov), 5 * cov_se)
    with pytest.raises(ConfigError, match="covariance must be one of diag, full"):
        GaussianMixture((2,), covariance="spherical")
    with pytest.raises(ConfigError, match="min_variance must be >= 0"):
        GaussianMixture((2,), min_variance=-1.0)
    with pytest.raises(ConfigError, match="em_iterations must be >= 0"):
        GaussianMixture((2,), em_iterations=-1)
    with pytest.raises(ConfigError, match="num_components must be >= 1"):
        GaussianMixture((2,), num_components=0)
