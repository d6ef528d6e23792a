"""bf16 compute (``train.compute_dtype=bfloat16``): products in bf16, the rest and the state f32."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.errors import ConfigError, UnknownNameError
from genjax_models.experiment import train_and_evaluate
from genjax_models.model import get_model
from genjax_models.precision import float64
from genjax_models.train import TrainConfig, with_compute_dtype
from genjax_models.train.run import load_run
from tests.test_protocol import TINY, _batch
from tests.train.helpers import tiny_config

BF16 = jnp.bfloat16


def _network(w, k, x, *, scale):
    """Matmuls in a scan body, a cond branch, a jax.checkpoint block, a nested jit and a conv."""

    def body(h, _):
        return jnp.tanh(h @ w), None

    h, _ = jax.lax.scan(body, x, None, length=2)
    h = jax.lax.cond(h.sum() > 0, lambda h: h @ w, lambda h: h @ w.T, h)
    h = jax.jit(lambda h: jnp.sin(h) @ w)(h)
    image = jax.lax.conv_general_dilated(
        h.reshape(1, 4, 8, 1), k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jax.checkpoint(lambda h: jnp.sum((h @ w) ** 2))(h) * scale + jnp.sum(image)


def _network_in_bf16_by_hand(w, k, x, *, scale):
    def mm(a, b):
        return (a.astype(BF16) @ b.astype(BF16)).astype(jnp.float32)

    h = x
    for _ in range(2):
        h = jnp.tanh(mm(h, w))
    h = jnp.where(h.sum() > 0, mm(h, w), mm(h, w.T))
    h = mm(jnp.sin(h), w)
    image = jax.lax.conv_general_dilated(
        h.reshape(1, 4, 8, 1).astype(BF16), k.astype(BF16), (1, 1), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    ).astype(jnp.float32)
    return jnp.sum(mm(h, w) ** 2) * scale + jnp.sum(image)


def _arguments():
    kw, kk, kx = jax.random.split(jax.random.key(0), 3)
    return (
        jax.random.normal(kw, (8, 8)) / 3,
        jax.random.normal(kk, (3, 3, 1, 2)),
        jax.random.normal(kx, (4, 8)),
    )


@pytest.mark.smoke
def test_every_product_runs_in_bf16_and_everything_else_in_float32():
    args = _arguments()
    mixed = with_compute_dtype(_network, BF16)
    value, grads = jax.jit(jax.value_and_grad(mixed, argnums=(0, 1)))(*args, scale=2.0)
    by_hand, hand_grads = jax.jit(jax.value_and_grad(_network_in_bf16_by_hand, argnums=(0, 1)))(
        *args, scale=2.0
    )
    exact = jax.jit(_network)(*args, scale=2.0)
    assert value.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in grads)
    np.testing.assert_allclose(value, by_hand, rtol=1e-6)  # the same bf16 computation
    for g, h in zip(grads, hand_grads, strict=True):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-5)
    # ... which really is a lower-precision one: bf16 has 8 significant bits (rel. 2^-8)
    assert 1e-4 < abs(float(value - exact)) / abs(float(exact)) < 5e-2


def test_non_float32_operands_and_float32_compute_are_left_alone():
    args = _arguments()
    assert with_compute_dtype(_network, jnp.float32) is _network
    with float64():
        args64 = [a.astype(jnp.float64) for a in args]
        mixed = jax.jit(with_compute_dtype(_network, BF16))(*args64, scale=2.0)
        assert mixed.dtype == jnp.float64
        assert float(mixed) == float(jax.jit(_network)(*args64, scale=2.0))


@pytest.mark.parametrize("name", ["nsf", "nade"])
def test_bf16_loss_and_gradients_track_float32(name):
    """A spline flow's scan over layers and NADE's checkpointed scan over blocks."""
    spec, overrides = TINY[name]
    model = get_model(name, spec, **overrides)
    x = _batch(spec)
    params = model.init(jax.random.key(0), x)
    key = jax.random.key(1)
    (loss, _), grads = jax.jit(jax.value_and_grad(model.loss, has_aux=True))(params, x, key)
    mixed_loss = jax.value_and_grad(with_compute_dtype(model.loss, BF16), has_aux=True)
    (low, _), low_grads = jax.jit(mixed_loss)(params, x, key)
    assert jax.tree.structure(low_grads) == jax.tree.structure(grads)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(low_grads))
    assert abs(float(low - loss)) <= 1e-2 * abs(float(loss))
    flat, low_flat = (jnp.concatenate([g.ravel() for g in jax.tree.leaves(t)]) for t in
                      (grads, low_grads))
    assert float(jnp.linalg.norm(low_flat - flat) / jnp.linalg.norm(flat)) < 0.05


def test_bf16_training_tracks_float32_and_the_checkpoint_stays_float32(tmp_path):
    runs = {}
    for dtype in ("float32", "bfloat16"):
        config = tiny_config(20)
        config["train"]["compute_dtype"] = dtype
        workdir = str(tmp_path / dtype)
        runs[dtype] = train_and_evaluate(config, workdir, progress=False).history
    f32 = np.array([r["loss"] for r in runs["float32"]])
    bf16 = np.array([r["loss"] for r in runs["bfloat16"]])
    assert f32.shape == bf16.shape and not np.array_equal(f32, bf16)
    np.testing.assert_allclose(bf16, f32, rtol=0.01)  # nats per image, 20 Adam steps

    run = load_run(str(tmp_path / "bfloat16"))
    assert run.config["train"]["compute_dtype"] == "bfloat16"
    assert int(run.state.step) == 20
    floats = [a for a in jax.tree.leaves((run.state.params, run.state.opt_state))
              if jnp.issubdtype(a.dtype, jnp.floating)]
    assert floats and all(a.dtype == jnp.float32 for a in floats)


def test_compute_dtype_names_are_checked():
    with pytest.raises(ConfigError, match="loss scaling"):
        TrainConfig(compute_dtype="float16")
    with pytest.raises(UnknownNameError, match="bfloat16, float32"):
        TrainConfig(compute_dtype="bf16")
    assert TrainConfig.from_dict({"compute_dtype": "bfloat16"}).compute_dtype == "bfloat16"
