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
