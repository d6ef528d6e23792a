"""VAE completion against the PPCA oracle: the missing-data bound and the conditional draws.

Oracle (float64): p(z) = N(0, I_K), p(x | z) = N(W z + b, s^2 I_D), so x ~ N(b, C) with
C = W W^T + s^2 I, p(x_o) = N(x_o; b_o, C_oo) and p(x_m | x_o) is Gaussian with mean
b_m + C_mo C_oo^-1 (x_o - b_o) and covariance C_mm - C_mo C_oo^-1 C_om. A ``VAE(hidden=())``
with its linear decoder set to (W, b, s) and a broad, x-independent encoder must give the
IWAE-k bound on log p(x_o) converging to the exact value, and completions whose missing
entries have the exact conditional moments (sampling-importance-resampling, large k).
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from genjax_models.cli import main
from genjax_models.data import Batch, DataSpec
from genjax_models.errors import ConfigError, ShapeError
from genjax_models.latent import VAE
from genjax_models.model import get_model
from tests.conftest import TINY_SETS
from tests.x64 import float64

D, K, S = 5, 2, 0.6
W = np.array([[1.0, 0.2], [0.5, -1.0], [-0.7, 0.4], [0.3, 0.9], [1.1, -0.3]])
BIAS = np.array([0.2, -0.1, 0.4, 0.0, -0.3])
SEEN = np.array([True, False, True, False, True])  # observed dims 0, 2, 4


def _params(q_std: float = 1.2) -> dict:
    return {
        "encoder": {"net": {"Dense_0": {
            "kernel": jnp.zeros((D, 2 * K)),
            "bias": jnp.concatenate([jnp.zeros(K), jnp.full(K, math.log(q_std))]),
        }}},
        "decoder": {"net": {"Dense_0": {"kernel": jnp.asarray(W.T), "bias": jnp.asarray(BIAS)}},
                    "log_scale": jnp.full((D,), math.log(S))},
    }


def _model() -> VAE:
    return VAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K)


def _data(num: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(num, K)) @ W.T + BIAS + S * rng.normal(size=(num, D))


def _exact_conditional(x_o: np.ndarray):
    cov = W @ W.T + S**2 * np.eye(D)
    o, m = np.flatnonzero(SEEN), np.flatnonzero(~SEEN)
    gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
    mean = BIAS[m] + (x_o - BIAS[o]) @ gain.T
    return mean, cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)], cov[np.ix_(o, o)]


def test_bound_reaches_the_exact_observed_marginal_and_completions_its_conditional() -> None:
    with float64():
        model, params = _model(), _params()
        x = _data()
        _, cond_cov, cov_oo = _exact_conditional(x[:, SEEN])
        exact = multivariate_normal(BIAS[SEEN], cov_oo).logpdf(x[:, SEEN])
        result = model.complete(params, jax.random.key(0), jnp.asarray(x), SEEN, 4000,
                                num_samples=200000)
        np.testing.assert_allclose(result.log_p_observed, exact, rtol=0, atol=0.02)
        assert not bool(jnp.any(result.exact))
        samples = np.asarray(result.samples)
        assert samples.shape == (4000, 3, D)
        np.testing.assert_array_equal(samples[:, :, SEEN], np.broadcast_to(x[:, SEEN],
                                                                           (4000, 3, 3)))
        cond_mean, _, _ = _exact_conditional(x[:, SEEN])
        for b in range(3):
            missing = samples[:, b][:, ~SEEN]
            np.testing.assert_allclose(missing.mean(0), cond_mean[b], atol=0.08)
            np.testing.assert_allclose(np.cov(missing.T), cond_cov, atol=0.1)
        # fully observed: the bound is the ordinary IWAE-k bound of log p(x)
        full = model.complete(params, jax.random.key(1), jnp.asarray(x), np.ones(D, bool), 2,
                              num_samples=200000)
        exact_full = multivariate_normal(BIAS, W @ W.T + S**2 * np.eye(D)).logpdf(x)
        np.testing.assert_allclose(full.log_p_observed, exact_full, rtol=0, atol=0.03)
        np.testing.assert_array_equal(full.samples, np.broadcast_to(x, (2, 3, D)))


def test_small_k_bound_is_below_the_exact_value_on_average() -> None:
    with float64():
        model, params = _model(), _params()
        x = jnp.asarray(_data())
        exact = multivariate_normal(BIAS[SEEN], _exact_conditional(np.asarray(x)[:, SEEN])[2]
                                    ).logpdf(np.asarray(x)[:, SEEN])
        bounds = jax.vmap(lambda key: model.complete(params, key, x, SEEN, 1,
                                                     num_samples=5).log_p_observed)(
            jax.random.split(jax.random.key(3), 2000))
        assert np.all(np.asarray(bounds.mean(0)) < exact)


def test_completion_errors_and_models_that_cannot_complete() -> None:
    model, params = _model(), jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), _params())
    x = jnp.asarray(_data(), jnp.float32)
    with pytest.raises(ShapeError, match="observed mask must have shape"):
        model.complete(params, jax.random.key(0), x, np.ones(4, bool), 2)
    with pytest.raises(ConfigError, match="num_samples"):
        model.complete(params, jax.random.key(0), x, SEEN, 2, num_samples=0)
    spec = DataSpec((4, 4, 1), "binary", 2, num_classes=3)
    cvae = get_model("cvae", spec, hidden=(8,), latent_dim=2, eval_samples=4)
    batch = Batch(jnp.zeros((2, 4, 4, 1)), jnp.array([0, 2]))
    cvae_params = cvae.init(jax.random.key(0), batch)
    half = np.zeros((4, 4, 1), bool)
    half[:2] = True
    out = cvae.complete(cvae_params, jax.random.key(1), batch, half, 3)
    assert out.samples.shape == (3, 2, 4, 4, 1) and out.log_p_observed.shape == (2,)
    with pytest.raises(ShapeError, match="needs class labels"):
        cvae.complete(cvae_params, jax.random.key(1), jnp.zeros((2, 4, 4, 1)), half, 3)


def test_cli_completes_the_top_half_with_a_trained_vae(tmp_path, capsys) -> None:
    """The CLI path, with a mask-aware encoder (the training log gains the masked bound)."""
    workdir = tmp_path / "vae"
    sets = [a for s in [*TINY_SETS, "model.mask_aware=true"] for a in ("--set", s)]
    assert main(["train", "vae", "--data", "digits", "--steps", "10", "--workdir",
                 str(workdir), "--no-progress", *sets]) == 0
    capsys.readouterr()
    logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert any("masked_bound" in row for row in logged)
    out = tmp_path / "completions.png"
    assert main(["complete", "--workdir", str(workdir), "--mask", "top-half", "--examples",
                 "3", "--num", "2", "--option", "num_samples=20", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert out.exists() and sum('"kind": "estimate"' in line for line in lines) == 3


def test_resampling_draws_indices_in_proportion_to_the_weights() -> None:
    from genjax_models.latent.vae_completion import resample_indices

    probs = np.array([[0.1, 0.5, 0.0], [0.2, 0.25, 0.0], [0.7, 0.25, 1.0]])  # [k = 3, B = 3]
    log_w = jnp.log(jnp.asarray(probs)) + jnp.array([0.0, 40.0, -40.0])  # scale-free
    num = 20000
    index = np.asarray(resample_indices(jax.random.key(0), log_w, num))
    assert index.shape == (num, 3) and index.min() >= 0 and index.max() <= 2
    for b in range(3):
        freq = np.bincount(index[:, b], minlength=3) / num
        np.testing.assert_allclose(freq, probs[:, b], atol=4 * math.sqrt(0.25 / num))
