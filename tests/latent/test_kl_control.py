"""KL controls of the VAE: beta, linear warm-up, free bits and active units, against closed forms.

Oracles: with beta = 1, no warm-up and lambda = 0 the loss is the negative ELBO computed here
from the model's own encoder / decoder and the analytic Gaussian KL; free bits with lambda = 0
is the batch-mean KL; a floor above every dimension's KL removes the KL gradient; the trainer
hands the step to the loss, so the warm-up weight follows step / W exactly.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax_models.data.batch import Batch
from genjax_models.data.dataset import Dataset
from genjax_models.data.transforms import prepare
from genjax_models.errors import ConfigError, ShapeError
from genjax_models.eval import evaluate
from genjax_models.latent import IWAE, VAE
from genjax_models.latent.kl_control import (
    active_units,
    free_bits_kl,
    kl_weight,
    unit_activity,
)
from genjax_models.train.state import TrainState
from genjax_models.train.step import make_train_step, make_update
from tests.x64 import float64

SHAPE = (3, 3, 1)
D, K = 9, 4


def in_float64(test):
    """Run ``test`` with float64 enabled (the oracles compare to 1e-12)."""

    @functools.wraps(test)
    def wrapped() -> None:
        with float64():
            test()

    return wrapped


def _model(**kw) -> VAE:
    return VAE(event_shape=SHAPE, hidden=(12,), latent_dim=K, **kw)


def _setup(n: int = 8):
    x = jax.random.bernoulli(jax.random.key(1), 0.4, (n, *SHAPE)).astype(jnp.float64)
    params = _model().init(jax.random.key(0), x)
    return x, params


def _manual_elbo(model: VAE, params, x, key) -> jax.Array:
    """The ELBO from the model's pieces: log p(x | mean + std * eps) - closed-form KL."""
    flat = x.reshape(x.shape[0], D)
    mean, log_std = model.encode(params, flat)
    eps = jax.random.normal(key, (1, *mean.shape), mean.dtype)[0]
    log_lik = model.log_likelihood(params, flat, mean + jnp.exp(log_std) * eps)
    var = jnp.exp(2 * log_std)
    kl = 0.5 * jnp.sum(mean**2 + var - 1.0 - jnp.log(var), axis=-1)
    return jnp.mean(log_lik - kl)


@in_float64
def test_beta_one_without_warmup_or_floor_is_the_negative_elbo() -> None:
    x, params = _setup()
    key = jax.random.key(3)
    expected = _manual_elbo(_model(), params, x, key)
    for kw in ({}, {"beta": 1.0, "free_bits": 0.0, "kl_warmup_steps": 0}):
        loss, metrics = _model(**kw).loss(params, x, key, step=jnp.asarray(7))
        np.testing.assert_allclose(loss, -expected, rtol=1e-12)
        np.testing.assert_allclose(metrics["elbo"], expected, rtol=1e-12)
        assert float(metrics["kl_weight"]) == 1.0


@in_float64
def test_beta_scales_only_the_kl_and_leaves_the_reported_elbo() -> None:
    x, params = _setup()
    key = jax.random.key(4)
    loss1, m1 = _model().loss(params, x, key)
    loss3, m3 = _model(beta=3.0).loss(params, x, key)
    np.testing.assert_allclose(loss3 - loss1, 2.0 * m1["kl"], rtol=1e-10)
    np.testing.assert_allclose(m3["elbo"], m1["elbo"], rtol=1e-12)
    np.testing.assert_allclose(m3["nll"], -m1["elbo"], rtol=1e-12)
    loss0, _ = _model(beta=0.0).loss(params, x, key)  # beta = 0: reconstruction only
    np.testing.assert_allclose(loss0, m1["recon"], rtol=1e-12)


def test_kl_weight_ramps_linearly_and_none_means_the_end_point() -> None:
    steps = jnp.array([0, 25, 50, 100, 400])
    np.testing.assert_allclose(kl_weight(steps, 2.0, 100), [0.0, 0.5, 1.0, 2.0, 2.0])
    assert float(kl_weight(None, 2.0, 100)) == 2.0
    assert float(kl_weight(jnp.asarray(0), 0.5, 0)) == 0.5
    with pytest.raises(ConfigError, match="beta"):
        kl_weight(0, -1.0, 10)


@in_float64
def test_free_bits_zero_is_the_batch_mean_kl_and_a_floor_stops_its_gradient() -> None:
    kl = jax.random.uniform(jax.random.key(0), (5, K), jnp.float64, 0.0, 2.0)
    np.testing.assert_allclose(free_bits_kl(kl, 0.0), jnp.mean(jnp.sum(kl, -1)), rtol=1e-13)
    per_dim = jnp.mean(kl, axis=0)
    lam = float(jnp.sort(per_dim)[1])  # two dimensions at or below the floor, two above
    expected = jnp.sum(jnp.maximum(per_dim, lam))
    np.testing.assert_allclose(free_bits_kl(kl, lam), expected, rtol=1e-13)
    with pytest.raises(ShapeError, match=r"\[B, K\]"):
        free_bits_kl(kl[0], 0.1)

    # a floor above every dimension's KL: the loss is recon + K * lambda, and the encoder's
    # gradient is the reconstruction term's alone
    x, params = _setup()
    key = jax.random.key(5)
    floored = _model(free_bits=50.0)
    loss, metrics = floored.loss(params, x, key)
    np.testing.assert_allclose(loss, metrics["recon"] + K * 50.0, rtol=1e-12)
    grad_floor = jax.grad(lambda p: floored.loss(p, x, key)[0])(params)
    grad_recon = jax.grad(lambda p: floored.loss(p, x, key)[1]["recon"])(params)
    for a, b in zip(jax.tree.leaves(grad_floor), jax.tree.leaves(grad_recon), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_trainer_passes_the_step_so_the_warmup_weight_is_step_over_w() -> None:
    model = _model(kl_warmup_steps=10, beta=2.0)
    x = jax.random.bernoulli(jax.random.key(1), 0.4, (32, *SHAPE)).astype(jnp.float32)
    optimizer = optax.adam(1e-3)
    state = TrainState.create(model.init(jax.random.key(0), x), optimizer)
    step = make_train_step(make_update(model, optimizer, batch_size=8), 4, batch_size=8)
    state, metrics = step(state, x, jax.random.key(2))
    np.testing.assert_allclose(metrics["kl_weight"], [0.0, 0.2, 0.4, 0.6], rtol=1e-6)
    _, metrics = step(state, x, jax.random.key(2))  # resumed: the ramp continues
    np.testing.assert_allclose(metrics["kl_weight"], [0.8, 1.0, 1.2, 1.4], rtol=1e-6)


@in_float64
def test_unit_activity_and_active_units_count_collapsed_units() -> None:
    means = jnp.stack(
        [jnp.linspace(-1, 1, 11), jnp.full(11, 0.3), 0.01 * jnp.linspace(-1, 1, 11)], axis=1
    )
    np.testing.assert_allclose(unit_activity(means), np.var(np.asarray(means), 0, ddof=1))
    assert int(active_units(means)) == 1  # variance 0.11, 0, 1.1e-5: only the first
    with pytest.raises(ShapeError, match="N >= 2"):
        unit_activity(means[:1])

    # zero the encoder's mean weights of units 0 and 2: their posterior mean ignores x
    x, params = _setup(n=40)
    net = params["encoder"]["net"]
    last = sorted(net)[-1]
    kernel = net[last]["kernel"].at[:, jnp.array([0, 2])].set(0.0)
    collapsed = {**params, "encoder": {"net": {**net, last: {**net[last], "kernel": kernel}}}}
    diag = _model().diagnostics(collapsed, x, jax.random.key(0))
    activity = unit_activity(_model().encode(collapsed, x.reshape(40, D))[0])
    assert float(activity[0]) == 0.0 and float(activity[2]) == 0.0
    assert diag["active_units"] == float(jnp.sum(activity > 1e-2)) <= 2
    assert diag["latent_dim"] == K


def test_evaluate_reports_active_units_beside_the_bound() -> None:
    rng = np.random.default_rng(0)
    arrays = {s: (rng.random((n, *SHAPE)) < 0.4).astype(np.float32)
              for s, n in (("train", 20), ("test", 12))}
    data = prepare(Dataset("tiny", arrays["train"], arrays["test"], num_levels=2))
    model = _model(eval_samples=4, eval_chunk=4)
    params = model.init(jax.random.key(0), jnp.asarray(arrays["train"]))
    report = evaluate(model, params, data, split="test")
    assert report["log_prob_kind"] == "lower-bound"
    assert set(report["diagnostics"]) == {"active_units", "latent_dim", "mean_unit_activity"}
    expected = _model().diagnostics(params, Batch(jnp.asarray(arrays["test"]), None), None)
    assert report["diagnostics"] == pytest.approx(expected)


def test_bad_kl_settings_raise_clear_errors() -> None:
    for kw, match in (
        ({"beta": -1.0}, "beta"),
        ({"free_bits": float("nan")}, "free_bits"),
        ({"kl_warmup_steps": -3}, "kl_warmup_steps"),
    ):
        with pytest.raises(ConfigError, match=match):
            _model(**kw)
    with pytest.raises(ConfigError, match="IWAE-k bound"):
        IWAE(event_shape=SHAPE, beta=2.0)
