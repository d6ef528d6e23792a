"""Every experiments/configs file: loads, builds, documents itself, states only its changes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from genjax_models.model import describe_fields, list_models, model_class
from genjax_models.train.run import build, default_config, load_config_file, resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "configs").glob("*.py"))


@pytest.mark.smoke
def test_every_model_has_a_config():
    models = {load_config_file(str(path))["model"] for path in CONFIGS}
    assert models == set(list_models())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_and_states_only_what_it_changes(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert "Run:" in doc and "genjax train" in doc and "Expected" in doc
    raw = load_config_file(str(path))
    name = raw["model"]
    base = default_config(name)
    recipe = model_class(name).default_run
    assert raw.get("data", base["data"]) != base["data"] or "data" not in raw
    fields = {f.name: f.default for f in describe_fields(name)}
    for key, value in raw.get("model_config", {}).items():
        value = tuple(value) if isinstance(value, list) else value
        assert fields[key] != value, f"model.{key}={value!r} is already the default"
    quantised = {"binarize": recipe.binarize, "dequantize": recipe.dequantize}
    for key, value in raw.get("data_config", {}).items():
        assert {**base["data_config"], **quantised}.get(key) != value, f"data.{key} is the default"
    for key, value in raw.get("train", {}).items():
        assert base["train"][key] != value, f"train.{key}={value!r} is already the default"
    model, prepared, train, complete = build(resolve_config(name, config_file=str(path)))
    assert model.name == name and complete["model"] == name
    assert train.steps > 0 and prepared.train.shape[0] >= train.batch_size
