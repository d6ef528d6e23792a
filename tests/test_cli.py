"""The `genjax` command: list / train / eval / sample, and clear errors on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from genjax_models.cli import main
from tests.conftest import TINY_SETS
from tests.train.helpers import tree_digest


def _sets(extra=()):
    out = []
    for s in list(TINY_SETS) + list(extra):
        out += ["--set", s]
    return out


def _train(workdir, steps=10, data="digits", extra=(), model="vae"):
    return main(
        [
            "train",
            model,
            "--data",
            data,
            "--steps",
            str(steps),
            "--workdir",
            str(workdir),
            "--no-progress",
            *_sets(extra),
        ]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli") / "run"
    assert _train(workdir, steps=10) == 0
    return workdir


def test_list_shows_models_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "vae",
        "iwae",
        "digits",
        "mnist5k",
        "eight-gaussians",
        "checkerboard",
        "two-moons",
    ):
        assert name in out


@pytest.mark.smoke
def test_train_prints_where_outputs_are(trained, capsys):
    assert _train(trained, steps=12) == 0  # continue a finished run by two steps
    out = capsys.readouterr().out
    assert "resumed from step 10" in out
    for name in ("samples.png", "loss.png", "metrics.jsonl", "config.json"):
        assert os.path.join(str(trained), name) in out


@pytest.mark.smoke
def test_eval_prints_exactly_one_json_object(trained, capsys):
    capsys.readouterr()
    assert main(["eval", "--workdir", str(trained), "--k", "20"]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    record = json.loads(out)
    for key in ("model", "data", "split", "nll_nats", "bits_per_dim", "estimator"):
        assert key in record
    assert record["model"] == "vae" and record["data"] == "digits" and record["split"] == "test"
    assert record["estimator"] == "iwae-20" and record["log_prob_kind"] == "lower-bound"
    assert record["bits_per_dim"] == pytest.approx(record["nll_nats"] / (64 * np.log(2)))
    assert (
        0 < record["nll_nats"] < 64 * np.log(2) + 5
    )  # no worse than a coin flip per pixel, roughly
    assert record["preprocessing"]["binarize"] == "threshold(8)"
    # Same seed, same number; the record is also saved in the workdir.
    assert main(["eval", "--workdir", str(trained), "--k", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["nll_nats"] == record["nll_nats"]
    assert (trained / "eval_test_iwae-20.json").is_file()


def test_sample_writes_png_and_npy(trained, tmp_path, capsys):
    png, npy = tmp_path / "s.png", tmp_path / "s.npy"
    assert main(["sample", "--workdir", str(trained), "--num", "6", "--out", str(png)]) == 0
    assert png.stat().st_size > 0
    assert (
        main(
            [
                "sample",
                "--workdir",
                str(trained),
                "--num",
                "6",
                "--seed",
                "1",
                "--out",
                str(npy),
                "--option",
                "mean=True",
            ]
        )
        == 0
    )
    arr = np.load(npy)
    assert arr.shape == (6, 8, 8, 1) and arr.min() >= 0 and arr.max() <= 1


def _expect_error(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genjax: error:") or "genjax: error:" in err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.smoke
def test_unknown_model_and_dataset_list_choices(capsys, tmp_path):
    _expect_error(
        capsys,
        ["train", "vea", "--workdir", str(tmp_path / "a")],
        "unknown model 'vea'",
        "vae",
        "iwae",
    )
    _expect_error(
        capsys,
        ["train", "vae", "--data", "mnsit", "--workdir", str(tmp_path / "b")],
        "unknown dataset",
        "mnist5k",
        "digits",
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bad_set_key_and_value(capsys, tmp_path):
    _expect_error(
        capsys,
        ["train", "vae", "--set", "model.latnt_dim=3", "--workdir", str(tmp_path / "a")],
        "latent_dim",
    )
    _expect_error(
        capsys,
        ["train", "vae", "--set", "train.optimizer=adagrad", "--workdir", str(tmp_path / "a")],
        "adam",
    )
    _expect_error(
        capsys,
        ["train", "vae", "--set", "data.binarize=sometimes", "--workdir", str(tmp_path / "a")],
        "dynamic",
    )
    assert not (tmp_path / "a").exists()


def test_config_conflict_leaves_workdir_untouched(trained, capsys):
    before = tree_digest(str(trained))
    _expect_error(
        capsys,
        [
            "train",
            "vae",
            "--data",
            "digits",
            "--workdir",
            str(trained),
            "--no-progress",
            *_sets(["model.latent_dim=5"]),
        ],
        "different run",
        "latent_dim",
        "4",
        "5",
    )
    _expect_error(
        capsys,
        ["train", "iwae", "--data", "digits", "--workdir", str(trained), "--no-progress", *_sets()],
        "model",
    )
    assert tree_digest(str(trained)) == before


def test_nonempty_foreign_workdir_is_refused(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    _expect_error(
        capsys,
        ["train", "vae", "--data", "digits", "--workdir", str(foreign), *_sets()],
        "not empty",
    )
    assert os.listdir(foreign) == ["notes.txt"]


def test_eval_on_missing_workdir_or_checkpoint(tmp_path, capsys, trained):
    _expect_error(capsys, ["eval", "--workdir", str(tmp_path / "nope")], "does not exist")
    _expect_error(capsys, ["eval", "--workdir", str(trained), "--k", "0"], "--k must be >= 1")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--workdir", str(trained), "--split", "validation"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    shutil.rmtree(broken / "checkpoints")
    _expect_error(capsys, ["eval", "--workdir", str(broken)], "checkpoint")


def test_corrupted_checkpoint_gives_clear_error_and_is_not_deleted(tmp_path, capsys, trained):
    broken = tmp_path / "corrupt"
    shutil.copytree(trained, broken)
    latest = max(int(n) for n in os.listdir(broken / "checkpoints") if n.isdigit())
    step_dir = broken / "checkpoints" / str(latest)
    # Truncate every array data file of the latest checkpoint.
    damaged = 0
    for root, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(root, name)
            if os.path.getsize(path) > 0 and not name.endswith(("_METADATA", ".json")):
                with open(path, "r+b") as f:
                    f.truncate(max(1, os.path.getsize(path) // 3))
                damaged += 1
    assert damaged
    before = tree_digest(str(broken))
    _expect_error(capsys, ["eval", "--workdir", str(broken)], "cannot be restored", str(latest))
    _expect_error(
        capsys,
        [
            "train",
            "vae",
            "--data",
            "digits",
            "--steps",
            "40",
            "--workdir",
            str(broken),
            "--no-progress",
            *_sets(),
        ],
        "cannot be restored",
    )
    assert tree_digest(str(broken)) == before


def test_nan_wrong_shape_and_wrong_dtype_data_files(tmp_path, capsys):
    nan = tmp_path / "nan.npz"
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    x[3, 1] = np.nan
    np.savez(nan, x_train=x, x_test=x[:8])
    _expect_error(
        capsys, ["train", "vae", "--data", str(nan), "--workdir", str(tmp_path / "w1")], "NaN"
    )
    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=np.arange(10.0), x_test=np.arange(4.0))
    _expect_error(
        capsys, ["train", "vae", "--data", str(flat), "--workdir", str(tmp_path / "w2")], "shape"
    )
    text = tmp_path / "text.npz"
    np.savez(text, x_train=np.array([["a", "b"]] * 10), x_test=np.array([["a", "b"]] * 3))
    _expect_error(
        capsys,
        ["train", "vae", "--data", str(text), "--workdir", str(tmp_path / "w3")],
        "dtype <U1",
    )
    cplx = tmp_path / "complex.npz"
    np.savez(cplx, x_train=np.ones((10, 2), complex), x_test=np.ones((3, 2), complex))
    _expect_error(
        capsys,
        ["train", "vae", "--data", str(cplx), "--workdir", str(tmp_path / "w4")],
        "dtype complex128",
    )
    assert not any((tmp_path / w).exists() for w in ("w1", "w2", "w3", "w4"))


def test_subprocess_error_has_exit_code_2_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "genjax_models.cli",
            "train",
            "nosuchmodel",
            "--workdir",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown model 'nosuchmodel'" in proc.stderr


def test_config_file_then_flags_then_set(tmp_path, capsys):
    """--config loads an experiments/configs file; flags and --set override it."""
    config = os.path.join(
        os.path.dirname(__file__), "..", "experiments", "configs", "vae_digits.py"
    )
    workdir = tmp_path / "cfg"
    argv = [
        "train",
        "vae",
        "--config",
        config,
        "--steps",
        "6",
        "--workdir",
        str(workdir),
        "--no-progress",
        "--set",
        "train.log_every=3",
        "--set",
        "latent_dim=3",
        "--set",
        "model.hidden=(16,)",
    ]
    assert main(argv) == 0
    saved = json.loads((workdir / "config.json").read_text())
    assert (
        saved["data"] == "digits" and saved["data_config"]["binarize"] == "threshold(8)"
    )  # from the file
    assert saved["train"]["steps"] == 6 and saved["train"]["log_every"] == 3  # flag and --set
    assert saved["model_config"]["latent_dim"] == 3 and saved["model_config"]["hidden"] == [16]
    assert saved["train"]["batch_size"] == 128  # from the file
    _expect_error(
        capsys,
        ["train", "iwae", "--config", config, "--workdir", str(tmp_path / "x")],
        "is for model 'vae'",
    )
    _expect_error(
        capsys,
        [
            "train",
            "vae",
            "--config",
            str(tmp_path / "missing.py"),
            "--workdir",
            str(tmp_path / "x"),
        ],
        "does not exist",
    )


def test_sample_with_labels_from_a_class_conditional_pixelcnn(trained, tmp_path, capsys):
    workdir = tmp_path / "pixelcnn"
    sets = ["model.num_classes=10", "model.channels=4", "model.num_layers=2",
            "model.kernel_size=3", "model.first_kernel_size=3", "train.steps_per_call=5",
            "train.log_every=5", "train.checkpoint_every=10", "train.num_preview_samples=4"]
    assert main(["train", "pixelcnn", "--steps", "10", "--workdir", str(workdir),
                 "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    out = {k: tmp_path / f"{k}.npy" for k in ("cycle", "three", "seven")}
    base = ["sample", "--workdir", str(workdir), "--seed", "4"]
    assert main([*base, "--num", "10", "--label", "0,1,2,3,4,5,6,7,8,9",
                 "--out", str(out["cycle"])]) == 0
    cycle = np.load(out["cycle"])
    assert cycle.shape == (10, 8, 8, 1) and set(np.unique(cycle)) <= {0.0, 1.0}
    for name, label in (("three", "3"), ("seven", "7")):
        assert main([*base, "--num", "6", "--label", label, "--out", str(out[name])]) == 0
    # Same key, different class: the labels reach the network (a dropped label would not).
    assert not np.array_equal(np.load(out["three"]), np.load(out["seven"]))
    capsys.readouterr()
    _expect_error(capsys, [*base, "--label", "10"], "labels must lie in 0..9")
    _expect_error(capsys, [*base, "--label", "three"], "--label must be an integer")
    _expect_error(capsys, ["sample", "--workdir", str(trained), "--label", "1"],
                  "unconditional")
