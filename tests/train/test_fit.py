"""The generic trainer: learning, determinism, resume equality, non-finite losses."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import as_batch, load_dataset, prepare
from genjax_models.errors import ConfigError, GenjaxError, NonFiniteLossError
from genjax_models.experiment import train_and_evaluate
from genjax_models.model import LogProbInfo
from genjax_models.train import Checkpointer, TrainConfig, fit
from genjax_models.workdir import read_metrics
from tests.train.helpers import model_metrics, tiny_config


@pytest.mark.smoke
def test_fit_learns_and_logs(tmp_path):
    result = train_and_evaluate(tiny_config(40), str(tmp_path / "run"), progress=False)
    history = result.history
    assert [r["step"] for r in history] == list(range(5, 45, 5))
    assert history[-1]["loss"] < history[0]["loss"] - 3.0  # nats per image: clearly learning
    assert all(np.isfinite(r["loss"]) for r in history)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "samples.png", "loss.png"):
        assert (run / name).is_file(), name
    on_disk = read_metrics(str(run))
    assert [r["step"] for r in on_disk] == [r["step"] for r in history]
    assert all({"step", "loss", "elbo", "kl", "recon", "preprocessing"} <= set(r) for r in on_disk)
    assert on_disk[0]["preprocessing"].startswith("binarize=threshold(8)")
    assert Checkpointer(str(run), read_only=True).all_steps()[-1] == 40
    saved = json.loads((run / "config.json").read_text())
    assert saved["model_config"]["latent_dim"] == 4 and saved["train"]["steps"] == 40


@pytest.mark.smoke
def test_same_seed_same_metrics_and_different_seed_differs(tmp_path):
    a = train_and_evaluate(tiny_config(20, seed=3), str(tmp_path / "a"), progress=False).history
    b = train_and_evaluate(tiny_config(20, seed=3), str(tmp_path / "b"), progress=False).history
    c = train_and_evaluate(tiny_config(20, seed=4), str(tmp_path / "c"), progress=False).history
    assert model_metrics(a) == model_metrics(b)
    assert model_metrics(a) != model_metrics(c)


@pytest.mark.smoke
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    full = train_and_evaluate(tiny_config(40), str(tmp_path / "full"), progress=False).history
    part = str(tmp_path / "part")
    first = train_and_evaluate(tiny_config(20), part, progress=False)
    assert first.resumed_from is None
    second = train_and_evaluate(tiny_config(40), part, progress=False)
    assert second.resumed_from == 20
    resumed = read_metrics(part)
    assert [r["step"] for r in resumed] == [r["step"] for r in full]
    np.testing.assert_allclose(
        np.array(model_metrics(resumed)), np.array(model_metrics(full)), rtol=1e-6, atol=1e-6
    )


def test_resume_from_a_checkpoint_between_logs_drops_later_metric_lines(tmp_path):
    """Metric lines written after the last checkpoint (e.g. before a crash) are replaced."""
    part = str(tmp_path / "part")
    train_and_evaluate(tiny_config(20), part, progress=False)
    with open(os.path.join(part, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"step": 25, "loss": 123.0}) + "\n")
        f.write('{"step": 30, "loss": 1')  # torn line from a kill
    train_and_evaluate(tiny_config(30), part, progress=False)
    records = read_metrics(part)
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert records[4]["loss"] != 123.0


class _ExplodingModel:
    """A protocol model with loss -w, NaN once w > 6.5.

    Adam with lr=1 on a constant gradient moves w by ~1 per step, so the update of step k
    (1-based) sees w = k - 1 and the loss first becomes NaN at step 8.
    """

    name: ClassVar[str] = "exploding"
    labels: ClassVar[str] = "ignores"

    def init(self, key, batch):
        return {"w": jnp.zeros(())}

    def loss(self, params, batch, key):
        w = params["w"]
        value = -w + 0.0 * jnp.mean(as_batch(batch).x)
        return jnp.where(jax.lax.stop_gradient(w) > 6.5, jnp.nan, value), {}

    def sample(self, params, key, num, labels=None):
        return jnp.zeros((num, 2))

    def log_prob(self, params, batch, key):
        return jnp.zeros(as_batch(batch).x.shape[0])

    def describe_log_prob(self):
        return LogProbInfo("exact", "exact", {})


def test_nonfinite_loss_stops_with_the_step_and_keeps_last_good_checkpoint(tmp_path):
    data = prepare(load_dataset("eight-gaussians"))
    config = TrainConfig(
        steps=20, batch_size=8, lr=1.0, log_every=5, checkpoint_every=5, steps_per_call=5
    )
    workdir = str(tmp_path / "run")
    with pytest.raises(NonFiniteLossError, match=r"at step 8\b.*step 5"):
        fit(_ExplodingModel(), data, config, workdir=workdir, progress=False)
    assert Checkpointer(workdir, read_only=True).all_steps() == [5]
    assert [r["step"] for r in read_metrics(workdir)] == [5]


def test_batch_not_divisible_by_devices_and_too_large(tmp_path):
    from genjax_models.model import get_model
    from genjax_models.train.sharding import check_batch_divisible, data_mesh

    class _FakeMesh:
        devices = np.zeros(8)

    with pytest.raises(ConfigError, match="multiple of 8"):
        check_batch_divisible(12, _FakeMesh())
    data = prepare(load_dataset("digits"), binarize="threshold(8)")
    model = get_model("vae", data.spec, hidden=(8,), latent_dim=2)
    with pytest.raises(ConfigError, match="exceeds"):
        fit(model, data, TrainConfig(steps=1, batch_size=10_000), mesh=data_mesh(), progress=False)


def test_train_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="decay_steps"):
        TrainConfig(schedule="cosine")
    with pytest.raises(GenjaxError, match="choose one of"):
        TrainConfig(optimizer="adagrad-ish")
    with pytest.raises(ConfigError, match="valid"):
        TrainConfig.from_dict({"stepz": 3})
    assert dataclasses.asdict(TrainConfig.from_dict({"steps": 3}))["steps"] == 3


def test_ema_params_follow_the_polyak_recursion():
    """ema_t = d * ema_{t-1} + (1 - d) * params_t, starting from the initial params."""
    import optax

    from genjax_models.train import TrainState, make_update

    decay = 0.7
    data = prepare(load_dataset("eight-gaussians"))
    model = _ExplodingModel()
    optimizer = optax.adam(0.1)
    update = jax.jit(make_update(model, optimizer, batch_size=8, ema_decay=decay))
    state = TrainState.create(model.init(None, None), optimizer, use_ema=True)
    expected = 0.0
    for _ in range(5):
        state, _ = update(state, jnp.asarray(data.train), jax.random.key(0))
        expected = decay * expected + (1 - decay) * float(state.params["w"])
    assert float(state.params["w"]) > 0.4  # it moved
    np.testing.assert_allclose(float(state.ema_params["w"]), expected, rtol=1e-6)
    assert state.eval_params is state.ema_params
