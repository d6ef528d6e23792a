"""Runs: resolve a configuration, build its model and data, reload a trained run.

A run configuration is a plain nested dict (what ``WORKDIR/config.json`` holds)::

    {"model": "vae", "data": "mnist5k",
     "model_config": {...every hyper-parameter of the model...},
     "data_config": {"binarize": "dynamic", "dequantize": "none", "eval_seed": 0},
     "train": {...every TrainConfig field...}}

It is resolved in this order, later winning: library defaults, the model's own
``default_run`` (its usual dataset and training budget, a
:class:`~genjax_models.model.RunRecipe`), an ml_collections config file
(``experiments/configs/*.py``, which states only what it changes), explicit command-line flags,
then ``--set KEY=VALUE``. Every value is checked against its field's type
(:func:`genjax_models.fields.coerce`): ``--set model.use_scan=false`` is the boolean False and
``--set train.steps=1.5`` is refused. Training and evaluation of a configured run live one layer
up, in :func:`genjax_models.experiment.train_and_evaluate`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import os
from typing import Any

import jax

from genjax_models.data import PreparedData, load_dataset, prepare
from genjax_models.data.semi_supervised import keep_labels
from genjax_models.errors import ConfigError
from genjax_models.fields import coerce, coerce_fields, dataclass_field_types
from genjax_models.model import GenerativeModel, get_model, model_class
from genjax_models.train.checkpoint import Checkpointer
from genjax_models.train.config import TrainConfig
from genjax_models.train.fit import abstract_state
from genjax_models.train.sharding import data_mesh, replicated
from genjax_models.train.state import TrainState
from genjax_models.workdir import require_config

SECTIONS = ("model_config", "data_config", "train")
SECTION_ALIASES = {"model": "model_config", "data": "data_config", "train": "train"}
# Fields that may change when a run is continued in the same workdir.
RESUMABLE_CHANGES = tuple(
    f"train.{name}"
    for name in (
        "steps", "log_every", "checkpoint_every", "keep_checkpoints", "steps_per_call",
        "num_preview_samples",
    )
)


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """How a run loads and preprocesses its dataset (``--set data.X``).

    Attributes:
      binarize: ``none``, ``dynamic``, ``static(SEED)`` or ``threshold(T)``; unset: the
        model's default for quantised data (e.g. dynamic for the VAE), else none.
      dequantize: ``none`` or ``uniform``; unset: the model's default for quantised data.
      eval_seed: seed of the fixed binarisation / dequantisation of the evaluation splits.
      data_dir: directory with local dataset files (full MNIST / Fashion-MNIST IDX files).
      num_labelled: keep the labels of this many training examples (class-balanced, chosen
        with eval_seed) and hide the rest, for semi-supervised models (m2); unset: all labels.
    """

    binarize: str | None = None
    dequantize: str | None = None
    eval_seed: int = 0
    data_dir: str | None = None
    num_labelled: int | None = None


def section_fields(model: str) -> dict[str, dict[str, Any]]:
    """Return ``{section: {field: annotation}}`` of every settable field of a run."""
    return {
        "model_config": {k: v for k, v in dataclass_field_types(model_class(model)).items()
                         if k != "event_shape"},
        "data_config": dataclass_field_types(DataOptions),
        "train": dataclass_field_types(TrainConfig),
    }


def default_config(model: str) -> dict[str, Any]:
    """Library defaults merged with the model's ``default_run`` (dataset and budget)."""
    recipe = model_class(model).default_run
    return {
        "model": model,
        "data": recipe.data,
        "model_config": {},
        "data_config": {"eval_seed": DataOptions.eval_seed},
        "train": {**TrainConfig().to_dict(), **recipe.train},
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
        raise ConfigError(
            f"config file {path} failed to load: {type(err).__name__}: {err}"
        ) from err
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
            raise ConfigError(
                f"unknown config key {key!r}; valid top-level keys: model, data, "
                f"{', '.join(SECTIONS)}"
            )
    return out


def apply_overrides(config: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` strings; KEY is ``section.field`` or a field name unique to one section.

    Each VALUE is parsed as its field's type (:func:`genjax_models.fields.coerce`).
    """
    config = copy.deepcopy(config)
    fields = section_fields(config["model"])
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, name = key.split(".", 1)
            section = SECTION_ALIASES.get(section, section)
            if section not in fields:
                raise ConfigError(
                    f"--set {key}: unknown section; use model.FIELD, data.FIELD or train.FIELD"
                )
            candidates = [section] if name in fields[section] else []
        else:
            name = key
            candidates = [s for s in SECTIONS if name in fields[s]]
        if not candidates:
            valid = sorted(f"{s.split('_')[0]}.{n}" for s in SECTIONS for n in fields[s])
            raise ConfigError(f"--set {key}: no such option; valid keys: {', '.join(valid)}")
        if len(candidates) > 1:
            written = ", ".join(f"{c.split('_')[0]}.{name}" for c in candidates)
            raise ConfigError(f"--set {key} is ambiguous; write one of {written}")
        section = candidates[0]
        label = f"{section.split('_')[0]}.{name}"
        config[section][name] = coerce(label, text, fields[section][name])
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
            raise ConfigError(
                f"config file {config_file} is for model {from_file['model']!r}, not {model!r}"
            )
        config = _merge(config, from_file)
    if flags:
        config = _merge(config, flags)
    if overrides:
        config = apply_overrides(config, overrides)
    return config


def build(
    config: dict[str, Any],
) -> tuple[GenerativeModel, PreparedData, TrainConfig, dict[str, Any]]:
    """Load data, build the model and train config; return them and the *complete* config."""
    given = config.get("data_config", {})
    bad = sorted(set(given) - set(dataclass_field_types(DataOptions)))
    if bad:
        valid = ", ".join(sorted(dataclass_field_types(DataOptions)))
        raise ConfigError(f"unknown data option(s) {', '.join(bad)}; valid: {valid}")
    options = DataOptions(**coerce_fields(DataOptions, given, prefix="data."))
    load_options = {"data_dir": options.data_dir} if options.data_dir else {}
    dataset = load_dataset(config["data"], **load_options)
    binarize, dequantize = _resolve_preprocessing(
        options, dataset.num_levels is not None, config["model"]
    )
    prepared = prepare(dataset, binarize=binarize, dequantize=dequantize,
                       eval_seed=options.eval_seed)
    if options.num_labelled is not None:
        prepared = keep_labels(prepared, options.num_labelled, options.eval_seed)
    model = get_model(config["model"], prepared.spec, **config.get("model_config", {}))
    train_config = TrainConfig.from_dict(config.get("train", {}))
    data_config = dataclasses.asdict(options)
    data_config.update(binarize=binarize, dequantize=dequantize)
    complete = {
        "model": config["model"],
        "data": config["data"],
        "model_config": _jsonable(dataclasses.asdict(model)),
        "data_config": {k: v for k, v in data_config.items() if v is not None},
        "train": train_config.to_dict(),
    }
    return model, prepared, train_config, complete


def _resolve_preprocessing(options: DataOptions, quantised: bool, model: str) -> tuple[str, str]:
    """Return ``(binarize, dequantize)``, unset ones filled from the model's quantised defaults.

    On continuous data both default to ``"none"``. On quantised data an explicit choice of one
    wins over the model's default for the other (``binarize=threshold(8)`` turns off a default
    dequantisation and vice versa).
    """
    recipe = model_class(model).default_run
    default_bin = (recipe.binarize if quantised else None) or "none"
    default_deq = (recipe.dequantize if quantised else None) or "none"
    binarize, dequantize = options.binarize, options.dequantize
    if dequantize is None:
        dequantize = default_deq if binarize in (None, "none") else "none"
    if binarize is None:
        binarize = default_bin if dequantize == "none" else "none"
    return binarize, dequantize


def default_workdir(config: dict[str, Any], explicit: dict[str, Any]) -> str:
    """Return ``runs/MODEL_DATA[_FIELD=VALUE...]``: the explicitly set model fields are named.

    So ``genjax train score-sde`` and ``genjax train score-sde --set model.sde=ve`` do not share
    a workdir. Long names end in a short hash instead.
    """
    parts = [config["model"], str(config["data"]).replace(os.sep, "_")]
    for key, value in sorted(explicit.items()):
        text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        parts.append(f"{key}={text}")
    name = "_".join(parts).replace(" ", "")
    if len(name) > 80:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = "_".join(parts[:2]) + "_" + digest
    return os.path.join("runs", name)


@dataclasses.dataclass
class LoadedRun:
    """A trained run reloaded from its workdir."""

    config: dict[str, Any]
    model: GenerativeModel
    data: PreparedData
    state: TrainState

    @property
    def params(self) -> Any:
        """The parameters to evaluate and sample with (the EMA ones when the run keeps them)."""
        return self.state.eval_params


def load_run(workdir: str, step: int | None = None) -> LoadedRun:
    """Rebuild model and data from ``WORKDIR/config.json`` and restore a checkpoint.

    The restore target is ``jax.eval_shape`` of the initial state (no real initialisation),
    replicated on this machine's devices; ``step`` defaults to the latest checkpoint.
    """
    config = require_config(workdir)
    model, prepared, train_config, _ = build(config)
    sharding = replicated(data_mesh())
    target = jax.tree_util.tree_map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_state(model, prepared, train_config),
    )
    checkpointer = Checkpointer(workdir, read_only=True)
    try:
        state = checkpointer.restore(target, step)
    finally:
        checkpointer.close()
    return LoadedRun(config=config, model=model, data=prepared, state=state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value
