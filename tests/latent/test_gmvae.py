"""The GMVAE against a linear-Gaussian mixture oracle, its Monte Carlo KL, clusters and errors.

Oracle (float64): p(z) = sum_c pi_c N(mu_c, diag(sigma_c^2)) in K = 2, p(x | z) = N(W z + b,
s^2 I_D), so p(x) = sum_c pi_c N(x; W mu_c + b, W diag(sigma_c^2) W^T + s^2 I) in closed form.
A ``GMVAE(hidden=())`` with its linear decoder and prior set by hand to those maps must:
integrate its prior to 1, reach log p(x) with IWAE-k as k grows, and train on an ELBO whose
expectation equals the ELBO computed by quadrature on a grid over z.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from genjax_models.cli import main
from genjax_models.data import Batch, DataSpec
from genjax_models.errors import ConfigError
from genjax_models.latent import GMVAE, VAE, mixture_log_prob
from genjax_models.latent.gmvae import cluster_purity
from genjax_models.model import get_model
from tests.conftest import TINY_SETS
from tests.x64 import float64

D, K, C, B = 3, 2, 3, 6
S = 0.7
PI = np.array([0.5, 0.3, 0.2])
MU = np.array([[-1.5, 0.0], [1.5, 1.0], [0.0, -1.5]])
SIGMA = np.array([[0.6, 0.8], [0.5, 0.5], [1.0, 0.4]])
W = np.array([[1.0, 0.3], [-0.5, 1.2], [0.8, -0.7]])  # [D, K]
BIAS = np.array([0.1, -0.2, 0.3])
Q_MEAN, Q_STD = np.array([0.0, 0.0]), np.array([1.6, 1.4])  # a broad, x-independent proposal


def _prior() -> dict:
    return {"logits": jnp.log(jnp.asarray(PI)), "means": jnp.asarray(MU),
            "log_stds": jnp.log(jnp.asarray(SIGMA))}


def _params() -> dict:
    """Linear decoder x = z W^T + b with scale s; encoder ignores x: q = N(Q_MEAN, Q_STD^2)."""
    return {
        "encoder": {"net": {"Dense_0": {
            "kernel": jnp.zeros((D, 2 * K)),
            "bias": jnp.concatenate([jnp.asarray(Q_MEAN), jnp.log(jnp.asarray(Q_STD))]),
        }}},
        "decoder": {"net": {"Dense_0": {"kernel": jnp.asarray(W.T), "bias": jnp.asarray(BIAS)}},
                    "log_scale": jnp.full((D,), math.log(S))},
        "prior": _prior(),
    }


def _model(**kw) -> GMVAE:
    return GMVAE(**{"event_shape": (D,), "likelihood": "gaussian", "hidden": (),
                    "latent_dim": K, "num_components": C, **kw})


def _data(seed: int = 0) -> jnp.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.choice(C, size=B, p=PI)
    z = MU[c] + SIGMA[c] * rng.normal(size=(B, K))
    return jnp.asarray(z @ W.T + BIAS + S * rng.normal(size=(B, D)))


def _exact_log_marginal(x: np.ndarray) -> np.ndarray:
    terms = [np.log(PI[c]) + multivariate_normal(W @ MU[c] + BIAS,
                                                 W @ np.diag(SIGMA[c] ** 2) @ W.T
                                                 + S**2 * np.eye(D)).logpdf(x)
             for c in range(C)]
    return np.logaddexp.reduce(np.stack(terms), axis=0)


def _grid(half_width: float = 9.0, num: int = 361):
    axis = np.linspace(-half_width, half_width, num)
    zz = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, K)
    return jnp.asarray(zz), (axis[1] - axis[0]) ** 2


def test_mixture_prior_is_the_closed_form_density_and_integrates_to_one() -> None:
    with float64():
        zz, cell = _grid()
        log_p = mixture_log_prob(_prior(), zz)
        exact = np.log(sum(PI[c] * multivariate_normal(MU[c], np.diag(SIGMA[c] ** 2)).pdf(zz)
                           for c in range(C)))
        np.testing.assert_allclose(log_p, exact, rtol=0, atol=1e-10)
        assert abs(float(jnp.sum(jnp.exp(log_p)) * cell) - 1.0) < 1e-6
        # the model's own prior (through params) is the same function
        np.testing.assert_allclose(_model().prior_log_prob(_params(), zz[:7]), log_p[:7],
                                   rtol=0, atol=1e-12)


def test_iwae_reaches_the_exact_marginal_and_the_loss_is_the_quadrature_elbo() -> None:
    with float64():
        model, params, x = _model(), _params(), _data()
        exact = _exact_log_marginal(np.asarray(x))
        big = model.log_prob(params, x, jax.random.key(0), num_samples=200000, chunk_size=20000)
        np.testing.assert_allclose(big, exact, rtol=0, atol=0.02)
        # ELBO by quadrature: E_q log p(x | z) + E_q log p(z) + H(q), on a grid over z
        zz, cell = _grid()
        q_density = np.exp(multivariate_normal(Q_MEAN, np.diag(Q_STD**2)).logpdf(zz)) * cell
        log_lik = jax.vmap(lambda z: model.log_likelihood(params, x, jnp.broadcast_to(z, (B, K))))(
            zz)  # [G, B]
        entropy = float(np.sum(np.log(Q_STD)) + K * (0.5 * math.log(2 * math.pi) + 0.5))
        log_prior = np.asarray(mixture_log_prob(_prior(), zz))[:, None]
        elbo = q_density @ (np.asarray(log_lik) + log_prior) + entropy  # [B]
        assert np.all(elbo < exact - 0.1)  # a broad, x-independent q: a loose bound
        # the training loss (analytic entropy + Monte Carlo cross-entropy) is -ELBO on average
        losses, metrics = jax.vmap(lambda key: model.loss(params, x, key))(
            jax.random.split(jax.random.key(3), 4000))
        se = float(losses.std()) / math.sqrt(losses.shape[0])
        assert abs(float(losses.mean()) + float(elbo.mean())) < 4 * se
        np.testing.assert_allclose(metrics["nll"], losses, rtol=0, atol=1e-12)  # beta = 1
        # the k = 1 importance estimate (Monte Carlo log q) is the same ELBO on average
        one = jax.vmap(lambda key: model.log_prob(params, x, key, num_samples=1))(
            jax.random.split(jax.random.key(4), 4000))
        se_one = float(one.mean(1).std()) / math.sqrt(one.shape[0])
        assert abs(float(one.mean()) - float(elbo.mean())) < 4 * se_one


def test_one_standard_normal_component_is_the_plain_vae() -> None:
    with float64():
        gmvae = _model(num_components=1)
        vae = VAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K)
        params = _params()
        params["prior"] = {"logits": jnp.zeros(1), "means": jnp.zeros((1, K)),
                           "log_stds": jnp.zeros((1, K))}
        vae_params = {k: v for k, v in params.items() if k != "prior"}
        x = _data(1)
        for k in (1, 50):
            np.testing.assert_allclose(
                gmvae.log_prob(params, x, jax.random.key(k), num_samples=k),
                vae.log_prob(vae_params, x, jax.random.key(k), num_samples=k), rtol=0, atol=1e-10)
        # same reparameterised samples: the reconstruction agrees exactly, the KL on average
        _, g = gmvae.loss(params, x, jax.random.key(2))
        _, v = vae.loss(vae_params, x, jax.random.key(2))
        np.testing.assert_allclose(g["recon"], v["recon"], rtol=0, atol=1e-10)
        kls = jax.vmap(lambda key: gmvae.loss(params, x, key)[1]["kl"])(
            jax.random.split(jax.random.key(5), 4000))
        assert abs(float(kls.mean()) - float(v["kl"])) < 4 * float(kls.std()) / math.sqrt(4000)


def test_samples_come_from_the_mixture_and_from_one_component_on_request() -> None:
    with float64():
        model, params = _model(), _params()
        num = 40000
        z = model.sample_latent(params, jax.random.key(0), num, {"component": None})
        # the mixture's first two moments
        mean = PI @ MU
        second = sum(PI[c] * (np.diag(SIGMA[c] ** 2) + np.outer(MU[c], MU[c])) for c in range(C))
        np.testing.assert_allclose(np.mean(z, 0), mean, atol=0.03)
        np.testing.assert_allclose(np.cov(np.asarray(z).T), second - np.outer(mean, mean),
                                   atol=0.05)
        for c in range(C):
            zc = model.sample_latent(params, jax.random.key(c), num, {"component": c})
            np.testing.assert_allclose(np.mean(zc, 0), MU[c], atol=0.03)
            np.testing.assert_allclose(np.std(zc, 0), SIGMA[c], atol=0.02)
        x = model.sample(params, jax.random.key(1), 5, component=2, mean=True)
        assert x.shape == (5, D)
        with pytest.raises(ConfigError, match=r"component must be in 0..2"):
            model.sample(params, jax.random.key(1), 5, component=3)


def test_clusters_are_bayes_rule_at_the_posterior_mean_and_purity_counts_majorities() -> None:
    with float64():
        model, params = _model(), _params()
        # an encoder that returns z = first K coordinates of x: clusters of chosen points
        params["encoder"]["net"]["Dense_0"]["kernel"] = jnp.zeros((D, 2 * K)).at[
            jnp.arange(K), jnp.arange(K)].set(1.0)
        params["encoder"]["net"]["Dense_0"]["bias"] = jnp.zeros(2 * K)
        x = jnp.concatenate([jnp.asarray(MU), jnp.zeros((C, 1))], axis=1)  # z = mu_c
        probs = model.cluster_probabilities(params, x)
        joint = np.stack([PI[c] * multivariate_normal(MU[c], np.diag(SIGMA[c] ** 2)).pdf(MU)
                          for c in range(C)], axis=1)
        np.testing.assert_allclose(probs, joint / joint.sum(1, keepdims=True), atol=1e-12)
        np.testing.assert_array_equal(model.assign(params, x), [0, 1, 2])
        diag = model.diagnostics(params, Batch(x, jnp.array([4, 4, 1])), jax.random.key(0))
        assert diag["components_used"] == 3.0 and diag["cluster_purity"] == 1.0
        assert 1.0 < diag["cluster_perplexity"] <= 3.0
        assert "cluster_purity" not in model.diagnostics(params, x, jax.random.key(0))
    clusters, labels = jnp.array([0, 0, 0, 1, 1, 2]), jnp.array([3, 3, 1, 2, 0, 0])
    assert float(cluster_purity(clusters, labels, 3, 4)) == pytest.approx(4 / 6)


def test_frozen_weights_get_no_gradient_and_bad_settings_are_clear_errors() -> None:
    model = _model(learn_weights=False)
    x = _data().astype(jnp.float32)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), _params())
    grads = jax.grad(lambda p: model.loss(p, x, jax.random.key(0))[0])(params)
    assert float(jnp.max(jnp.abs(grads["prior"]["logits"]))) == 0.0
    assert float(jnp.max(jnp.abs(grads["prior"]["means"]))) > 0.0
    learned = jax.grad(lambda p: _model(learn_weights=True).loss(p, x, jax.random.key(0))[0])(
        params)
    assert float(jnp.max(jnp.abs(learned["prior"]["logits"]))) > 0.0
    with pytest.raises(ConfigError, match="free_bits"):
        _model(free_bits=0.5)
    with pytest.raises(ConfigError, match="num_components"):
        _model(num_components=0)
    init = get_model("gmvae", DataSpec((4,), "binary", 2), latent_dim=3, num_components=5).init(
        jax.random.key(0), jnp.zeros((2, 4)))
    assert init["prior"]["means"].shape == (5, 3) and float(jnp.std(init["prior"]["means"])) > 0.1


def test_cli_trains_samples_a_component_and_reports_clusters(tmp_path, capsys) -> None:
    workdir = tmp_path / "gmvae"
    sets = [a for s in TINY_SETS for a in ("--set", s)]
    assert main(["train", "gmvae", "--data", "digits", "--steps", "10", "--workdir",
                 str(workdir), "--no-progress", *sets, "--set", "model.num_components=4"]) == 0
    out = tmp_path / "c1.npy"
    assert main(["sample", "--workdir", str(workdir), "--num", "3", "--option", "component=1",
                 "--out", str(out)]) == 0
    assert np.load(out).shape == (3, 8, 8, 1)
    capsys.readouterr()
    assert main(["eval", "--workdir", str(workdir), "--k", "5"]) == 0
    report = capsys.readouterr().out
    assert '"iwae-5"' in report and "cluster_purity" in report and "components_used" in report
