"""Completion of partly observed data against enumeration (FVSBN, tiny D), masks and the CLI.

- observed entries before the missing ones: exact log p(x_obs) and exact conditional draws;
- any other mask: importance resampling, whose log p(x_obs) estimate and completions converge
  to the enumerated answer, and which is flagged as an estimate;
- masks by name / file / random(p), with clear errors; models that cannot complete say so;
- ``genjax complete`` writes a picture and an array and prints one JSON line per example.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive import FVSBN
from genjax_models.cli import main
from genjax_models.completion import check_observed, make_mask
from genjax_models.data import DataSpec
from genjax_models.errors import ConfigError, GenjaxError, ShapeError
from genjax_models.model import get_model
from tests.autoregressive.oracles import completion_total_variation
from tests.x64 import float64


def _fvsbn(d: int = 4, seed: int = 0) -> tuple[FVSBN, dict]:
    model = FVSBN((d,))
    keys = jax.random.split(jax.random.key(seed), 2)
    params = {
        "b": jax.random.normal(keys[0], (d,)),
        "W": 1.5 * jax.random.normal(keys[1], (d, d)),
    }
    return model, params


def test_observed_prefix_gives_the_exact_conditional_and_marginal():
    with float64():
        model, params = _fvsbn()
        x = jnp.array([1.0, 0.0, 1.0, 1.0])
        observed = np.array([True, True, False, False])
        tv, log_p, exact_log_p = completion_total_variation(
            model, params, x, observed, 10_000
        )
        assert abs(log_p - exact_log_p) < 1e-10
        assert tv < 0.02, tv
        result = model.complete(params, jax.random.key(0), x[None], observed, 3)
        assert bool(result.exact[0])
        np.testing.assert_array_equal(np.asarray(result.samples)[:, 0, :2], [[1.0, 0.0]] * 3)


def test_other_masks_are_importance_resampled_and_flagged_as_estimates():
    with float64():
        model, params = _fvsbn(seed=2)
        x = jnp.array([0.0, 1.0, 0.0, 1.0])
        observed = np.array([False, True, False, True])  # a later entry is observed
        tv, log_p, exact_log_p = completion_total_variation(
            model, params, x, observed, 10_000, num_particles=10_000
        )
        assert abs(log_p - exact_log_p) < 0.03, (log_p, exact_log_p)
        assert tv < 0.03, tv
        result = model.complete(params, jax.random.key(1), x[None], observed, 2)
        assert not bool(result.exact[0])
        # With one particle the estimate is a single importance weight: biased low on average.
        few = model.complete(
            params, jax.random.key(4), jnp.tile(x, (4000, 1)), observed, 1, num_particles=1
        ).log_p_observed
        assert float(jnp.mean(few)) < exact_log_p
        np.testing.assert_allclose(
            float(jax.nn.logsumexp(few) - np.log(4000)), exact_log_p, atol=0.05
        )


def test_complete_checks_shapes_and_options():
    model, params = _fvsbn()
    x = jnp.zeros((2, 4))
    with pytest.raises(ShapeError, match=r"observed mask must have shape \[4\]"):
        model.complete(params, jax.random.key(0), x, np.ones((3,), bool), 1)
    with pytest.raises(GenjaxError, match="valid: num_particles"):
        model.complete(params, jax.random.key(0), x, np.ones((4,), bool), 1, particles=3)
    out = model.complete(params, jax.random.key(0), x, np.ones((2, 4), bool), 5)
    assert out.samples.shape == (5, 2, 4) and out.log_p_observed.shape == (2,)


def test_models_that_cannot_complete_name_those_that_can():
    flow = get_model("realnvp", DataSpec((4,), "continuous"), num_layers=2, hidden=(4,))
    with pytest.raises(ConfigError, match="realnvp cannot complete.*fvsbn.*vae"):
        flow.complete(None, jax.random.key(0), jnp.zeros((1, 4)), np.ones(4, bool), 1)


def test_named_masks(tmp_path):
    top = make_mask("top-half", (4, 3, 1), 2)
    assert top.shape == (2, 4, 3, 1) and top[:, :2].all() and not top[:, 2:].any()
    left = make_mask("left-half", (3, 5), 1)
    assert left[0, :, :3].all() and not left[0, :, 3:].any()
    assert make_mask("bottom-half", (4, 2), 1)[0, 2:].all()
    assert not make_mask("right-half", (2, 4), 1)[0, :, :2].any()
    rnd = make_mask("random(0.3)", (20, 20), 3, jax.random.key(1))
    assert rnd.shape == (3, 20, 20) and abs(rnd.mean() - 0.3) < 0.05
    assert not np.array_equal(rnd[0], rnd[1])  # a fresh mask per example
    path = str(tmp_path / "m.npy")
    np.save(path, np.array([[1, 0], [0, 1]]))
    np.testing.assert_array_equal(make_mask(path, (2, 2), 3)[2], [[True, False], [False, True]])
    with pytest.raises(ConfigError, match="unknown mask 'middle'; valid: top-half"):
        make_mask("middle", (4, 4), 1)
    with pytest.raises(ConfigError, match="0 <= p <= 1"):
        make_mask("random(1.5)", (4, 4), 1)
    with pytest.raises(ShapeError, match="needs an image"):
        make_mask("left-half", (4,), 1)
    with pytest.raises(ShapeError, match=r"\[2, 2\]"):
        check_observed(np.ones((3, 3)), (2, 2), 1)
    with pytest.raises(ShapeError, match="0/1"):
        check_observed(np.full((2, 2), 0.5), (2, 2), 1)


def test_cli_complete_writes_picture_and_array(tmp_path, capsys):
    workdir = tmp_path / "run"
    code = main(
        ["train", "fvsbn", "--steps", "20", "--workdir", str(workdir), "--no-progress",
         "--set", "train.log_every=10", "--set", "train.checkpoint_every=20",
         "--set", "train.steps_per_call=10", "--set", "train.num_preview_samples=4"]
    )
    assert code == 0
    capsys.readouterr()
    png = tmp_path / "c.png"
    assert main(["complete", "--workdir", str(workdir), "--mask", "top-half",
                 "--examples", "3", "--num", "2", "--out", str(png)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["kind"] for r in records] == ["exact"] * 3
    assert all(r["log_p_observed_nats"] < 0 and r["observed"] == 32 for r in records)
    assert os.path.getsize(png) > 0 and lines[-1] == str(png)
    npy = tmp_path / "c.npy"
    assert main(["complete", "--workdir", str(workdir), "--mask", "random(0.5)",
                 "--examples", "2", "--num", "3", "--out", str(npy),
                 "--option", "num_particles=8"]) == 0
    assert np.load(npy).shape == (3, 2, 8, 8, 1)
    assert '"kind": "estimate"' in capsys.readouterr().out
    assert main(["complete", "--workdir", str(workdir), "--mask", "diagonal"]) == 2
    assert "unknown mask 'diagonal'" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3)))
    assert main(["complete", "--workdir", str(workdir), "--mask", "top-half",
                 "--input", str(bad)]) == 2
    assert "--input must hold examples [N, 8, 8, 1]" in capsys.readouterr().err
    assert main(["complete", "--workdir", str(workdir), "--mask", "top-half",
                 "--option", "k=3"]) == 2
    assert "unknown fvsbn complete option 'k'" in capsys.readouterr().err
