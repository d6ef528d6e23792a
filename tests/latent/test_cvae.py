"""The conditional VAE against a class-conditional linear-Gaussian oracle, and its label paths.

Oracle (float64): p(z) = N(0, I_K), p(x | z, y) = N(W z + b + V e_y, s^2 I_D) is PPCA with a
per-class mean, so log p(x | y) is exact (:func:`ppca_log_prob` with mean b + V e_y), and so is
the posterior. A ``CVAE(hidden=())`` with its linear encoder / decoder set by hand to those
maps must give log p(x | y) exactly for the ELBO and the IWAE-k bound alike (every importance
weight equals log p(x | y)); with the wrong labels it must give the wrong class's value.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.cli import main
from genjax_models.data import Batch, DataSpec
from genjax_models.errors import ConfigError, ShapeError
from genjax_models.latent import CVAE, ppca_log_prob
from genjax_models.model import get_model
from tests.conftest import TINY_SETS
from tests.x64 import float64

D, K, C, B = 6, 3, 4, 8
S = 0.5


def _oracle(seed: int = 0):
    """Return x, y and the class-conditional PPCA (W orthogonal columns: diagonal posterior)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(D, K)))
    w = q * np.array([2.0, 1.0, 0.5])
    b, v = rng.normal(size=D), 2.0 * rng.normal(size=(D, C))
    y = np.arange(B) % C
    x = rng.normal(size=(B, K)) @ w.T + b + v[:, y].T + S * rng.normal(size=(B, D))
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(w), jnp.asarray(b), jnp.asarray(v)


def _cvae_params(w, b, v) -> dict:
    """Linear encoder on [x, e_y] = the exact posterior; linear decoder on [z, e_y] = the model."""
    a = jnp.linalg.solve(w.T @ w + S**2 * jnp.eye(K), w.T)  # posterior mean = A (x - b - V e_y)
    post_var = S**2 / jnp.diag(w.T @ w + S**2 * jnp.eye(K))
    mean_kernel = jnp.concatenate([a.T, -(a @ v).T], axis=0)  # [D + C, K]
    enc_kernel = jnp.concatenate([mean_kernel, jnp.zeros((D + C, K))], axis=1)
    enc_bias = jnp.concatenate([-a @ b, 0.5 * jnp.log(post_var)])
    return {
        "encoder": {"net": {"Dense_0": {"kernel": enc_kernel, "bias": enc_bias}}},
        "decoder": {
            "net": {"Dense_0": {"kernel": jnp.concatenate([w.T, v.T], axis=0), "bias": b}},
            "log_scale": jnp.full((D,), math.log(S)),
        },
    }


def _model(**kw) -> CVAE:
    return CVAE(event_shape=(D,), likelihood="gaussian", hidden=(), latent_dim=K,
                num_classes=C, **kw)


def test_exact_posterior_gives_the_exact_conditional_likelihood_for_every_bound() -> None:
    with float64():
        x, y, w, b, v = _oracle()
        model, params = _model(), _cvae_params(w, b, v)
        init = jax.eval_shape(model.init, jax.random.key(0), Batch(x, y))
        assert jax.tree.map(jnp.shape, init) == jax.tree.map(jnp.shape, params)
        exact = ppca_log_prob(x - v[:, y].T, w, b, S)  # log p(x | y)
        for k in (1, 10):
            got = model.log_prob(params, Batch(x, y), jax.random.key(k), num_samples=k)
            np.testing.assert_allclose(got, exact, rtol=0, atol=1e-8)
        wrong = (y + 1) % C
        np.testing.assert_allclose(
            model.log_prob(params, Batch(x, wrong), jax.random.key(1), num_samples=1),
            ppca_log_prob(x - v[:, wrong].T, w, b, S), rtol=0, atol=1e-8,
        )  # wrong labels: a different, still exact (the encoder knows y) value
        # the training loss: -ELBO in expectation, analytic KL of the exact posterior
        losses, metrics = jax.vmap(lambda key: model.loss(params, Batch(x, y), key))(
            jax.random.split(jax.random.key(5), 2000)
        )
        se = float(losses.std()) / math.sqrt(losses.shape[0])
        assert abs(float(losses.mean()) + float(exact.mean())) < 4 * se + 1e-8
        info = model.describe_log_prob(num_samples=10)
        assert (info.kind, info.estimator, info.details["conditional"]) == (
            "lower-bound", "iwae-10", "log p(x|y)",
        )


def test_samples_follow_the_label_and_bad_labels_are_clear_errors() -> None:
    with float64():
        _, _, w, b, v = _oracle()
        model, params = _model(), _cvae_params(w, b, v)
        num = 4000
        for label in (0, 3):
            draws = model.sample(params, jax.random.key(label), num,
                                 labels=jnp.full(num, label), mean=True)
            # mean=True: E[x | z, y] = W z + b + V e_y, z ~ N(0, I): mean b + V e_y, cov W W^T
            np.testing.assert_allclose(draws.mean(0), b + v[:, label], atol=4 * 2.0 / num**0.5)
            np.testing.assert_allclose(np.cov(np.asarray(draws).T), w @ w.T, atol=0.25)
        with pytest.raises(ConfigError, match="conditional: pass labels"):
            model.sample(params, jax.random.key(0), 2)
        with pytest.raises(ShapeError, match=r"labels must lie in 0..3"):
            model.sample(params, jax.random.key(0), 2, labels=jnp.array([0, 4]))
        with pytest.raises(ShapeError, match="needs class labels"):
            model.log_prob(params, jnp.zeros((2, D)), jax.random.key(0))
    with pytest.raises(ConfigError, match="needs labelled data"):
        get_model("cvae", DataSpec((D,), "continuous"))
    assert get_model("cvae", DataSpec((D,), "binary", 2, num_classes=10)).num_classes == 10


def test_cli_trains_samples_each_label_and_evaluates_the_conditional_bound(tmp_path, capsys):
    workdir = tmp_path / "cvae"
    sets = [a for s in TINY_SETS for a in ("--set", s)]
    assert main(["train", "cvae", "--data", "digits", "--steps", "10", "--workdir",
                 str(workdir), "--no-progress", *sets]) == 0
    assert (workdir / "samples.png").exists()  # the preview cycles through the classes
    out = {label: tmp_path / f"{label}.npy" for label in ("3", "7")}
    for label, path in out.items():
        assert main(["sample", "--workdir", str(workdir), "--num", "4", "--seed", "1",
                     "--label", label, "--option", "mean=true", "--out", str(path)]) == 0
    three, seven = (np.load(p) for p in out.values())
    assert three.shape == (4, 8, 8, 1) and not np.allclose(three, seven)
    capsys.readouterr()
    assert main(["sample", "--workdir", str(workdir), "--num", "2"]) == 2
    assert "conditional: pass --label" in capsys.readouterr().err
    assert main(["eval", "--workdir", str(workdir), "--k", "5"]) == 0
    report = capsys.readouterr().out
    assert '"iwae-5"' in report and "log p(x|y)" in report and "active_units" in report
