"""Permutations, LU-parametrised linear maps and Glow's 1x1 convolution."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.linear import Conv1x1, LULinear, lu_linear_from_matrix, lu_linear_init
from genjax_models.flows.permutation import Permute, random_permutation, reverse_permutation
from tests.flows.checks import check_bijector
from tests.x64 import float64


def _perturb(key, params, scale=0.3):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [
        p + scale * jax.random.normal(k, p.shape, p.dtype)
        for p, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, noisy)


# ---------------------------------------------------------------- permutations
def test_permutation_helpers():
    np.testing.assert_array_equal(reverse_permutation(4), [3, 2, 1, 0])
    perm = np.asarray(random_permutation(jax.random.key(0), 9))
    np.testing.assert_array_equal(np.sort(perm), np.arange(9))
    assert perm.dtype == np.int32


@pytest.mark.parametrize("seed,d", [(0, 1), (1, 5)])
def test_permute_vectors(seed, d):
    with float64():
        k1, k2 = jax.random.split(jax.random.key(seed))
        bij = Permute(random_permutation(k1, d))
        x = jax.random.normal(k2, (3, d), jnp.float64)
        check_bijector(bij, x, atol=1e-12, rtol=1e-12)
        np.testing.assert_array_equal(bij.forward(x), x[:, np.asarray(bij.permutation)])


@pytest.mark.parametrize("axis,size", [(-1, 3), (-3, 4)])
def test_permute_image_axes(axis, size):
    with float64():
        x = jax.random.normal(jax.random.key(3), (2, 4, 2, 3), jnp.float64)
        bij = Permute(reverse_permutation(size), axis=axis, event_ndims=3)
        check_bijector(bij, x, atol=1e-12, rtol=1e-12)
        np.testing.assert_array_equal(bij.forward(x), jnp.flip(x, axis=axis))


def test_permute_bad_input():
    with pytest.raises(ConfigError, match="exactly once"):
        Permute(jnp.array([0, 0, 1]))
    with pytest.raises(ConfigError, match="axis"):
        Permute(jnp.arange(3), axis=-2, event_ndims=1)
    with pytest.raises(ShapeError, match="size 3 on axis -1"):
        Permute(jnp.arange(3)).forward(jnp.zeros((2, 4)))


# ------------------------------------------------------------------ LU linear
def test_lu_init_is_orthogonal():
    with float64():
        params = lu_linear_init(jax.random.key(0), 6, jnp.float64)
        w = LULinear(params).matrix()
        np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-12)
        np.testing.assert_allclose(jnp.sum(params["log_abs_diag"]), 0.0, atol=1e-12)
        assert np.all(np.abs(np.tril(params["lower"], -1)) <= 1 + 1e-12)  # partial pivoting


def test_lu_from_matrix_reconstructs():
    with float64():
        w = jax.random.normal(jax.random.key(1), (5, 5), jnp.float64)
        params, perm, sign = lu_linear_from_matrix(w)
        bij = LULinear(params, permutation=perm, sign=sign)
        np.testing.assert_allclose(bij.matrix(), w, atol=1e-12)
        _, logabs = jnp.linalg.slogdet(w)
        x = jax.random.normal(jax.random.key(2), (3, 5), jnp.float64)
        y, ldj = bij.forward_and_log_det(x)
        np.testing.assert_allclose(y, x @ w.T, atol=1e-12)
        np.testing.assert_allclose(ldj, logabs, atol=1e-12)


@pytest.mark.parametrize("seed,d,with_perm", [(0, 1, False), (1, 4, True)])
def test_lu_linear_property(seed, d, with_perm):
    with float64():
        k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
        params = _perturb(k2, lu_linear_init(k1, d, jnp.float64))
        perm = random_permutation(k3, d) if with_perm else None
        sign = np.where(np.arange(d) % 2, -1.0, 1.0) if with_perm else None
        bij = LULinear(params, permutation=perm, sign=sign)
        check_bijector(bij, jax.random.normal(k4, (3, d), jnp.float64), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("seed,shape", [(0, (2, 3, 3, 2)), (1, (2, 2, 4, 3))])
def test_conv1x1_property_and_closed_form(seed, shape):
    with float64():
        k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
        c = shape[-1]
        bij = Conv1x1(_perturb(k2, lu_linear_init(k1, c, jnp.float64)))
        x = jax.random.normal(k3, shape, jnp.float64)
        check_bijector(bij, x, atol=1e-10, rtol=1e-10)
        w = bij.matrix()
        y, ldj = bij.forward_and_log_det(x)
        np.testing.assert_allclose(y, jnp.einsum("bhwc,dc->bhwd", x, w), atol=1e-12)
        _, logabs = jnp.linalg.slogdet(w)
        np.testing.assert_allclose(ldj, shape[1] * shape[2] * logabs, atol=1e-10)


def test_chain_and_transformed_log_prob():
    with float64():
        d = 4
        k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
        lin = LULinear(_perturb(k2, lu_linear_init(k1, d, jnp.float64)))
        chain = distrax.Chain([lin, Permute(reverse_permutation(d)), distrax.Inverse(lin)])
        x = jax.random.normal(k3, (3, d), jnp.float64)
        check_bijector(chain, x, atol=1e-10, rtol=1e-10)
        # Gaussian base pushed through y = W z: log p(y) = log N(y; 0, W W^T).
        base = distrax.MultivariateNormalDiag(jnp.zeros(d), jnp.ones(d))
        flow = distrax.Transformed(base, lin)
        w = lin.matrix()
        exact = jax.scipy.stats.multivariate_normal.logpdf(x, jnp.zeros(d), w @ w.T)
        np.testing.assert_allclose(flow.log_prob(x), exact, atol=1e-10)
        np.testing.assert_allclose(jax.jit(lambda v: flow.log_prob(v))(x), exact, atol=1e-10)


def test_lu_grad_and_vmap():
    with float64():
        d = 3
        params = lu_linear_init(jax.random.key(0), d, jnp.float64)
        x = jax.random.normal(jax.random.key(1), (4, d), jnp.float64)
        base = distrax.MultivariateNormalDiag(jnp.zeros(d), jnp.ones(d))

        def nll(p):
            return -jnp.mean(distrax.Transformed(base, LULinear(p)).log_prob(x))

        grads = jax.jit(jax.grad(nll))(params)
        # d/d log_abs_diag_i of -log|det W| is -1 plus the data term; check by finite differences.
        h = 1e-6
        for i in range(d):
            e = jnp.zeros(d).at[i].set(h)
            plus = dict(params, log_abs_diag=params["log_abs_diag"] + e)
            minus = dict(params, log_abs_diag=params["log_abs_diag"] - e)
            fd = (nll(plus) - nll(minus)) / (2 * h)
            np.testing.assert_allclose(grads["log_abs_diag"][i], fd, rtol=1e-6, atol=1e-8)
        bij = LULinear(params)
        per_example = jax.vmap(bij.inverse)(x)
        np.testing.assert_allclose(per_example, bij.inverse(x), atol=1e-12)


def test_lu_bad_input():
    params = lu_linear_init(jax.random.key(0), 3)
    with pytest.raises(ShapeError, match="last axis of size 3"):
        LULinear(params).forward(jnp.zeros((2, 4)))
    with pytest.raises(ShapeError, match="last axis of size 3"):
        Conv1x1(params).inverse(jnp.zeros((2, 4, 4, 2)))
    with pytest.raises(ShapeError, match="3 event axes"):
        Conv1x1(params).forward(jnp.zeros((4, 3)))
    with pytest.raises(ConfigError, match="missing"):
        LULinear({"lower": params["lower"]})
    with pytest.raises(ConfigError, match="permutation"):
        LULinear(params, permutation=[0, 0, 1])
