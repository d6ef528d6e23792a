"""Binarisation and dequantisation: turn a raw :class:`Dataset` into :class:`PreparedData`.

Raw quantised data holds integer levels ``x in {0, ..., L-1}^D``. :func:`prepare` maps it
to what a model sees:

==========================  =============  ======================  =====================
binarize / dequantize       ``train``       ``train_transform``     ``spec``
==========================  =============  ======================  =====================
none / none                 ``x/(L-1)``     identity                grey, L, log-Jac 0
dynamic / none              ``x/(L-1)``     ``Bernoulli(p)``        binary, 2, 0
static(S) / none            ``b ~ Bern``    identity                binary, 2, 0
threshold(T) / none         ``x > T``       identity                binary, 2, 0
none / uniform              ``x``           ``(x + u) / L``         continuous, L, -D log L
==========================  =============  ======================  =====================

``test`` is always fully preprocessed once with a fixed seed (``eval_seed`` for dynamic
binarisation and dequantisation, ``S`` for static). Fixed (one-off) draws use
``numpy.random.RandomState([seed, split])`` (``split`` 0 for train, 1 for test) so they
are identical on every jax version; per-step draws use JAX keys inside the jitted step.

Uniform dequantisation ``y = (x + u) / L``, ``u ~ U[0, 1)^D``, has
``log P(x) >= E_u[log p_model(y)] - D log L``: the ``-D log L`` is
``spec.log_jacobian``, added once by the evaluation code.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.data.dataset import Dataset, PreparedData
from genjax_models.data.spec import DataSpec
from genjax_models.data.validation import check_finite, validate_dataset
from genjax_models.errors import ConfigError

BINARIZE_FORMS = ("none", "dynamic", "static(SEED)", "threshold(T)")
DEQUANTIZE_FORMS = ("none", "uniform")

_STATIC = re.compile(r"^static\(\s*(\d+)\s*\)$")
_THRESHOLD = re.compile(r"^threshold\(\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\)$")


def binarize_dynamic(probs: jax.Array, key: jax.Array) -> jax.Array:
    """Draw ``b ~ Bernoulli(probs)`` elementwise, same shape and float dtype as ``probs``.

    Jittable; used as the per-step transform for dynamic binarisation.
    """
    probs = jnp.asarray(probs)
    dtype = probs.dtype if jnp.issubdtype(probs.dtype, jnp.floating) else jnp.float32
    return jax.random.bernoulli(key, probs).astype(dtype)


def dequantize_uniform(levels: jax.Array, key: jax.Array, num_levels: int) -> jax.Array:
    """Map integer levels ``x in 0..L-1`` to ``y = (x + u) / L``, ``u ~ U[0, 1)``, in ``[0, 1)``.

    Jittable; ``num_levels`` is L. The map has log|det| ``-D log L`` per example. Values
    that float rounding would put at exactly 1.0 are clipped to the largest float below 1.
    """
    levels = jnp.asarray(levels)
    dtype = levels.dtype if jnp.issubdtype(levels.dtype, jnp.floating) else jnp.float32
    u = jax.random.uniform(key, levels.shape, dtype)
    y = (levels.astype(dtype) + u) / num_levels
    # (L-1 + u)/L can round up to 1.0 in float32; keep the documented range [0, 1).
    return jnp.minimum(y, jnp.nextafter(jnp.array(1, dtype), jnp.array(0, dtype)))


def _identity(batch: jax.Array, key: jax.Array) -> jax.Array:
    del key
    return batch


def parse_binarize(binarize: str) -> tuple[str, float | int | None]:
    """Parse a binarisation string into ``(kind, argument)``.

    Valid forms: ``"none"``, ``"dynamic"``, ``"static(SEED)"`` (SEED a non-negative int)
    and ``"threshold(T)"`` (T a number, in raw level units: ``b = x > T``).
    """
    text = str(binarize).strip().lower()
    if text in ("none", "dynamic"):
        return text, None
    if m := _STATIC.match(text):
        return "static", int(m.group(1))
    if m := _THRESHOLD.match(text):
        return "threshold", float(m.group(1))
    raise ConfigError(
        f"invalid binarize {binarize!r}; valid forms: {', '.join(BINARIZE_FORMS)} "
        f"(e.g. 'static(0)', 'threshold(127.5)', T in raw level units)"
    )


def _fixed_bernoulli(probs: np.ndarray, seed: int, split: int) -> np.ndarray:
    rng = np.random.RandomState([seed, split])
    return (rng.uniform(size=probs.shape) < probs).astype(np.float32)


def _fixed_dequantize(levels: np.ndarray, seed: int, split: int, num_levels: int) -> np.ndarray:
    rng = np.random.RandomState([seed, split])
    u = rng.uniform(size=levels.shape)
    y = ((levels.astype(np.float64) + u) / num_levels).astype(np.float32)
    return np.minimum(y, np.nextafter(np.float32(1), np.float32(0)))


def prepare(
    dataset: Dataset,
    binarize: str = "none",
    dequantize: str = "none",
    eval_seed: int = 0,
) -> PreparedData:
    """Preprocess a raw dataset for training and evaluation.

    Args:
      dataset: raw :class:`Dataset` (validated again here: finite, on the level grid).
      binarize: ``"none" | "dynamic" | "static(SEED)" | "threshold(T)"``; quantised data only.
      dequantize: ``"none" | "uniform"``; quantised data with ``binarize="none"`` only.
      eval_seed: seed of the one fixed binarisation / dequantisation of the test split.

    Returns:
      :class:`PreparedData` (see the table in the module docstring).

    Raises:
      ConfigError: a bad binarize/dequantize string, or one that does not apply to the data.
      DataError: NaN/inf values or values off the level grid.
    """
    validate_dataset(dataset)
    kind, arg = parse_binarize(binarize)
    deq = str(dequantize).strip().lower()
    if deq not in DEQUANTIZE_FORMS:
        raise ConfigError(
            f"invalid dequantize {dequantize!r}; valid forms: {', '.join(DEQUANTIZE_FORMS)}"
        )
    if not isinstance(eval_seed, int | np.integer) or not 0 <= eval_seed < 2**32:
        raise ConfigError(f"eval_seed must be an int in 0..2**32-1, got {eval_seed!r}")
    if kind == "static" and not 0 <= int(arg) < 2**32:
        raise ConfigError(f"static(SEED) needs SEED in 0..2**32-1, got {arg}")
    eval_seed = int(eval_seed)
    name, levels = dataset.name, dataset.num_levels
    event_shape = dataset.event_shape
    x_train = np.asarray(dataset.train, dtype=np.float32)
    x_test = np.asarray(dataset.test, dtype=np.float32)
    canonical = {"none": "none", "dynamic": "dynamic", "static": f"static({arg})"}.get(
        kind, f"threshold({arg:g})" if kind == "threshold" else ""
    )
    preprocessing: dict[str, Any] = {
        "binarize": canonical,
        "eval_binarize": canonical,
        "dequantize": deq,
        "eval_seed": eval_seed,
    }

    if levels is None:
        if kind != "none" or deq != "none":
            raise ConfigError(
                f"dataset {name!r} is continuous (num_levels=None): binarize and dequantize "
                f"must be 'none', got binarize={binarize!r}, dequantize={dequantize!r}"
            )
        spec = DataSpec(event_shape, "continuous", None, 0.0)
        return _done(dataset, spec, x_train, x_test, _identity, preprocessing)

    if kind != "none" and deq != "none":
        raise ConfigError(
            f"binarize={binarize!r} and dequantize={dequantize!r} cannot be combined: "
            "binarised data is already discrete {0, 1}; set one of them to 'none'"
        )
    scale = float(levels - 1)
    binary = DataSpec(event_shape, "binary", 2, 0.0)
    if kind == "dynamic":
        preprocessing["eval_binarize"] = f"static({eval_seed})"
        test = _fixed_bernoulli(x_test / scale, eval_seed, 1)
        return _done(dataset, binary, x_train / scale, test, binarize_dynamic, preprocessing)
    if kind == "static":
        seed = int(arg)
        train = _fixed_bernoulli(x_train / scale, seed, 0)
        test = _fixed_bernoulli(x_test / scale, seed, 1)
        return _done(dataset, binary, train, test, _identity, preprocessing)
    if kind == "threshold":
        train = (x_train > arg).astype(np.float32)
        test = (x_test > arg).astype(np.float32)
        return _done(dataset, binary, train, test, _identity, preprocessing)
    if deq == "uniform":
        num_dims = int(np.prod(event_shape))
        spec = DataSpec(event_shape, "continuous", levels, -num_dims * math.log(levels))

        def transform(batch: jax.Array, key: jax.Array) -> jax.Array:
            return dequantize_uniform(batch, key, levels)

        test = _fixed_dequantize(x_test, eval_seed, 1, levels)
        return _done(dataset, spec, x_train, test, transform, preprocessing)
    spec = DataSpec(event_shape, "grey", levels, 0.0)
    return _done(dataset, spec, x_train / scale, x_test / scale, _identity, preprocessing)


def _done(dataset, spec, train, test, transform, preprocessing) -> PreparedData:
    train = np.asarray(train, dtype=np.float32)
    test = np.asarray(test, dtype=np.float32)
    check_finite(train, dataset.name, "train")
    check_finite(test, dataset.name, "test")
    if dataset.train_labels is not None:
        num_classes = int(max(np.max(dataset.train_labels), np.max(dataset.test_labels)) + 1)
        spec = dataclasses.replace(spec, num_classes=num_classes)
    return PreparedData(
        dataset=dataset,
        spec=spec,
        train=train,
        test=test,
        train_transform=transform,
        eval_transform=transform,
        preprocessing=preprocessing,
    )
