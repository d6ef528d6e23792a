"""The logit pre-processing bijector and uniform / variational dequantisation."""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.dequantization import VariationalDequantizer, uniform_dequantize
from genjax_models.flows.logit import Logit
from tests.flows.checks import check_bijector
from tests.x64 import float64

# ------------------------------------------------------------------------ logit


@pytest.mark.parametrize("alpha,shape", [(0.05, (3, 4)), (1e-6, (2, 2, 2, 1)), (0.0, (3, 2))])
def test_logit_property(alpha, shape):
    with float64():
        y = 2.0 * jax.random.normal(jax.random.key(0), shape, jnp.float64)
        check_bijector(Logit(alpha, event_ndims=len(shape) - 1), y, atol=1e-10, rtol=1e-10)


def test_logit_closed_form():
    with float64():
        alpha = 0.05
        bij = Logit(alpha)
        x = jnp.array([[0.0, 0.25, 0.5, 1.0]])
        y, ildj = bij.inverse_and_log_det(x)
        p = alpha + (1 - 2 * alpha) * x
        np.testing.assert_allclose(y, np.log(p / (1 - p)), atol=1e-14)
        np.testing.assert_allclose(y[0, 2], 0.0, atol=1e-15)
        np.testing.assert_allclose(
            ildj, jnp.sum(np.log((1 - 2 * alpha) / (p * (1 - p)))), rtol=1e-13
        )


def test_logit_density_integrates_to_one():
    """N(0, 1) pushed through the forward map is a density on (-a/(1-2a), (1-a)/(1-2a))."""
    with float64():
        alpha = 0.1
        flow = distrax.Transformed(distrax.Normal(0.0, 1.0), Logit(alpha, event_ndims=0))
        lo, hi = -alpha / (1 - 2 * alpha), (1 - alpha) / (1 - 2 * alpha)
        n = 200_000
        x = lo + (hi - lo) * (jnp.arange(n) + 0.5) / n
        mass = float(jnp.sum(jnp.exp(flow.log_prob(x))) * (hi - lo) / n)
        np.testing.assert_allclose(mass, 1.0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_logit_outside_unit_interval_is_finite(alpha):
    bij = Logit(alpha)
    x = jnp.array([[-1.0, 2.0, 1e6, -1e6, 0.0, 1.0, -1e-3, 1.001]], jnp.float32)
    y, ildj = bij.inverse_and_log_det(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(ildj))
    assert float(jnp.max(jnp.abs(y))) < 17.0  # clamped at logit(1 - eps) in float32
    grad = jax.grad(lambda v: jnp.sum(bij.inverse_and_log_det(v)[1]))(x)
    assert np.all(np.isfinite(grad))
    y_fwd, ldj = bij.forward_and_log_det(jnp.array([[-200.0, 200.0, 0.0]]))
    assert np.all(np.isfinite(y_fwd)) and np.all(np.isfinite(ldj))


def test_logit_bad_input():
    with pytest.raises(ConfigError, match="alpha"):
        Logit(0.5)
    with pytest.raises(ConfigError, match="alpha"):
        Logit(-0.1)
    with pytest.raises(ShapeError, match="3 event axes"):
        Logit(event_ndims=3).inverse(jnp.zeros((4, 4)))


# --------------------------------------------------------- a known data density
# p(y) = 1 + 0.9 prod_i sin(2 pi y_i) on [0, 1]^D (D = 1 or 2): normalised, bin masses closed form.


def _log_p(y):
    return jnp.log1p(0.9 * jnp.prod(jnp.sin(2 * jnp.pi * y), axis=-1))


def _log_mass(x_int, levels):
    a, b = x_int / levels, (x_int + 1) / levels
    s = (jnp.cos(2 * jnp.pi * a) - jnp.cos(2 * jnp.pi * b)) / (2 * jnp.pi)
    return jnp.log(jnp.prod(b - a, axis=-1) + 0.9 * jnp.prod(s, axis=-1))


def _gauss_legendre_grid(n, d):
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes, weights = (nodes + 1) / 2, weights / 2  # on [0, 1]
    grids = np.meshgrid(*([nodes] * d), indexing="ij")
    w = np.prod(np.meshgrid(*([weights] * d), indexing="ij"), axis=0)
    return jnp.asarray(np.stack(grids, -1).reshape(-1, d)), jnp.asarray(w.reshape(-1))


def _gauss_hermite_grid(n, d):
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    weights = weights / math.sqrt(2 * math.pi)  # E over N(0, 1)
    grids = np.meshgrid(*([nodes] * d), indexing="ij")
    w = np.prod(np.meshgrid(*([weights] * d), indexing="ij"), axis=0)
    return jnp.asarray(np.stack(grids, -1).reshape(-1, d)), jnp.asarray(w.reshape(-1))


def _all_bins(levels, d):
    return jnp.asarray(
        np.stack(np.meshgrid(*([np.arange(levels)] * d), indexing="ij"), -1).reshape(-1, d)
    )


@pytest.mark.parametrize("d,levels", [(1, 3), (2, 4)])
def test_uniform_dequantization_bound(d, levels):
    with float64():
        bins = _all_bins(levels, d)
        np.testing.assert_allclose(jnp.sum(jnp.exp(_log_mass(bins, levels))), 1.0, atol=1e-12)
        u, w = _gauss_legendre_grid(48, d)
        for x in bins:
            # Exact expectation E_u[log p((x + u) / L)] - D log L by quadrature.
            bound = jnp.sum(w * _log_p((x + u) / levels)) - d * math.log(levels)
            exact = _log_mass(x, levels)
            assert bound <= exact - 1e-4, (x, bound, exact)  # strict: p varies inside the bin
        # Monte Carlo with the public function agrees with the quadrature.
        x_batch = jnp.tile(bins[-1], (20_000, 1))
        y, log_q = uniform_dequantize(jax.random.key(0), x_batch, levels)
        assert y.dtype == jnp.float64
        np.testing.assert_array_equal(jnp.floor(y * levels), x_batch)
        np.testing.assert_allclose(log_q, d * math.log(levels))
        est = _log_p(y) - log_q
        quad = jnp.sum(w * _log_p((bins[-1] + u) / levels)) - d * math.log(levels)
        assert abs(float(jnp.mean(est) - quad)) < 5 * float(jnp.std(est)) / math.sqrt(est.size)


def _dequantizer_params(deq, key, x, scale=0.3):
    params = deq.init(key, x)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    noisy = [
        p + scale * jax.random.normal(k, p.shape, p.dtype)
        for p, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, noisy)


def test_variational_log_q_is_exact_density():
    with float64():
        levels = 5
        deq = VariationalDequantizer((3,), levels, hidden=(16,), num_couplings=2)
        x = jnp.array([[0, 2, 4], [3, 1, 1]])
        params = _dequantizer_params(deq, jax.random.key(0), x)
        eps = jax.random.normal(jax.random.key(1), x.shape, jnp.float64)
        u, log_q = deq.noise_to_u(params, x, eps)
        # Change of variables: log q(u) = log N(eps) - log|det du/deps|.
        jacobian = jax.jit(
            jax.jacfwd(lambda e, xi: deq.noise_to_u(params, xi[None], e[None])[0][0])
        )
        for i in range(x.shape[0]):
            jac = jacobian(eps[i], x[i])
            _, logdet = jnp.linalg.slogdet(jac)
            log_n = jnp.sum(jax.scipy.stats.norm.logpdf(eps[i]))
            np.testing.assert_allclose(log_q[i], log_n - logdet, atol=1e-10)
        # The inverse path gives the same density at the sampled u.
        np.testing.assert_allclose(deq.log_q_u(params, x, u), log_q, atol=1e-9)
        # sample_and_log_q: y in x's bin, log q(y | x) = log q(u | x) + D log L; jittable.
        y, log_qy = jax.jit(deq.sample_and_log_q)(params, jax.random.key(2), x)
        np.testing.assert_array_equal(jnp.floor(y * levels), x)
        u_s = y * levels - x
        np.testing.assert_allclose(
            log_qy, deq.log_q_u(params, x, u_s) + 3 * math.log(levels), atol=1e-8
        )


@pytest.mark.parametrize("d,n", [(1, 20_000), (2, 400)])
def test_variational_q_integrates_to_one(d, n):
    with float64():
        deq = VariationalDequantizer((d,), 4, hidden=(16,), num_couplings=2)
        x = jnp.full((1, d), 2)
        # Mild random parameters: q keeps its mass away from the cube's faces, where a
        # uniform grid in u could not resolve it.
        params = _dequantizer_params(deq, jax.random.key(3), x, scale=0.1)
        g = (jnp.arange(n) + 0.5) / n
        u = jnp.stack(jnp.meshgrid(*([g] * d), indexing="ij"), -1).reshape(-1, d)
        log_q = jax.jit(deq.log_q_u)(params, jnp.broadcast_to(x, u.shape), u)
        mass = float(jnp.sum(jnp.exp(log_q)) / n**d)
        np.testing.assert_allclose(mass, 1.0, atol=1e-3)


@pytest.mark.parametrize("d,levels", [(1, 3), (2, 4)])
def test_variational_bound_below_exact_log_prob(d, levels):
    with float64():
        deq = VariationalDequantizer((d,), levels, hidden=(16,), num_couplings=2)
        bins = _all_bins(levels, d)
        params = _dequantizer_params(deq, jax.random.key(4), bins)
        eps, w = _gauss_hermite_grid(40 if d == 2 else 200, d)

        @jax.jit
        def bound(x):  # E_q[log p((x + u) / L) - D log L - log q(u | x)] by quadrature in eps
            xs = jnp.broadcast_to(x, eps.shape)
            u, log_q_u = deq.noise_to_u(params, xs, eps)
            return jnp.sum(w * (_log_p((xs + u) / levels) - d * math.log(levels) - log_q_u))

        for x in bins:
            assert bound(x) <= _log_mass(x, levels) + 1e-10, (x, bound(x), _log_mass(x, levels))
        # The Monte Carlo estimate from sample_and_log_q agrees with the quadrature.
        x = bins[1]
        xs = jnp.tile(x, (20_000, 1))
        y, log_q = deq.sample_and_log_q(params, jax.random.key(5), xs)
        est = _log_p(y) - log_q
        assert abs(float(jnp.mean(est) - bound(x))) < 5 * float(jnp.std(est)) / math.sqrt(est.size)
        # The bound is differentiable in the dequantiser's parameters.
        grads = jax.grad(
            lambda p: jnp.mean(_log_p(deq.sample_and_log_q(p, jax.random.key(6), xs[:64])[0]))
        )(params)
        assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_variational_initial_q_is_logit_normal_and_errors():
    with float64():
        deq = VariationalDequantizer((2, 2), 256, hidden=(8,), num_couplings=1)
        x = jnp.zeros((3, 2, 2), jnp.int32)
        params = deq.init(jax.random.key(0), x)
        u = jax.random.uniform(jax.random.key(1), (3, 2, 2), jnp.float64, 0.01, 0.99)
        v = jnp.log(u) - jnp.log1p(-u)
        expected = jnp.sum(jax.scipy.stats.norm.logpdf(v) - jnp.log(u * (1 - u)), axis=(1, 2))
        np.testing.assert_allclose(deq.log_q_u(params, x, u), expected, atol=1e-12)
    with pytest.raises(ShapeError, match=r"\[B, 2, 2\]"):
        deq.sample_and_log_q(params, jax.random.key(0), jnp.zeros((3, 4)))
    with pytest.raises(ConfigError, match="num_levels"):
        VariationalDequantizer((2,), 1)
    with pytest.raises(ConfigError, match="num_levels"):
        uniform_dequantize(jax.random.key(0), jnp.zeros((2, 2)), 1)
