"""The flow models through the common protocol: shapes, exactness, normalisation, bad input.

Oracles (shared/ORACLES.md): every model's ``log_prob`` equals ``log N(T^{-1}(x)) +
slogdet(jacfwd(T^{-1}))`` computed by autodiff (float64), ``T^{-1}(T(z)) = z``, and each 2-D
density integrates to 1 on a grid covering its mass, with random (non-identity) parameters
and again after a few training steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax_models.data import DataSpec, load_dataset
from genjax_models.errors import ConfigError, DataError, ShapeError
from genjax_models.flows.models.base import standard_normal_log_prob
from genjax_models.model import GenerativeModel, get_model
from tests.x64 import float64

# Tiny versions of every flow on 2-D data: (registered name, overrides).
TINY = {
    "realnvp": ("realnvp", {"num_layers": 3, "hidden": (16,)}),
    "maf": ("maf", {"num_layers": 2, "hidden": (16,)}),
    "iaf": ("maf", {"num_layers": 2, "hidden": (16,), "inverse": True}),
    "nsf": ("nsf", {"num_layers": 2, "hidden": (16,), "num_bins": 4}),
    "planar": ("planar", {"num_layers": 4, "radial": True}),
    "ffjord": ("ffjord", {"hidden": (16,), "num_steps": 4}),
}
SPEC_2D = DataSpec((2,), "continuous")
TWO_D = load_dataset("eight-gaussians")


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _model(key: str, spec: DataSpec = SPEC_2D, **extra) -> GenerativeModel:
    name, overrides = TINY[key]
    return get_model(name, spec, **{**overrides, **extra})


def _perturb(params, scale: float = 0.1, seed: int = 0):
    """Add N(0, scale^2) noise to every leaf: a random, non-identity flow."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [
        leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype)
        for k, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, noisy)


def _init(model, seed: int = 0, num: int = 128):
    batch = jnp.asarray(TWO_D.train[:num], jnp.float64)
    return _perturb(model.init(jax.random.key(seed), batch), seed=seed), batch


def _grid(half_width: float = 7.0, num: int = 281) -> tuple[jax.Array, float]:
    """Midpoints of a ``num x num`` grid on [-w, w]^2 and the cell area."""
    axis = jnp.linspace(-half_width, half_width, num)
    xx, yy = jnp.meshgrid(axis, axis)
    return jnp.stack([xx.ravel(), yy.ravel()], axis=-1), float((axis[1] - axis[0]) ** 2)


def _train_fn(model, num_steps: int = 20, lr: float = 1e-2):
    """A jitted function running ``num_steps`` Adam steps on eight-Gaussians batches."""
    optimizer = optax.adam(lr)
    data = jnp.asarray(TWO_D.train, jnp.float64)

    @jax.jit
    def train(params):
        def step(carry, i):
            params, opt_state = carry
            batch = data[jax.random.choice(jax.random.key(i), data.shape[0], (128,))]
            grads = jax.grad(lambda p: model.loss(p, batch, jax.random.key(i))[0])(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), jnp.arange(num_steps))
        return params

    return train


@pytest.mark.parametrize("key", sorted(k for k in TINY if k != "iaf"))  # IAF: maf's option
def test_protocol_normalisation_and_bad_input(key):
    """Shapes, jit, loss = -mean log_prob, mass 1 on a grid before and after 20 Adam steps,
    and clear errors (wrong shape, NaN) -- one compilation of each function per model."""
    model = _model(key)
    params, batch = _init(model, seed=2)
    grid, cell = _grid()

    @jax.jit
    def evaluate(params, points):
        log_p = model.log_prob(params, points, jax.random.key(1))
        loss, metrics = model.loss(params, points, jax.random.key(1))
        return log_p, loss, metrics, model.sample(params, jax.random.key(2), 7)

    log_p, loss, metrics, samples = evaluate(params, grid)
    assert log_p.shape == (grid.shape[0],) and bool(jnp.all(jnp.isfinite(log_p)))
    assert float(jnp.sum(jnp.exp(log_p)) * cell) == pytest.approx(1.0, abs=3e-3)
    assert loss.shape == () and set(metrics) == {"loss", "nll"}
    np.testing.assert_allclose(loss, -log_p.mean(), rtol=1e-9)
    np.testing.assert_allclose(metrics["nll"], loss, rtol=1e-12)
    assert samples.shape == (7, 2) and bool(jnp.all(jnp.isfinite(samples)))
    assert model.describe_log_prob().kind == "exact"

    trained = _train_fn(model)(params)
    log_p_trained = evaluate(trained, grid)[0]
    assert float(jnp.sum(jnp.exp(log_p_trained)) * cell) == pytest.approx(1.0, abs=3e-3)
    test = np.asarray(TWO_D.test[:1000])
    nearest = np.argmin(((test[:, None, :] - np.asarray(grid)[None, :, :]) ** 2).sum(-1), axis=1)
    assert float(log_p_trained[nearest].mean()) > float(
        log_p[nearest].mean()
    )  # it learned something

    # Bad input: wrong shapes and (eagerly) NaN raise; inside jit only the NaN example is NaN.
    with pytest.raises(ShapeError, match=r"\[B, 2\]"):
        model.log_prob(params, jnp.zeros((4, 3)), jax.random.key(0))
    with pytest.raises(ShapeError):
        model.loss(params, jnp.zeros((2,)), jax.random.key(0))
    with pytest.raises(DataError, match="NaN"):
        model.log_prob(params, batch[:4].at[1, 0].set(jnp.nan), jax.random.key(0))
    out = evaluate(params, grid.at[1, 0].set(jnp.nan))[0]
    assert not bool(jnp.isfinite(out[1])) and bool(jnp.all(jnp.isfinite(out[2:])))


@pytest.mark.parametrize("key", sorted(k for k in TINY if k != "ffjord"))
def test_log_prob_is_base_density_plus_autodiff_log_det(key):
    """log p(x) = log N(T^{-1} x) + log|det dT^{-1}/dx| with the Jacobian from jax.jacfwd,
    and T^{-1}(T(z)) = z: sampling and density use the same bijection."""
    model = _model(key)
    params, batch = _init(model, seed=1)

    @jax.jit
    def check(params, x, z0):
        inverse = model.transform(params).inverse
        jac = jax.vmap(jax.jacfwd(lambda v: inverse(v[None])[0]))(x)
        expected = standard_normal_log_prob(inverse(x)) + jnp.linalg.slogdet(jac)[1]
        return (
            model.log_prob(params, x, None),
            expected,
            inverse(model.transform(params).forward(z0)),
        )

    z0 = jax.random.normal(jax.random.key(3), (4, 2))
    log_p, expected, z_back = check(params, batch[:4], z0)
    np.testing.assert_allclose(log_p, expected, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(z_back, z0, atol=1e-7)


def test_nsf_scan_and_chain_are_the_same_function():
    scanned = _model("nsf")
    chained = _model("nsf", use_scan=False)
    params, batch = _init(scanned, seed=4)
    np.testing.assert_allclose(
        jax.jit(chained.log_prob)(params, batch, None),
        jax.jit(scanned.log_prob)(params, batch, None),
        rtol=1e-10,
    )


@pytest.mark.parametrize("key", ["realnvp", "ffjord"])
def test_image_data_gets_logit_preprocessing_in_the_exact_density(key):
    """Dequantised images in [0, 1]: log p(x) includes the logit's log-Jacobian exactly."""
    spec = DataSpec((2, 2, 1), "continuous", 17, -4 * math.log(17))
    model = _model(key, spec)
    assert model.preprocess == "logit"
    x = jax.random.uniform(jax.random.key(0), (6, 2, 2, 1), jnp.float64)
    params = _perturb(model.init(jax.random.key(1), x))

    @jax.jit
    def parts(params, x):
        y, pre_log_det = model.preprocess_batch(x.reshape(6, 4))
        return (
            model.log_prob(params, x, jax.random.key(0)),
            pre_log_det,
            model.flow_log_prob(params, y, jax.random.key(0)),
            model.loss(params, x, jax.random.key(0)),
            model.sample(params, jax.random.key(2), 3),
        )

    log_p, pre_log_det, flow_log_p, (loss, metrics), samples = parts(params, x)
    alpha = model.logit_alpha
    p = alpha + (1 - 2 * alpha) * x.reshape(6, 4)
    np.testing.assert_allclose(
        pre_log_det, jnp.sum(jnp.log(1 - 2 * alpha) - jnp.log(p) - jnp.log1p(-p), -1), rtol=1e-10
    )
    np.testing.assert_allclose(log_p, flow_log_p + pre_log_det, rtol=1e-10)
    # Training bits/dim are in the data space: (nll + D log L) / (D ln 2).
    np.testing.assert_allclose(
        spec.bits_per_dim(metrics["nll"]), (loss + 4 * math.log(17)) / (4 * math.log(2)),
        rtol=1e-10,
    )
    # Samples are mapped back into the data range [0, 1], so the model's own samples have a
    # finite density (the logit's image is wider than [0, 1]).
    assert samples.shape == (3, 2, 2, 1)
    assert float(samples.min()) >= 0.0 and float(samples.max()) <= 1.0
    assert bool(jnp.all(jnp.isfinite(model.log_prob(params, samples, jax.random.key(0)))))


def test_bad_configs_raise_config_errors():
    with pytest.raises(ConfigError, match="dequantize"):
        get_model("nsf", DataSpec((8, 8, 1), "grey", 17))
    with pytest.raises(ConfigError, match="continuous"):
        get_model("realnvp", DataSpec((8, 8, 1), "binary", 2))
    with pytest.raises(ConfigError, match="D >= 2"):
        get_model("realnvp", DataSpec((1,), "continuous"))
    with pytest.raises(ShapeError, match="image"):
        get_model("glow", SPEC_2D)
    with pytest.raises(KeyError, match="choose one of"):
        get_model("nsf", SPEC_2D, mixing="shuffle")
    with pytest.raises(ConfigError, match="valid ones"):
        get_model("maf", SPEC_2D, num_bins=3)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        model = get_model("realnvp", DataSpec((2,), "continuous", 17), num_layers=1, hidden=(4,))
        model.init(jax.random.key(0), jnp.full((3, 2), 1.5))
