"""ActNorm (with its data-dependent initialisation) and the squeeze bijector."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.actnorm import ActNorm, actnorm_identity, actnorm_init
from genjax_models.flows.linear import Conv1x1, lu_linear_init
from genjax_models.flows.squeeze import Squeeze, squeeze, unsqueeze
from tests.flows.checks import check_bijector
from tests.x64 import float64


def _random_actnorm(key, c, event_ndims):
    k1, k2 = jax.random.split(key)
    shift = jax.random.normal(k1, (c,), jnp.float64)
    log_scale = 0.5 * jax.random.normal(k2, (c,), jnp.float64)
    return ActNorm(shift, log_scale, event_ndims)


# ---------------------------------------------------------------------- ActNorm
@pytest.mark.parametrize("seed,shape", [(0, (3, 4)), (1, (2, 3, 2, 3))])
def test_actnorm_property(seed, shape):
    with float64():
        k1, k2 = jax.random.split(jax.random.key(seed))
        event_ndims = len(shape) - 1
        bij = _random_actnorm(k1, shape[-1], event_ndims)
        x = jax.random.normal(k2, shape, jnp.float64)
        check_bijector(bij, x, atol=1e-12, rtol=1e-12)
        _, ldj = bij.forward_and_log_det(x)
        positions = int(np.prod(shape[1:-1]))
        np.testing.assert_allclose(ldj, positions * jnp.sum(bij._log_scale), atol=1e-12)


@pytest.mark.parametrize("shape", [(64, 3), (16, 4, 4, 2)])
def test_actnorm_init_whitens_in_the_inverse_direction(shape):
    with float64():
        k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
        c = shape[-1]
        loc = 5.0 * jax.random.normal(k1, (c,), jnp.float64)
        scale = jnp.exp(jax.random.normal(k2, (c,), jnp.float64))
        x = loc + scale * jax.random.normal(k3, shape, jnp.float64)
        event_ndims = len(shape) - 1
        params = jax.jit(actnorm_init, static_argnums=1)(x, event_ndims)
        bij = ActNorm.from_params(params, event_ndims)
        z = bij.inverse(x)  # data -> latent
        axes = tuple(range(len(shape) - 1))
        np.testing.assert_allclose(jnp.mean(z, axis=axes), 0.0, atol=1e-12)
        np.testing.assert_allclose(jnp.var(z, axis=axes), 1.0, atol=1e-5)
        # The forward map sends a standard-normal-like batch back onto x's statistics.
        np.testing.assert_allclose(bij.forward(z), x, atol=1e-10)


def test_actnorm_identity_and_bad_input():
    bij = ActNorm.from_params(actnorm_identity(3), event_ndims=1)
    x = jnp.ones((2, 3))
    y, ldj = bij.forward_and_log_det(x)
    np.testing.assert_allclose(y, x)
    np.testing.assert_allclose(ldj, 0.0)
    with pytest.raises(ShapeError, match="last axis of size 3"):
        bij.forward(jnp.ones((2, 4)))
    with pytest.raises(ShapeError, match="shape"):
        ActNorm(jnp.zeros(3), jnp.zeros(2))
    with pytest.raises(ShapeError, match="event axes"):
        actnorm_init(jnp.ones((4, 4, 3)), event_ndims=3)


# ---------------------------------------------------------------------- squeeze
def test_squeeze_layout():
    x = jnp.arange(2 * 4 * 6 * 3).reshape(2, 4, 6, 3)
    y = squeeze(x, 2)
    assert y.shape == (2, 2, 3, 12)
    f, c = 2, 3
    for i, j, a, b, ch in [(0, 0, 0, 0, 0), (1, 2, 1, 0, 2), (0, 1, 1, 1, 1), (1, 0, 0, 1, 0)]:
        np.testing.assert_array_equal(
            y[:, i, j, (a * f + b) * c + ch], x[:, i * f + a, j * f + b, ch]
        )
    np.testing.assert_array_equal(unsqueeze(y, 2), x)
    y3 = squeeze(jnp.arange(36).reshape(1, 6, 6, 1), 3)
    np.testing.assert_array_equal(y3[0, 0, 0], [0, 1, 2, 6, 7, 8, 12, 13, 14])


@pytest.mark.parametrize("factor,shape", [(2, (2, 4, 4, 2)), (3, (1, 3, 6, 1))])
def test_squeeze_property(factor, shape):
    with float64():
        x = jax.random.normal(jax.random.key(factor), shape, jnp.float64)
        bij = Squeeze(factor)
        check_bijector(bij, x, atol=1e-12, rtol=1e-12)
        y = bij.forward(x)
        assert y.shape == (shape[0], shape[1] // factor, shape[2] // factor, factor**2 * shape[3])


def test_squeeze_bad_input():
    with pytest.raises(ShapeError, match="divisible by the squeeze factor 2"):
        Squeeze(2).forward(jnp.zeros((1, 3, 4, 1)))
    with pytest.raises(ShapeError, match="divisible"):
        Squeeze(2).forward(jnp.zeros((1, 4, 5, 1)))
    with pytest.raises(ShapeError, match="channels last"):
        Squeeze(2).forward(jnp.zeros((4, 4)))
    with pytest.raises(ShapeError, match="factor\\*\\*2 = 4"):
        Squeeze(2).inverse(jnp.zeros((1, 2, 2, 3)))
    with pytest.raises(ConfigError):
        Squeeze(0)


# ----------------------------------------------------------------------- chains
def test_glow_step_chain():
    """Chain([ActNorm, Conv1x1, Squeeze]): squeeze first, then the 1x1 conv and ActNorm."""
    with float64():
        k1, k2, k3 = jax.random.split(jax.random.key(11), 3)
        c = 8  # 2 channels squeezed by 2
        conv = Conv1x1(lu_linear_init(k1, c, jnp.float64))
        chain = distrax.Chain([_random_actnorm(k2, c, 3), conv, Squeeze(2)])
        x = jax.random.normal(k3, (2, 4, 4, 2), jnp.float64)
        check_bijector(chain, x, atol=1e-10, rtol=1e-10)
        # Density through the chain: base N(0, I) on [4, 4, 2] events, data on [2, 2, 8].
        base = distrax.Independent(distrax.Normal(jnp.zeros((4, 4, 2)), 1.0), 3)
        flow = distrax.Transformed(base, chain)
        y = chain.forward(x)
        z, ildj = chain.inverse_and_log_det(y)
        np.testing.assert_allclose(flow.log_prob(y), base.log_prob(z) + ildj, atol=1e-10)
