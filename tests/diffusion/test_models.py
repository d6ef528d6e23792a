"""The ddpm / score-sde / edm models through the protocol, the trainer and the CLI."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models import data, get_model
from genjax_models.cli import main
from genjax_models.diffusion import oracle
from genjax_models.diffusion.models import DiffusionModel
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from genjax_models.eval import evaluate
from genjax_models.train import TrainConfig, fit
from tests.x64 import float64

TINY = {"hidden": (32, 32), "nfe": 20, "eval_steps": 10}


@pytest.fixture(scope="module")
def toy():
    return data.prepare(data.load_dataset("eight-gaussians"))


@pytest.fixture(scope="module")
def digits():
    return data.prepare(data.load_dataset("digits"), dequantize="uniform")


@pytest.mark.parametrize("name", ["ddpm", "score-sde", "edm"])
def test_protocol_on_2d_data(name, toy):
    model = get_model(name, toy.spec, **TINY)
    batch = jnp.asarray(toy.train[:16])
    params = model.init(jax.random.key(0), batch)
    loss, metrics = jax.jit(model.loss)(params, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and float(metrics["loss"]) == pytest.approx(float(loss))
    x = jax.jit(model.sample, static_argnums=2)(params, jax.random.key(2), 5)
    assert x.shape == (5, 2) and np.all(np.isfinite(np.asarray(x)))
    lp = model.log_prob(params, batch[:4], jax.random.key(3))
    assert lp.shape == (4,) and np.all(np.isfinite(np.asarray(lp)))
    assert model.describe_log_prob()[:2] == ("exact", "pf-ode")


def test_score_sde_variants_and_bad_settings(toy):
    for sde in ("vp", "subvp", "ve"):
        model = get_model("score-sde", toy.spec, sde=sde, **TINY)
        assert model.process == sde
    assert get_model("score-sde", toy.spec, sde="ve").preconditioning
    with pytest.raises(UnknownNameError, match="subvp"):
        get_model("score-sde", toy.spec, sde="vpp")
    with pytest.raises(UnknownNameError, match="heun"):
        get_model("edm", toy.spec, sampler="hune")
    with pytest.raises(ConfigError, match="process='ddpm'"):
        get_model("edm", toy.spec).log_prob(
            None, jnp.zeros((1, 2)), jax.random.key(0), estimator="vlb"
        )
    with pytest.raises(ConfigError, match="dequantize"):
        get_model("ddpm", data.prepare(data.load_dataset("digits"), binarize="threshold(8)").spec)
    model = get_model("edm", toy.spec, **TINY)
    with pytest.raises(ShapeError, match=r"\[B, 2\]"):
        model.init(jax.random.key(0), jnp.zeros((3, 5)))


@pytest.mark.smoke
def test_exact_denoiser_gives_the_oracle_likelihood():
    """Swap the network for the oracle denoiser.

    The model's pf-ode log_prob equals log p_{t_min}.
    """
    with float64():
        mix = oracle.example_mixture(2, 3, dtype=jnp.float64)
        model = DiffusionModel(event_shape=(2,), process="vp", eval_steps=200)
        process = model.forward_process
        x = mix.sample(jax.random.key(0), 6)

        class Exact(DiffusionModel):
            def denoiser(self, params):
                return lambda y, t: oracle.denoiser(mix, process, y, t)

        exact = Exact(event_shape=(2,), process="vp", eval_steps=200)
        got = exact.log_prob(None, x, jax.random.key(1))
        want = oracle.log_prob(mix, process, x, process.t_min)
        # The model's N(0, I) prior at t_max differs from the true p_T (means alpha_T mu_k with
        # alpha_T = 0.0066): a mismatch of O(alpha_T |mu| |x_T|) ~ 1e-2 nats; the ODE itself is
        # accurate to ~1e-6 here (tests/diffusion/test_likelihood.py uses the true p_T).
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-2)
        assert model.describe_log_prob().details["trace"] == "exact"


@pytest.mark.slow
def test_image_model_scaling_and_hutchinson(digits):
    model = get_model("edm", digits.spec, channels=8, channel_mult=(1,), nfe=3, eval_steps=2)
    assert model.scales_images and model.describe_log_prob().kind == "estimate"
    batch = jnp.asarray(digits.train[:4])
    params = model.init(jax.random.key(0), batch)
    x = model.sample(params, jax.random.key(1), 3)
    assert x.shape == (3, 8, 8, 1) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    lp = model.log_prob(params, batch, jax.random.key(2))
    assert lp.shape == (4,) and np.all(np.isfinite(np.asarray(lp)))
    # log_prob is in data space: model space + D log 2 (the [0,1] -> [-1,1] Jacobian).
    details = model.describe_log_prob().details
    assert details["trace"] == "hutchinson" and details["num_probes"] == 1


def test_ddpm_vlb_estimator(digits):
    model = get_model(
        "ddpm", digits.spec, channels=8, channel_mult=(1,), num_steps=20, nfe=20, eval_steps=2
    )
    batch = jnp.asarray(digits.train[:2])
    params = model.init(jax.random.key(0), batch)
    lp = model.log_prob(params, batch, jax.random.key(1), estimator="vlb")
    assert lp.shape == (2,) and np.all(np.isfinite(np.asarray(lp)))
    assert model.describe_log_prob(estimator="vlb")[:2] == ("lower-bound", "vlb")


@pytest.mark.slow
def test_short_training_beats_the_initial_density(toy):
    """A few hundred steps of score-sde on eight-gaussians.

    The PF-ODE test NLL drops and stays above the entropy.
    """
    model = get_model("score-sde", toy.spec, hidden=(64, 64), eval_steps=20)
    config = TrainConfig(
        steps=400, batch_size=128, lr=2e-3, log_every=100, steps_per_call=50, ema_decay=0.99
    )
    result = fit(model, toy, config, progress=False)
    small = (
        data.PreparedData(**{**toy.__dict__, "test": toy.test[:200]})
        if hasattr(data, "PreparedData")
        else toy
    )
    report = evaluate(model, result.state.eval_params, small, batch_size=200)
    entropy = toy.dataset.entropy
    assert report["estimator"] == "pf-ode" and report["log_prob_kind"] == "exact"
    gap = report["nll_nats"] - entropy
    assert -3 * report["nll_stderr"] < gap < 1.0, report
    assert math.isfinite(report["bits_per_dim"])


@pytest.mark.smoke
@pytest.mark.slow
def test_cli_train_sample_eval(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    sets = [
        "model.hidden=(16,)",
        "model.nfe=10",
        "model.eval_steps=4",
        "train.batch_size=64",
        "train.log_every=5",
        "train.checkpoint_every=10",
        "train.steps_per_call=5",
        "train.num_preview_samples=16",
    ]
    args = [
        "train",
        "edm",
        "--data",
        "eight-gaussians",
        "--steps",
        "10",
        "--workdir",
        workdir,
        "--no-progress",
    ]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 0
    out = str(tmp_path / "s.npy")
    assert (
        main(
            [
                "sample",
                "--workdir",
                workdir,
                "--sampler",
                "dpm-solver++",
                "--nfe",
                "8",
                "--num",
                "7",
                "--out",
                out,
            ]
        )
        == 0
    )
    assert np.load(out).shape == (7, 2)
    capsys.readouterr()
    assert (
        main(["eval", "--workdir", workdir, "--option", "num_steps=4", "--batch-size", "500"]) == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["estimator"] == "pf-ode" and record["estimator_details"]["trace"] == "exact"
    # Bad sampler name / option / budget: one clear line, exit 2.
    assert main(["sample", "--workdir", workdir, "--sampler", "eulr"]) == 2
    assert "dpm-solver++" in capsys.readouterr().err
    assert main(["sample", "--workdir", workdir, "--option", "bogus=1"]) == 2
    assert "valid" in capsys.readouterr().err
    assert main(["sample", "--workdir", workdir, "--sampler", "rk4", "--nfe", "2"]) == 2
    assert main(["eval", "--workdir", workdir, "--estimator", "vlb"]) == 2
    assert "pf-ode" in capsys.readouterr().err
