"""Planar and radial flows: closed-form log-dets, numerically exact inverses, their gradients."""

from __future__ import annotations

import distrax
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.planar import Planar, Radial, planar_init, radial_init
from tests.flows.checks import check_bijector
from tests.x64 import float64


def _random_planar(key, d, scale=1.0):
    k1, k2 = jax.random.split(key)
    params = planar_init(k1, d, scale=scale, dtype=jnp.float64)
    return dict(params, b=jax.random.normal(k2, (), jnp.float64))


def _random_radial(key, d):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "z0": jax.random.normal(k1, (d,), jnp.float64),
        "alpha_raw": jax.random.normal(k2, (), jnp.float64),
        "beta_raw": 2.0 * jax.random.normal(k3, (), jnp.float64),
    }


def _log_prob(bijector_fn, params, y):
    d = y.shape[-1]
    base = distrax.MultivariateNormalDiag(jnp.zeros(d), jnp.ones(d))
    return distrax.Transformed(base, bijector_fn(params)).log_prob(y)


def _check_grad_fd(bijector_fn, params, y, h=1e-6, rtol=1e-6, atol=1e-8):
    """Compare jax.grad of sum log_prob (through the inverse) with central differences."""
    grads = jax.grad(lambda p, v: jnp.sum(_log_prob(bijector_fn, p, v)), argnums=(0, 1))(params, y)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    g_flat, _ = jax.flatten_util.ravel_pytree(grads[0])
    f = jax.jit(lambda v: jnp.sum(_log_prob(bijector_fn, unravel(v), y)))
    fd = jnp.stack(
        [(f(flat.at[i].add(h)) - f(flat.at[i].add(-h))) / (2 * h) for i in range(flat.size)]
    )
    np.testing.assert_allclose(g_flat, fd, rtol=rtol, atol=atol)
    fy = jax.jit(lambda v: jnp.sum(_log_prob(bijector_fn, params, v)))
    e = jnp.zeros_like(y).at[0, 0].set(h)
    np.testing.assert_allclose(
        grads[1][0, 0], (fy(y + e) - fy(y - e)) / (2 * h), rtol=rtol, atol=atol
    )


# ----------------------------------------------------------------------- planar
@pytest.mark.parametrize("seed,d", [(0, 1), (1, 2), (2, 5)])
def test_planar_property(seed, d):
    with float64():
        k1, k2 = jax.random.split(jax.random.key(seed))
        bij = Planar.from_params(_random_planar(k1, d))
        x = 2.0 * jax.random.normal(k2, (4, d), jnp.float64)
        check_bijector(bij, x, atol=1e-10, rtol=1e-10)


def test_planar_constraint_and_closed_form():
    with float64():
        w = jnp.array([0.5, -1.0, 2.0])
        for u in [-10.0 * w, 3.0 * w, jnp.array([1.0, 2.0, 0.5])]:
            bij = Planar(w, u, jnp.array(0.3))
            u_hat = bij.u_hat()
            k = float(jnp.dot(w, u_hat))
            np.testing.assert_allclose(k, -1.0 + jax.nn.softplus(jnp.dot(w, u)), rtol=1e-12)
            assert k > -1.0
            x = jnp.array([[0.2, -0.4, 1.0]])
            a = x @ w + 0.3
            y, ldj = bij.forward_and_log_det(x)
            np.testing.assert_allclose(y, x + jnp.tanh(a)[:, None] * u_hat, rtol=1e-12)
            np.testing.assert_allclose(
                ldj, jnp.log(jnp.abs(1 + (1 - jnp.tanh(a) ** 2) * k)), rtol=1e-12
            )


@pytest.mark.parametrize(
    "u_scale,b,x_scale,well_posed",
    [
        (-7.0, 0.0, 0.05, True),
        (-20.0, 0.0, 0.05, False),
        (-20.0, 0.0, 30.0, True),
        (40.0, 1.0, 5.0, True),
        (1.0, 30.0, 1.0, True),
    ],
)
def test_planar_inverse_hard_cases(u_scale, b, x_scale, well_posed):
    """k near -1 (nearly singular at a = 0), large k, large |w^T z + b|.

    The residual |f(f^{-1}(y)) - y| is at rounding level in every case; the pre-image itself
    is recovered to 1e-10 unless the map is ill-conditioned (k = -1 + 2e-9: f' ~ 2e-9 at
    a = 0, so rounding in y alone moves the exact pre-image by ~1e-7).
    """
    with float64():
        w = jnp.array([1.5, -0.5])
        bij = Planar(w, u_scale * w / jnp.dot(w, w), jnp.array(b))
        x = x_scale * jax.random.normal(jax.random.key(0), (64, 2), jnp.float64)
        y = bij.forward(x)
        x_back = jax.jit(bij.inverse)(y)
        if well_posed:
            np.testing.assert_allclose(x_back, x, atol=1e-10 * max(1.0, x_scale), rtol=0)
        np.testing.assert_allclose(bij.forward(x_back), y, atol=1e-13 * max(1.0, x_scale), rtol=0)


def test_planar_log_prob_gradients_through_inverse():
    with float64():
        params = _random_planar(jax.random.key(3), 2)
        y = jax.random.normal(jax.random.key(4), (5, 2), jnp.float64)
        _check_grad_fd(Planar.from_params, params, y)


def test_planar_stack_vmap_and_scan_match_chain():
    """Stacked params: a lax.scan over planar layers equals the distrax.Chain of them."""
    with float64():
        num, d = 4, 2
        stacked = jax.vmap(lambda k: _random_planar(k, d))(jax.random.split(jax.random.key(5), num))
        y = jax.random.normal(jax.random.key(6), (6, d), jnp.float64)
        layers = [
            Planar.from_params(jax.tree_util.tree_map(lambda a, i=i: a[i], stacked))
            for i in range(num)
        ]
        z_chain, ldj_chain = distrax.Chain(layers).inverse_and_log_det(y)

        def body(carry, p):  # Chain([f_0, .., f_3]).inverse applies f_0^{-1} first.
            z, ldj = carry
            z, step_ldj = Planar.from_params(p).inverse_and_log_det(z)
            return (z, ldj + step_ldj), None

        (z_scan, ldj_scan), _ = jax.jit(lambda p: jax.lax.scan(body, (y, jnp.zeros(6)), p))(stacked)
        np.testing.assert_allclose(z_scan, z_chain, atol=1e-12)
        np.testing.assert_allclose(ldj_scan, ldj_chain, atol=1e-12)


# ----------------------------------------------------------------------- radial
@pytest.mark.parametrize("seed,d", [(0, 1), (1, 3)])
def test_radial_property(seed, d):
    with float64():
        k1, k2 = jax.random.split(jax.random.key(seed))
        params = _random_radial(k1, d)
        bij = Radial.from_params(params)
        x = params["z0"] + 1.5 * jax.random.normal(k2, (4, d), jnp.float64)
        check_bijector(bij, x, atol=1e-10, rtol=1e-10)


def test_radial_constraint_closed_form_and_centre():
    with float64():
        z0 = jnp.array([0.5, -1.0])
        for beta_raw in [-8.0, 0.0, 3.0]:
            bij = Radial(z0, jnp.array(0.2), jnp.array(beta_raw))
            alpha, beta = bij.alpha_beta()
            assert beta > -alpha
            x = jnp.array([[1.0, 2.0], [0.5, -1.0], [0.5 + 1e-9, -1.0]])
            y, ldj = bij.forward_and_log_det(x)
            r = jnp.linalg.norm(x - z0, axis=-1)
            h = 1 / (alpha + r)
            np.testing.assert_allclose(y, x + (beta * h)[:, None] * (x - z0), rtol=1e-12)
            expected = jnp.log1p(beta * h) + jnp.log1p(beta * h - beta * r * h**2)
            np.testing.assert_allclose(ldj, expected, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(bij.inverse(y), x, atol=1e-12)
        grads = jax.grad(lambda v: jnp.sum(bij.inverse_and_log_det(v)[1]))(jnp.array([[0.5, -1.0]]))
        assert np.all(np.isfinite(grads))  # at the centre itself
        # beta = -alpha + 1e-13: the contraction towards z0 is extreme, yet log-dets stay exact.
        bij = Radial(z0, jnp.array(0.2), jnp.array(-30.0))
        x = z0 + jnp.array([[1e-3, 2e-3], [0.3, -0.1]])
        check_bijector(bij, x, atol=1e-9, rtol=1e-9)


def test_radial_log_prob_gradients():
    with float64():
        params = _random_radial(jax.random.key(7), 2)
        y = params["z0"] + jax.random.normal(jax.random.key(8), (5, 2), jnp.float64)
        _check_grad_fd(Radial.from_params, params, y)


def test_planar_radial_density_integrates_to_one():
    with float64():
        keys = jax.random.split(jax.random.key(9), 3)
        p1, p2 = (_random_planar(k, 2) for k in keys[:2])
        rp = dict(_random_radial(keys[2], 2), beta_raw=jnp.array(0.5))
        chain = distrax.Chain(
            [Planar.from_params(p1), Radial.from_params(rp), Planar.from_params(p2)]
        )
        base = distrax.MultivariateNormalDiag(jnp.zeros(2), jnp.ones(2))
        flow = distrax.Transformed(base, chain)
        n, lim = 500, 12.0
        g = jnp.linspace(-lim, lim, n)
        grid = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
        dens = jnp.exp(jax.jit(flow.log_prob)(grid))
        mass = float(jnp.sum(dens) * (g[1] - g[0]) ** 2)
        assert abs(mass - 1.0) < 1e-3, mass


def test_bad_input():
    params = planar_init(jax.random.key(0), 3)
    with pytest.raises(ShapeError, match=r"\[\*batch, 3\]"):
        Planar.from_params(params).inverse(jnp.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"\[\*batch, 3\]"):
        Radial.from_params(radial_init(jax.random.key(0), 3)).forward(jnp.zeros((2, 2)))
    with pytest.raises(ShapeError, match="like w"):
        Planar(params["w"], jnp.zeros(2), params["b"])
    with pytest.raises(ShapeError, match="scalar"):
        Planar(params["w"], params["u"], jnp.zeros(3))
    with pytest.raises(ConfigError):
        Planar.from_params(params, num_iterations=0)
