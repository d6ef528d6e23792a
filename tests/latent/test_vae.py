"""VAE / IWAE: protocol behaviour, shapes, metrics, errors, registry and a short training run."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from genjax_models.latent import IWAE, VAE
from genjax_models.model import GenerativeModel, LogProbInfo, get_model

SHAPE = (4, 4, 1)
D = 16


def _batch(likelihood: str, n: int = 6, seed: int = 0) -> jax.Array:
    key = jax.random.key(seed)
    if likelihood == "bernoulli":
        return jax.random.bernoulli(key, 0.3, (n, *SHAPE)).astype(jnp.float32)
    if likelihood == "discretized-logistic":
        return jax.random.randint(key, (n, *SHAPE), 0, 17).astype(jnp.float32) / 16
    return jax.random.normal(key, (n, *SHAPE))


def _model(cls: type = VAE, likelihood: str = "bernoulli", **kw) -> VAE:
    levels = 17 if likelihood == "discretized-logistic" else None
    return cls(
        event_shape=SHAPE,
        likelihood=likelihood,
        num_levels=levels,
        hidden=(32, 16),
        latent_dim=3,
        **kw,
    )


@pytest.mark.parametrize(
    ("cls", "likelihood"),
    [
        (VAE, "bernoulli"),
        (VAE, "gaussian"),
        (VAE, "discretized-logistic"),
        (IWAE, "discretized-logistic"),
    ],
)
def test_loss_metrics_gradients_and_jit(cls: type, likelihood: str) -> None:
    model = _model(cls, likelihood)
    assert isinstance(model, GenerativeModel)
    x = _batch(likelihood)
    params = jax.jit(model.init)(jax.random.key(1), x)
    assert set(params) == {"encoder", "decoder"}
    value_and_grad = jax.jit(jax.value_and_grad(model.loss, has_aux=True))
    (loss, metrics), grads = value_and_grad(params, x, jax.random.key(2))
    assert loss.shape == () and np.isfinite(loss)
    expected = (
        {"loss", "elbo", "recon", "kl", "kl_weight", "nll"}
        if cls is VAE
        else {"loss", "iwae_bound", "elbo", "nll"}
    )
    assert set(metrics) == expected
    assert all(m.shape == () and np.isfinite(m) for m in metrics.values())
    np.testing.assert_allclose(metrics["loss"], loss)
    np.testing.assert_allclose(metrics["nll"], loss)  # binary data: no Jacobian to add
    if cls is VAE:
        np.testing.assert_allclose(metrics["elbo"], -(metrics["recon"] + metrics["kl"]), rtol=1e-5)
        assert metrics["kl"] >= 0
    else:
        assert metrics["iwae_bound"] >= metrics["elbo"] - 1e-5  # Jensen, same samples
    # gradients are finite and not all zero
    leaves = jax.tree.leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.any(g != 0) for g in leaves)


def test_model_is_hashable_and_works_as_a_static_argument() -> None:
    model = _model()
    same = VAE(event_shape=[4, 4, 1], hidden=[32, 16], latent_dim=3)  # lists normalised
    assert hash(model) == hash(same) and model == same
    x = _batch("bernoulli")
    params = jax.jit(model.init)(jax.random.key(0), x)
    loss_bound, _ = jax.jit(model.loss)(params, x, jax.random.key(1))  # bound method
    loss_fn = jax.jit(VAE.loss, static_argnums=0)
    loss, _ = loss_fn(model, params, x, jax.random.key(1))
    np.testing.assert_allclose(loss, loss_bound, rtol=1e-6)
    lp = jax.jit(model.log_prob, static_argnames=("num_samples", "chunk_size"))(
        params, x, jax.random.key(2), num_samples=20, chunk_size=5
    )
    assert lp.shape == (6,) and np.all(np.isfinite(lp))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "discretized-logistic"])
def test_sample_shapes_and_ranges(likelihood: str) -> None:
    model = _model(likelihood=likelihood, clip_range=(0.0, 1.0))
    params = jax.jit(model.init)(jax.random.key(0), _batch(likelihood))
    draws = jax.jit(model.sample, static_argnums=2)(params, jax.random.key(1), 5)
    means = jax.jit(lambda p, k: model.sample(p, k, 5, mean=True))(
        params, jax.random.key(1)
    )
    assert draws.shape == (5, *SHAPE) and means.shape == (5, *SHAPE)
    assert np.all((means >= 0) & (means <= 1))
    if likelihood == "bernoulli":
        assert set(np.unique(draws)) <= {0.0, 1.0}
    elif likelihood == "discretized-logistic":
        levels = np.asarray(draws) * 16
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
        assert np.all((draws >= 0) & (draws <= 1))
    else:
        assert np.all(np.isfinite(draws))


def test_log_prob_and_estimator() -> None:
    model = _model(eval_samples=40, eval_chunk=8)
    x = _batch("bernoulli")
    params = jax.jit(model.init)(jax.random.key(0), x)
    assert model.describe_log_prob() == LogProbInfo("lower-bound", "iwae-40", {"num_samples": 40})
    assert model.describe_log_prob(num_samples=1).estimator == "elbo"
    keys = jax.random.split(jax.random.key(2), 64)

    @jax.jit
    def estimates(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
        lp = model.log_prob(params, x, keys[0])
        elbo = jax.vmap(lambda k: model.log_prob(params, x, k, num_samples=1))(keys)
        return lp, elbo.mean()

    lp, elbo = estimates(keys)
    assert lp.shape == (6,) and np.all(np.isfinite(lp)) and np.all(lp <= 0)
    # the IWAE-40 estimate is above the ELBO on average
    assert float(lp.mean()) > float(elbo)


def test_iwae_bound_exceeds_elbo_on_average_for_a_fixed_model() -> None:
    vae = _model()
    x = _batch("bernoulli", n=16)
    params = jax.jit(vae.init)(jax.random.key(0), x)
    iwae = IWAE(**{**vae.__dict__, "num_importance": 10})
    keys = jax.random.split(jax.random.key(1), 64)

    @jax.jit
    def estimates(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
        elbo = jax.vmap(lambda k: vae.loss(params, x, k)[1]["elbo"])(keys)
        bound = jax.vmap(lambda k: iwae.loss(params, x, k)[1]["iwae_bound"])(keys)
        return elbo, bound

    elbo, bound = estimates(keys)
    se = math.sqrt(float(elbo.var() + bound.var()) / len(keys))
    assert float(bound.mean() - elbo.mean()) > 2 * se


def test_wrong_event_shape_raises_shape_error() -> None:
    model = _model()
    params = jax.jit(model.init)(jax.random.key(0), _batch("bernoulli"))
    with pytest.raises(ShapeError, match=r"expected a batch of shape \[B, 4, 4, 1\]"):
        model.loss(params, jnp.zeros((6, 4, 4)), jax.random.key(0))
    with pytest.raises(ShapeError, match="got \\(4, 4, 1\\)"):
        model.log_prob(params, jnp.zeros(SHAPE), jax.random.key(0))
    with pytest.raises(ShapeError):
        model.init(jax.random.key(0), jnp.zeros((2, 16)))


def test_config_errors() -> None:
    with pytest.raises(UnknownNameError, match="bernoulli, discretized-logistic, gaussian"):
        VAE(event_shape=SHAPE, likelihood="poisson")
    with pytest.raises(UnknownNameError, match="choose one of"):
        VAE(event_shape=SHAPE, activation="sigmoidish")
    with pytest.raises(ConfigError, match="num_levels"):
        VAE(event_shape=SHAPE, likelihood="discretized-logistic")
    with pytest.raises(ConfigError, match="latent_dim"):
        VAE(event_shape=SHAPE, latent_dim=0)


def test_registry_and_from_spec_defaults() -> None:
    model = get_model("vae", data_spec=DataSpec((8, 8, 1), "binary"))
    assert isinstance(model, VAE) and model.likelihood == "bernoulli"
    assert model.event_shape == (8, 8, 1) and model.clip_range == (0.0, 1.0)
    with pytest.raises(ConfigError, match="bogus"):
        get_model("vae", data_spec=DataSpec((8, 8, 1), "binary"), bogus=1)
    with pytest.raises(ConfigError, match="bogus"):
        VAE.from_spec(DataSpec((8, 8, 1), "binary"), bogus=1)
    grey = get_model("iwae", data_spec=DataSpec((8, 8, 1), "grey", num_levels=17), latent_dim=4)
    assert isinstance(grey, IWAE) and grey.num_importance == 10
    assert (grey.likelihood, grey.num_levels, grey.latent_dim) == ("discretized-logistic", 17, 4)
    toy = get_model("vae", data_spec=DataSpec((2,), "continuous"))
    assert toy.likelihood == "gaussian" and toy.clip_range is None
    over = get_model("vae", data_spec=DataSpec((2,), "continuous"), likelihood="bernoulli")
    assert over.likelihood == "bernoulli"
    with pytest.raises(ConfigError, match="num_levels"):
        get_model("vae", data_spec=DataSpec((8, 8, 1), "grey"))


def test_tiny_vae_training_improves_elbo() -> None:
    rng = np.random.default_rng(0)
    prototypes = rng.uniform(size=(4, D)) < 0.5
    labels = rng.integers(0, 4, size=256)
    flips = rng.uniform(size=(256, D)) < 0.05
    data = jnp.asarray((prototypes[labels] ^ flips).astype(np.float32).reshape(256, *SHAPE))

    model = VAE(event_shape=SHAPE, hidden=(64,), latent_dim=4)
    params = jax.jit(model.init)(jax.random.key(0), data)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def eval_elbo(p: dict) -> jax.Array:
        return model.log_prob(p, data, jax.random.key(123), num_samples=1).mean()

    @jax.jit
    def steps(params, state, key):
        def body(carry, k):
            p, s = carry
            (_, m), g = jax.value_and_grad(model.loss, has_aux=True)(p, data, k)
            updates, s = opt.update(g, s, p)
            return (optax.apply_updates(p, updates), s), m["elbo"]

        (params, state), elbos = jax.lax.scan(body, (params, state), jax.random.split(key, 200))
        return params, state, elbos

    before = float(eval_elbo(params))
    params, state, elbos = steps(params, state, jax.random.key(1))
    after = float(eval_elbo(params))
    assert np.all(np.isfinite(elbos))
    # From ~D ln 2 = 11.1 nats towards the data entropy (~4.6 nats): a large improvement.
    assert after > before + 4.0, (before, after)
    assert after > -7.5, after
