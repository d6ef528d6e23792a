"""M2 (semi-supervised VAE) against its definition and a class-conditional PPCA oracle.

- L(x, y) for every class is the CVAE's ELBO plus log p(y) with the same noise;
- the unlabelled bound is U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)), the labelled one
  L(x, y) plus the weighted cross-entropy, mixed per example by the label -1;
- with the exact posterior as encoder, ``log_prob`` (y summed exactly over IWAE-k per class)
  equals the exact log p(x) = logsumexp_y log p(x | y) - log C for every k (float64);
- ``data.num_labelled`` keeps a class-balanced, seeded subset of labels; other models refuse
  partly labelled data; the CLI trains, evaluates the classifier and samples.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from genjax_models.cli import main
from genjax_models.data import Batch, DataSpec, load_dataset, prepare
from genjax_models.data.semi_supervised import UNLABELLED, keep_labels, labelled_subset
from genjax_models.errors import ConfigError
from genjax_models.latent import CVAE, M2, ppca_log_prob
from genjax_models.model import get_model
from genjax_models.train import TrainConfig, fit
from tests.conftest import TINY_SETS
from tests.latent.test_cvae import C, D, K, S, _cvae_params, _oracle
from tests.x64 import float64

SPEC = DataSpec((4, 4, 1), "binary", 2, num_classes=3)


def _tiny(**kw) -> M2:
    return get_model("m2", SPEC, hidden=(8,), latent_dim=2, classifier_hidden=(8,), **kw)


def _batch(labels):
    x = jax.random.bernoulli(jax.random.key(0), 0.4, (len(labels), 4, 4, 1)).astype(jnp.float64)
    return Batch(x, jnp.asarray(labels, jnp.int32))


def test_loss_is_the_labelled_and_the_summed_out_bound_per_example() -> None:
    with float64():
        model = _tiny(classification_weight=0.7)
        batch = _batch([0, UNLABELLED, 2, UNLABELLED, 1, 1])
        params = model.init(jax.random.key(1), batch)
        key = jax.random.key(2)
        x = batch.x.reshape(6, -1)
        bounds = model.class_bounds(params, x, key)  # [B, C]
        # each class column is the CVAE's ELBO (same noise) plus log p(y) = -log C
        cvae = CVAE(event_shape=SPEC.event_shape, hidden=(8,), latent_dim=2, num_classes=3)
        for c in range(3):
            _, m = cvae.loss(params, Batch(batch.x, jnp.full(6, c)), key)
            np.testing.assert_allclose(bounds[:, c].mean(), m["elbo"] - math.log(3), rtol=1e-12)
        log_qy = model.classify(params, x)
        qy = jnp.exp(log_qy)
        u = jnp.sum(qy * (bounds - log_qy), axis=-1)  # sum_y q (L - log q)
        y = np.asarray(batch.y)
        lab = y >= 0
        per = np.where(lab, np.asarray(bounds)[np.arange(6), np.maximum(y, 0)], np.asarray(u))
        ce = -np.asarray(log_qy)[np.arange(6), np.maximum(y, 0)][lab].mean()
        loss, metrics = model.loss(params, batch, key)
        np.testing.assert_allclose(loss, -per.mean() + 0.7 * ce, rtol=1e-12)
        np.testing.assert_allclose(metrics["nll"], -np.mean(u), rtol=1e-12)
        np.testing.assert_allclose(metrics["labelled_fraction"], 4 / 6)
        # no labels at all: every example is summed out, and the classifier term vanishes
        loss_none, _ = model.loss(params, batch.x, key)
        np.testing.assert_allclose(loss_none, -np.mean(u), rtol=1e-12)
        # U(x) <= log sum_y exp L(x, y) (the tightest bound with these L's), equality iff
        # q(y | x) is proportional to exp L(x, y)
        assert np.all(np.asarray(u) <= np.asarray(jax.nn.logsumexp(bounds, -1)) + 1e-12)


def test_log_prob_sums_y_exactly_and_is_exact_with_the_exact_posterior() -> None:
    with float64():
        x, y, w, b, v = _oracle()
        model = M2(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K,
                   num_classes=C, classifier_hidden=(4,))
        params = {**_cvae_params(w, b, v),
                  "classifier": model.classifier().init(jax.random.key(0), x)["params"]}
        init = jax.eval_shape(model.init, jax.random.key(0), x)
        assert jax.tree.map(jnp.shape, init) == jax.tree.map(jnp.shape, params)
        per_class = jnp.stack([ppca_log_prob(x - v[:, c], w, b, S) for c in range(C)])
        exact = jax.nn.logsumexp(per_class, axis=0) - math.log(C)  # log p(x)
        for k in (1, 7):
            got = model.log_prob(params, Batch(x, y), jax.random.key(k), num_samples=k,
                                 chunk_size=3)
            np.testing.assert_allclose(got, exact, rtol=0, atol=1e-8)
        info = model.describe_log_prob(num_samples=7)
        assert (info.kind, info.estimator, info.details["sum_over_y"]) == (
            "lower-bound", "iwae-7-sum-y", "exact")
        samples = model.sample(params, jax.random.key(3), 5)  # y ~ p(y) when not given
        assert samples.shape == (5, D)


def test_labelled_subset_is_balanced_seeded_and_checked() -> None:
    labels = np.repeat(np.arange(4), [10, 8, 6, 6])
    keep = labelled_subset(labels, 10, 4, seed=3)
    assert len(keep) == len(set(keep)) == 10
    assert np.bincount(labels[keep], minlength=4).tolist() == [3, 3, 2, 2]
    np.testing.assert_array_equal(keep, labelled_subset(labels, 10, 4, seed=3))
    assert not np.array_equal(keep, labelled_subset(labels, 10, 4, seed=4))
    with pytest.raises(ConfigError, match="num_labelled must lie in 0..30"):
        labelled_subset(labels, 31, 4)
    with pytest.raises(ConfigError, match="class 2 has 6 training examples"):
        labelled_subset(labels, 28, 4)

    digits = prepare(load_dataset("digits"), binarize="threshold(8)")
    partial = keep_labels(digits, 20, seed=0)
    hidden = partial.train_labels
    assert np.sum(hidden >= 0) == 20 and set(np.unique(hidden)) == {-1, *range(10)}
    np.testing.assert_array_equal(partial.dataset.test_labels, digits.dataset.test_labels)
    assert partial.preprocessing["num_labelled"] == 20
    vae = get_model("cvae", digits.spec, hidden=(8,), latent_dim=2)
    with pytest.raises(ConfigError, match="not semi-supervised; train m2"):
        fit(vae, partial, TrainConfig(steps=1, batch_size=8), progress=False)


def test_cli_trains_on_few_labels_and_reports_the_classifier_accuracy(tmp_path, capsys):
    workdir = tmp_path / "m2"
    sets = [a for s in [*TINY_SETS, "data.num_labelled=20", "model.classifier_hidden=(16,)"]
            for a in ("--set", s)]
    assert main(["train", "m2", "--data", "digits", "--steps", "10", "--workdir",
                 str(workdir), "--no-progress", *sets]) == 0
    capsys.readouterr()
    assert main(["eval", "--workdir", str(workdir), "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert '"iwae-3-sum-y"' in out and "classifier_accuracy" in out
    npy = tmp_path / "s.npy"
    assert main(["sample", "--workdir", str(workdir), "--num", "3", "--label", "4",
                 "--out", str(npy)]) == 0
    assert np.load(npy).shape == (3, 8, 8, 1)
    assert main(["train", "cvae", "--data", "digits", "--steps", "2", "--workdir",
                 str(tmp_path / "bad"), "--no-progress", *sets[:-2]]) == 2
    assert "not semi-supervised" in capsys.readouterr().err


def test_completion_sums_y_and_matches_the_mixture_of_gaussians_oracle() -> None:
    """With y summed out the class-conditional PPCA is a mixture of C Gaussians in x.

    Fully observed with the exact posterior encoder, every weight is p(x, y) / q: the bound is
    exactly log p(x) for any k. Half observed with a broad x-independent encoder, the bound
    converges to log p(x_o) = logsumexp_y log N(x_o; b_o + V_oy, C_oo) - log C and the
    completions' missing entries have the mixture's conditional mean
    sum_y p(y | x_o) (mu_m|o,y).
    """
    with float64():
        x, _, w, b, v = _oracle()
        x = x[:3]
        model = M2(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K,
                   num_classes=C, classifier_hidden=(4,), eval_chunk=10000)
        params = {**_cvae_params(w, b, v),
                  "classifier": model.classifier().init(jax.random.key(0), x)["params"]}
        per_class = jnp.stack([ppca_log_prob(x - v[:, c], w, b, S) for c in range(C)])
        exact_full = jax.nn.logsumexp(per_class, axis=0) - math.log(C)
        everything = np.ones(D, bool)
        for k in (1, 5):
            got = model.complete(params, jax.random.key(k), x, everything, 2, num_samples=k)
            np.testing.assert_allclose(got.log_p_observed, exact_full, rtol=0, atol=1e-8)
            np.testing.assert_array_equal(got.samples[0], x)

        seen = np.arange(D) < 3
        o, m = np.flatnonzero(seen), np.flatnonzero(~seen)
        cov = np.asarray(w @ w.T) + S**2 * np.eye(D)
        gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
        means = np.asarray(b)[:, None] + np.asarray(v)  # [D, C]
        xo = np.asarray(x)[:, o]
        log_py = np.stack([multivariate_normal(means[o, c], cov[np.ix_(o, o)]).logpdf(xo)
                           for c in range(C)], axis=1) - math.log(C)  # [B, C]
        exact_o = np.logaddexp.reduce(log_py, axis=1)
        post_y = np.exp(log_py - exact_o[:, None])
        cond_mean = np.einsum("bc,bcm->bm", post_y, np.stack(
            [means[m, c] + (xo - means[o, c]) @ gain.T for c in range(C)], axis=1))
        broad = jax.tree.map(jnp.zeros_like, params["encoder"])
        broad["net"]["Dense_0"]["bias"] = jnp.concatenate([jnp.zeros(K), jnp.full(K, 0.5)])
        result = model.complete({**params, "encoder": broad}, jax.random.key(9), x, seen,
                                4000, num_samples=50000)
        np.testing.assert_allclose(result.log_p_observed, exact_o, rtol=0, atol=0.03)
        assert not bool(jnp.any(result.exact))
        missing = np.asarray(result.samples)[:, :, m]  # [n, B, |m|]
        np.testing.assert_allclose(missing.mean(0), cond_mean, atol=0.1)
