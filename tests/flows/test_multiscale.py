"""The multi-scale (factor-out) bijector: layout, change of variables, densities, errors."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.actnorm import ActNorm, actnorm_identity
from genjax_models.flows.linear import Conv1x1, lu_linear_init
from genjax_models.flows.multiscale import MultiScale, multiscale_level_shapes
from genjax_models.flows.permutation import Permute, reverse_permutation
from genjax_models.flows.squeeze import squeeze, unsqueeze
from tests.flows.checks import check_bijector
from tests.x64 import float64


def _level_params(key, shape):
    c = shape[-1]
    k1, k2, k3, k4 = jax.random.split(key, 4)
    lu = lu_linear_init(k1, c, jnp.float64)
    lu = dict(lu, lower=lu["lower"] + 0.3 * jax.random.normal(k4, (c, c), jnp.float64))
    return {
        "actnorm": {
            "shift": jax.random.normal(k2, (c,), jnp.float64),
            "log_scale": 0.3 * jax.random.normal(k3, (c,), jnp.float64),
        },
        "conv": lu,
    }


def _level_flow(params, shape):
    """A small Glow step: ActNorm -> 1x1 conv -> channel reversal (applied right to left)."""
    return distrax.Chain(
        [
            ActNorm.from_params(params["actnorm"], event_ndims=3),
            Conv1x1(params["conv"]),
            Permute(reverse_permutation(shape[-1]), event_ndims=3),
        ]
    )


def _build(key, event_shape, num_levels):
    shapes = multiscale_level_shapes(event_shape, num_levels)
    keys = jax.random.split(key, num_levels)
    params = [_level_params(k, s) for k, s in zip(keys, shapes, strict=True)]
    return MultiScale.from_builder(
        event_shape, num_levels, lambda level, shape: _level_flow(params[level], shape)
    )


def test_level_shapes():
    assert multiscale_level_shapes((8, 8, 1), 2) == [(4, 4, 4), (2, 2, 8)]
    assert multiscale_level_shapes((4, 4, 3), 2) == [(2, 2, 12), (1, 1, 24)]
    assert multiscale_level_shapes((8, 8, 3), 3) == [(4, 4, 12), (2, 2, 24), (1, 1, 48)]
    with pytest.raises(ShapeError, match="divisible by factor\\*\\*num_levels = 8"):
        multiscale_level_shapes((4, 8, 1), 3)
    with pytest.raises(ShapeError, match="split"):
        multiscale_level_shapes((9, 9, 1), 2, factor=3)


def test_identity_levels_give_identity():
    event_shape = (4, 4, 2)
    shapes = multiscale_level_shapes(event_shape, 2)
    bij = MultiScale([ActNorm.from_params(actnorm_identity(s[-1]), 3) for s in shapes])
    x = jax.random.normal(jax.random.key(0), (2, *event_shape))
    y, ldj = bij.forward_and_log_det(x)
    np.testing.assert_allclose(y, x)
    np.testing.assert_allclose(ldj, 0.0)
    np.testing.assert_allclose(bij.inverse(x), x)


def test_documented_latent_layout():
    """z = unsqueeze(concat(f_1, unsqueeze(f_2))), f_l the level outputs of the inverse pass."""
    with float64():
        event_shape = (4, 4, 2)
        bij = _build(jax.random.key(1), event_shape, 2)
        flow1, flow2 = bij.flows
        x = jax.random.normal(jax.random.key(2), (3, *event_shape), jnp.float64)
        t1, ldj1 = flow1.inverse_and_log_det(squeeze(x))
        f1, h1 = t1[..., :4], t1[..., 4:]
        f2, ldj2 = flow2.inverse_and_log_det(squeeze(h1))
        expected = unsqueeze(jnp.concatenate([f1, unsqueeze(f2)], axis=-1))
        z, ldj = bij.inverse_and_log_det(x)
        np.testing.assert_allclose(z, expected, atol=1e-12)
        np.testing.assert_allclose(ldj, ldj1 + ldj2, atol=1e-12)
        # Level 1's factored-out half does not depend on level 2's flow.
        other = MultiScale([flow1, ActNorm.from_params(actnorm_identity(16, jnp.float64), 3)])
        z_other = other.inverse(x)
        np.testing.assert_allclose(squeeze(z_other)[..., :4], squeeze(z)[..., :4], atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("seed,event_shape", [(0, (4, 4, 2)), (1, (8, 8, 1))])
def test_multiscale_property(seed, event_shape):
    with float64():
        k1, k2 = jax.random.split(jax.random.key(seed))
        bij = _build(k1, event_shape, 2)
        x = jax.random.normal(k2, (2, *event_shape), jnp.float64)
        check_bijector(bij, x, atol=1e-9, rtol=1e-9)
        # Per-example calls (no batch axis) under vmap agree with the batched call.
        np.testing.assert_allclose(jax.vmap(bij.inverse)(x), bij.inverse(x), atol=1e-12)


def test_multiscale_density_and_grad():
    with float64():
        event_shape = (4, 4, 1)
        shapes = multiscale_level_shapes(event_shape, 2)
        keys = jax.random.split(jax.random.key(3), 2)
        params = [_level_params(k, s) for k, s in zip(keys, shapes, strict=True)]
        base = distrax.Independent(distrax.Normal(jnp.zeros(event_shape), 1.0), 3)
        x = jax.random.normal(jax.random.key(4), (3, *event_shape), jnp.float64)

        def log_prob(p):
            bij = MultiScale([_level_flow(pl, s) for pl, s in zip(p, shapes, strict=True)])
            return distrax.Transformed(base, bij).log_prob(x)

        bij = MultiScale([_level_flow(pl, s) for pl, s in zip(params, shapes, strict=True)])
        z, ildj = bij.inverse_and_log_det(x)
        np.testing.assert_allclose(log_prob(params), base.log_prob(z) + ildj, atol=1e-10)
        # Gradient w.r.t. one level-2 parameter against central finite differences.
        grads = jax.jit(jax.grad(lambda p: jnp.sum(log_prob(p))))(params)
        h = 1e-6
        for idx in [0, 5]:

            def at(delta, i=idx):
                p2 = jax.tree_util.tree_map(lambda a: a, params)
                p2[1]["actnorm"]["log_scale"] = p2[1]["actnorm"]["log_scale"].at[i].add(delta)
                return jnp.sum(log_prob(p2))

            fd = (at(h) - at(-h)) / (2 * h)
            np.testing.assert_allclose(grads[1]["actnorm"]["log_scale"][idx], fd, rtol=1e-6)


def test_multiscale_bad_input():
    shapes = multiscale_level_shapes((4, 4, 1), 2)
    bij = MultiScale([ActNorm.from_params(actnorm_identity(s[-1]), 3) for s in shapes])
    with pytest.raises(ShapeError, match="divisible"):
        bij.forward(jnp.zeros((2, 6, 6, 1)))
    with pytest.raises(ShapeError, match="images"):
        bij.inverse(jnp.zeros((2, 16)))
    with pytest.raises(ShapeError, match="last axis of size 4"):
        bij.inverse(jnp.zeros((2, 4, 4, 2)))  # level 1 flow expects 4 channels
    with pytest.raises(ConfigError, match="event_ndims 3"):
        MultiScale([ActNorm.from_params(actnorm_identity(4), 1)])
    with pytest.raises(ConfigError, match="from_builder"):
        MultiScale([lambda x: x])
    with pytest.raises(ConfigError, match="at least one"):
        MultiScale([])
