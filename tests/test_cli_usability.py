"""The command line tried as a new user would: typed values, discoverable fields, errors that
speak the user's words, honest summaries, distinct default workdirs."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from genjax_models.cli import build_parser, main
from genjax_models.errors import ConfigError
from genjax_models.model import describe_fields
from genjax_models.train.run import default_workdir, resolve_config
from genjax_models.viz import smooth
from tests.conftest import TINY_SETS


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("usability") / "vae"
    argv = ["train", "vae", "--data", "digits", "--steps", "10", "--workdir", str(workdir),
            "--no-progress", *_sets(TINY_SETS)]
    assert main(argv) == 0
    return workdir


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("genjax: error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_set_values_are_parsed_as_the_field_type():
    config = resolve_config("nsf", overrides=["model.use_scan=false", "model.hidden=32,32",
                                              "train.steps=12", "lr=3e-4"])
    assert config["model_config"] == {"use_scan": False, "hidden": (32, 32)}
    assert config["train"]["steps"] == 12 and config["train"]["lr"] == 3e-4
    assert resolve_config("nsf", overrides=["model.use_scan=1"])["model_config"]["use_scan"]
    # "none" is a binarisation mode (text), but None for a field that takes no text.
    vae = resolve_config("vae", overrides=["data.binarize=none", "model.num_levels=None"])
    assert vae["data_config"]["binarize"] == "none" and vae["model_config"]["num_levels"] is None
    for bad, match in (("train.steps=1.5", "train.steps must be an int, got '1.5'"),
                       ("model.use_scan=yes", "model.use_scan must be a boolean"),
                       ("model.hidden=abc", "model.hidden must be a tuple")):
        with pytest.raises(ConfigError, match=match):
            resolve_config("nsf", overrides=[bad])


@pytest.mark.parametrize("bad", ["train.steps=1.5", "model.hidden=abc", "model.use_scan=maybe"])
def test_bad_set_values_are_one_error_line(bad, tmp_path, capsys):
    argv = ["train", "nsf", "--workdir", str(tmp_path / "run"), "--set", bad, "--no-progress"]
    assert main(argv) == 2
    assert bad.split("=")[0] in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_describe_lists_every_field_with_its_default(capsys):
    assert main(["describe", "nsf"]) == 0
    out = capsys.readouterr().out
    for field in describe_fields("nsf"):
        line = next(line for line in out.splitlines() if line.strip().startswith(field.name + " "))
        assert repr(field.default) in line and field.help[:20] in line
    assert "temperature" in out and "sample options" in out and "log-prob options" in out
    assert main(["describe", "bogus"]) == 2
    assert "choose one of" in _one_error_line(capsys)


def test_every_option_has_help_and_help_shows_defaults(capsys):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"genjax {name} {action.option_strings} has no help text"
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "(default: 100)" in capsys.readouterr().out


def test_flags_that_do_not_apply_say_so(vae_run, capsys):
    assert main(["eval", "--workdir", str(vae_run), "--estimator", "vlb"]) == 2
    line = _one_error_line(capsys)
    assert "--estimator does not apply to vae" in line and "num_samples" in line
    assert main(["sample", "--workdir", str(vae_run), "--nfe", "10"]) == 2
    assert "--nfe does not apply to vae" in _one_error_line(capsys)
    assert main(["sample", "--workdir", str(vae_run), "--option", "mean=perhaps"]) == 2
    assert "mean must be a boolean" in _one_error_line(capsys)


def test_sample_options_are_typed_and_stated(vae_run, tmp_path, capsys):
    out = tmp_path / "draws.npy"
    argv = ["sample", "--workdir", str(vae_run), "--num", "6", "--out", str(out), "--no-progress"]
    assert main([*argv, "--option", "mean=false"]) == 0
    draws = np.load(out)
    assert set(np.unique(draws)) <= {0.0, 1.0}  # Bernoulli draws, not means
    assert "options: mean=False" in capsys.readouterr().err
    assert main([*argv, "--option", "mean=TRUE"]) == 0
    means = np.load(out)
    assert "options: mean=True" in capsys.readouterr().err
    assert ((means > 0) & (means < 1)).any()


def test_zero_steps_and_steps_below_the_checkpoint(tmp_path, capsys):
    workdir = tmp_path / "zero"
    base = ["train", "vae", "--data", "digits", "--workdir", str(workdir), "--no-progress",
            *_sets(TINY_SETS)]
    assert main([*base, "--steps", "0"]) == 0
    out = capsys.readouterr().out
    assert "to step 0" in out and "None" not in out and "metrics.jsonl" not in out
    assert main([*base, "--steps", "10"]) == 0
    capsys.readouterr()
    assert main([*base, "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "already at step 10" in out and "to step 10" in out


def test_default_workdirs_name_the_changed_fields():
    vp = resolve_config("score-sde")
    ve = resolve_config("score-sde", overrides=["model.sde=ve"])
    assert default_workdir(vp, vp["model_config"]) == os.path.join("runs",
                                                                   "score-sde_eight-gaussians")
    assert default_workdir(ve, ve["model_config"]).endswith("score-sde_eight-gaussians_sde=ve")
    long = resolve_config("vae", overrides=[f"model.hidden={','.join(['512'] * 20)}"])
    assert len(os.path.basename(default_workdir(long, long["model_config"]))) < 40


def test_full_mnist_error_names_a_flag_that_exists(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("GENJAX_DATA_DIR", raising=False)
    argv = ["train", "vae", "--data", "mnist", "--workdir", str(tmp_path / "m"), "--no-progress"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "--set data.data_dir=" in line and "--data-dir" not in line


def test_toy_eval_reports_entropy_and_the_kl_estimate(tmp_path, capsys):
    workdir = tmp_path / "nsf"
    sets = ["model.num_layers=1", "model.hidden=(8,)", "train.batch_size=64",
            "train.log_every=5", "train.checkpoint_every=5", "train.steps_per_call=5",
            "train.num_preview_samples=8"]
    argv = ["train", "nsf", "--steps", "5", "--workdir", str(workdir), "--no-progress",
            *_sets(sets)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["eval", "--workdir", str(workdir), "--batch-size", "5000", "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["entropy_nats"] == pytest.approx(1.698, abs=1e-3)
    assert record["nll_minus_entropy"] == pytest.approx(record["nll_nats"] - record["entropy_nats"])
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["bits_per_dim"] == pytest.approx(metrics[-1]["nll"] / (2 * np.log(2)))


def test_loss_curve_smoothing_is_bias_corrected():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    values = smooth([0.0] * 5 + [1.0] * 200)
    assert values[4] == 0.0 and 0.0 < values[6] < 1.0 and values[-1] == pytest.approx(1.0)
