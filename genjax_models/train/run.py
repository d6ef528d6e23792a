"""Runs: resolve a configuration, train in a workdir, reload a trained run.

A run configuration is a plain nested dict (what ``WORKDIR/config.json`` holds)::

    {"model": "vae", "data": "mnist5k",
     "model_config": {...every hyper-parameter of the model...},
     "data_config": {"binarize": "dynamic", "dequantize": "none", "eval_seed": 0},
     "train": {...every TrainConfig field...}}

It is resolved in this order, later winning: library defaults, the model's own
``default_run`` (its usual dataset and training budget), an ml_collections config file
(``experiments/configs/*.py``), explicit command-line flags, then ``--set KEY=VALUE``.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib.util
import os
from typing import Any

import jax

from genjax_models.data import PreparedData, load_dataset, prepare
from genjax_models.errors import ConfigError
from genjax_models.model import GenerativeModel, get_model, model_class, model_fields
from genjax_models.train.checkpoint import Checkpointer
from genjax_models.train.config import TrainConfig
from genjax_models.train.fit import FitResult, fit, init_state
from genjax_models.train.sharding import data_mesh, replicate
from genjax_models.train.state import TrainState
from genjax_models.train.workdir import claim_workdir, read_metrics, record_config, require_config

SECTIONS = ("model_config", "data_config", "train")
SECTION_ALIASES = {"model": "model_config", "data": "data_config", "train": "train"}
# binarize=None / dequantize=None mean "the model's default for quantised data (e.g. dynamic
# binarisation for the VAE, uniform dequantisation for diffusion models), else none".
DATA_OPTIONS = {"binarize": None, "dequantize": None, "eval_seed": 0, "data_dir": None}
# Fields that may change when a run is continued in the same workdir.
RESUMABLE_CHANGES = tuple(
    f"train.{name}"
    for name in ("steps", "log_every", "checkpoint_every", "keep_checkpoints", "steps_per_call", "num_preview_samples")
)
DEFAULT_DATA = "mnist5k"


def default_config(model: str) -> dict[str, Any]:
    """Library defaults merged with the model's ``default_run`` (dataset, preprocessing, budget)."""
    cls = model_class(model)
    run = getattr(cls, "default_run", {})
    return {
        "model": model,
        "data": run.get("data", DEFAULT_DATA),
        "model_config": dict(run.get("model_config", {})),
        "data_config": {**{k: v for k, v in DATA_OPTIONS.items() if v is not None}, **run.get("data_config", {})},
        "train": {**TrainConfig().to_dict(), **run.get("train", {})},
    }


def load_config_file(path: str) -> dict[str, Any]:
    """Load ``get_config()`` from an ml_collections config file as a plain dict."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location("_genjax_user_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as err:
        raise ConfigError(f"config file {path} failed to load: {type(err).__name__}: {err}") from err
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path} has no get_config() function")
    config = module.get_config()
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if key in SECTIONS:
            out.setdefault(key, {}).update(value or {})
        elif key in ("model", "data"):
            out[key] = value
        else:
            raise ConfigError(f"unknown config key {key!r}; valid top-level keys: model, data, {', '.join(SECTIONS)}")
    return out


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: a Python literal (``3``, ``1e-3``, ``(256, 128)``, ``True``) or a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` strings; KEY is ``section.field`` or a field name unique to one section."""
    config = copy.deepcopy(config)
    fields = {
        "model_config": set(model_fields(config["model"])),
        "data_config": set(DATA_OPTIONS),
        "train": {f.name for f in dataclasses.fields(TrainConfig)},
    }
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, name = key.split(".", 1)
            section = SECTION_ALIASES.get(section, section)
            if section not in fields:
                raise ConfigError(f"--set {key}: unknown section; use model.FIELD, data.FIELD or train.FIELD")
            candidates = [section] if name in fields[section] else []
        else:
            name = key
            candidates = [s for s in SECTIONS if name in fields[s]]
        if not candidates:
            valid = sorted(f"{s.split('_')[0]}.{n}" for s in SECTIONS for n in fields[s])
            raise ConfigError(f"--set {key}: no such option; valid keys: {', '.join(valid)}")
        if len(candidates) > 1:
            raise ConfigError(f"--set {key} is ambiguous; write one of {', '.join(f'{c}.{name}' for c in candidates)}")
        config[candidates[0]][name] = parse_value(text.strip())
    return config


def resolve_config(
    model: str,
    *,
    config_file: str | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Resolve a full run configuration (see the module docstring for the order).

    Args:
      model: registered model name.
      config_file: optional ml_collections config file path.
      flags: explicit values such as ``{"data": "digits", "train": {"steps": 100}}``.
      overrides: ``KEY=VALUE`` strings from ``--set``.
    """
    config = default_config(model)
    if config_file:
        from_file = load_config_file(config_file)
        if from_file.get("model", model) != model:
            raise ConfigError(f"config file {config_file} is for model {from_file['model']!r}, not {model!r}")
        config = _merge(config, from_file)
    if flags:
        config = _merge(config, flags)
    if overrides:
        config = apply_overrides(config, overrides)
    return config


def build(config: dict[str, Any]) -> tuple[GenerativeModel, PreparedData, TrainConfig, dict[str, Any]]:
    """Load data, build the model and train config; return them and the *complete* config."""
    data_config = {**DATA_OPTIONS, **config.get("data_config", {})}
    bad = sorted(set(data_config) - set(DATA_OPTIONS))
    if bad:
        raise ConfigError(f"unknown data option(s) {', '.join(bad)}; valid: {', '.join(sorted(DATA_OPTIONS))}")
    load_options = {"data_dir": data_config["data_dir"]} if data_config["data_dir"] else {}
    dataset = load_dataset(config["data"], **load_options)
    _resolve_preprocessing(data_config, dataset.num_levels is not None, config["model"])
    prepared = prepare(
        dataset,
        binarize=str(data_config["binarize"]),
        dequantize=str(data_config["dequantize"]),
        eval_seed=int(data_config["eval_seed"]),
    )
    overrides = {k: _tuples(v) for k, v in config.get("model_config", {}).items()}
    model = get_model(config["model"], prepared.spec, **overrides)
    train_config = TrainConfig.from_dict(config.get("train", {}))
    complete = {
        "model": config["model"],
        "data": config["data"],
        "model_config": _jsonable(dataclasses.asdict(model)),
        "data_config": {k: v for k, v in data_config.items() if v is not None},
        "train": train_config.to_dict(),
    }
    return model, prepared, train_config, complete


def _resolve_preprocessing(data_config: dict[str, Any], quantised: bool, model: str) -> None:
    """Fill ``binarize`` / ``dequantize`` left as None with the model's defaults for quantised data.

    On continuous data both default to ``"none"``. On quantised data an explicit choice of one
    wins over the model's default for the other (``binarize=threshold(8)`` turns off a default
    dequantisation and vice versa).
    """
    defaults = getattr(model_class(model), "default_run", {}).get("quantised_data_config", {}) if quantised else {}
    binarize, dequantize = data_config["binarize"], data_config["dequantize"]
    if dequantize is None:
        dequantize = defaults.get("dequantize", "none") if binarize in (None, "none") else "none"
    if binarize is None:
        binarize = defaults.get("binarize", "none") if dequantize == "none" else "none"
    data_config["binarize"], data_config["dequantize"] = binarize, dequantize


def train_and_evaluate(config: dict[str, Any], workdir: str, *, progress: bool = True, eval_split: str | None = None, mesh=None) -> FitResult:
    """Train the configured run in ``workdir`` (resuming it), write plots, optionally evaluate.

    Validation (names, shapes, data, config conflicts) happens before anything is written,
    so a rejected command leaves the workdir as it was.
    """
    from genjax_models import viz
    from genjax_models.eval import evaluate, write_eval

    model, prepared, train_config, complete = build(config)
    resuming = claim_workdir(workdir, complete, RESUMABLE_CHANGES)
    result = fit(model, prepared, train_config, workdir=workdir, mesh=mesh, progress=progress)
    if resuming:  # only now record the continued run's new step budget / intervals
        record_config(workdir, complete)
    params = result.state.eval_params
    preview_key = jax.random.fold_in(jax.random.key(train_config.seed), 3)
    options = getattr(model, "preview_options", {})
    samples = model.sample(params, preview_key, train_config.num_preview_samples, **options)
    viz.save_samples(samples, os.path.join(workdir, "samples.png"), title=f"{complete['model']} on {complete['data']}")
    viz.save_loss_curve(read_metrics(workdir), os.path.join(workdir, "loss.png"))
    if eval_split is not None:
        report = evaluate(model, params, prepared, split=eval_split, key=jax.random.key(0))
        write_eval(workdir, report, complete)
    return result


@dataclasses.dataclass
class LoadedRun:
    """A trained run reloaded from its workdir."""

    config: dict[str, Any]
    model: GenerativeModel
    data: PreparedData
    state: TrainState

    @property
    def params(self) -> Any:
        return self.state.eval_params


def load_run(workdir: str, step: int | None = None) -> LoadedRun:
    """Rebuild model and data from ``WORKDIR/config.json`` and restore a checkpoint (latest by default)."""
    config = require_config(workdir)
    model, prepared, train_config, _ = build(config)
    mesh = data_mesh()
    target = replicate(init_state(model, prepared, train_config), mesh)
    checkpointer = Checkpointer(workdir, read_only=True)
    try:
        state = checkpointer.restore(target, step)
    finally:
        checkpointer.close()
    return LoadedRun(config=config, model=model, data=prepared, state=state)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value
