"""The convolutional VAE option (``architecture="conv"``) against a one-dimensional-latent oracle.

With a single latent dimension, log p(x) = log int N(z; 0, 1) p(x | z) dz is a 1-D integral:
quadrature on a fine grid (float64) gives it to ~1e-9 for any decoder, the conv decoder
included. The IWAE-k estimate through the conv encoder must reach it as k grows and the ELBO
must sit below it; conditioning vectors must reach both conv networks; bad shapes are clear
errors. (The CLI reaches it by ``--set model.architecture=conv``, the generic field path.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import Batch, DataSpec
from genjax_models.errors import ConfigError, UnknownNameError
from genjax_models.latent import CVAE, VAE
from tests.x64 import float64

SHAPE = (4, 4, 1)


def _conv(cls: type = VAE, **kw) -> VAE:
    return cls(**{"event_shape": SHAPE, "likelihood": "bernoulli", "latent_dim": 1,
                  "architecture": "conv", "conv_channels": 4, "conv_downsample": 1, **kw})


def test_conv_iwae_reaches_the_quadrature_marginal_and_the_elbo_stays_below() -> None:
    with float64():
        model = _conv()
        x = jax.random.bernoulli(jax.random.key(0), 0.4, (4, *SHAPE)).astype(jnp.float64)
        params = model.init(jax.random.key(1), x)
        # a sharper decoder than at init, so that p(x | z) varies with z; a broad q(z | x)
        # that still depends on x through the conv encoder (small head weights)
        params["decoder"] = jax.tree.map(lambda a: 1.5 * a, params["decoder"])
        head = params["encoder"]["head"]
        head["kernel"] = 0.1 * head["kernel"]
        head["bias"] = jnp.array([0.0, math.log(1.5)])
        z = jnp.linspace(-10.0, 10.0, 20001)
        dz = float(z[1] - z[0])
        log_lik = jax.vmap(lambda zi: model.log_likelihood(
            params, model.flatten(x), jnp.full((x.shape[0], 1), zi)))(z)  # [G, B]
        log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
        exact = jax.nn.logsumexp(log_lik + log_prior[:, None], axis=0) + math.log(dz)
        assert float(jnp.max(jnp.abs(log_lik[0] - log_lik[-1]))) > 1.0  # z matters
        big = model.log_prob(params, x, jax.random.key(2), num_samples=200000, chunk_size=20000)
        np.testing.assert_allclose(big, exact, rtol=0, atol=0.01)
        elbo = jax.vmap(lambda k: model.log_prob(params, x, k, num_samples=1))(
            jax.random.split(jax.random.key(3), 2000)).mean(0)
        assert np.all(np.asarray(elbo) < np.asarray(exact) + 1e-3)


def test_conv_networks_see_the_label_and_keep_their_shapes() -> None:
    model = _conv(CVAE, num_classes=3, latent_dim=2)
    x = jax.random.bernoulli(jax.random.key(0), 0.4, (3, *SHAPE)).astype(jnp.float32)
    params = model.init(jax.random.key(1), Batch(x, jnp.array([0, 1, 2])))
    flat, c0 = model.inputs(Batch(x, jnp.zeros(3, jnp.int32)))
    _, c2 = model.inputs(Batch(x, jnp.full(3, 2)))
    mean0, _ = model.encode(params, flat, c0)
    mean2, _ = model.encode(params, flat, c2)
    assert mean0.shape == (3, 2) and float(jnp.max(jnp.abs(mean0 - mean2))) > 0
    out0, _ = model.decode(params, mean0, c0)
    out2, _ = model.decode(params, mean0, c2)
    assert out0.shape == (3, 16) and float(jnp.max(jnp.abs(out0 - out2))) > 0
    grey = _conv(likelihood="discretized-logistic", num_levels=5)
    grey_params = grey.init(jax.random.key(0), x)
    assert grey_params["decoder"]["log_scale"].shape == (16,)


def test_conv_configuration_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"divisible by 2\^conv_downsample = 4"):
        _conv(conv_downsample=2, event_shape=(6, 6, 1))
    with pytest.raises(ConfigError, match=r"images \[H, W, C\]"):
        _conv(event_shape=(16,))
    with pytest.raises(UnknownNameError, match="conv, mlp"):
        _conv(architecture="cnn")
    with pytest.raises(ConfigError, match="conv_residual"):
        _conv(conv_residual=-1)
    assert VAE(event_shape=(6,), architecture="mlp").architecture == "mlp"  # shapes unchecked
    assert DataSpec(SHAPE, "binary", 2).event_shape == SHAPE

