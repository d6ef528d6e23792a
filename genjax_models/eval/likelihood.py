"""One likelihood convention for every model: nats per example and bits per dimension.

A model's ``log_prob`` is a log-density (or log-probability) of the arrays it sees. For
quantised data modelled as continuous (uniform dequantisation, scaling), the map from the
discrete data to the model's space has a log-Jacobian ``spec.log_jacobian`` per example,
and the discrete log-probability is bounded by

    log P(x) >= E_u[ log p_model(y) ] + log_jacobian,    y = (x + u) / L,  log_jacobian = -D log L.

That correction is applied here and nowhere else::

    nll_nats     = -(log_prob + log_jacobian)
    bits_per_dim = nll_nats / (D ln 2)
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.data.dataset import PreparedData
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, DataError
from genjax_models.model import GenerativeModel


def nll_in_data_space(log_prob: jax.Array, spec: DataSpec) -> jax.Array:
    """Negative log-likelihood in nats of the *data* (adds the preprocessing log-Jacobian)."""
    return -(log_prob + spec.log_jacobian)


def bits_per_dim(nll_nats: jax.Array | float, spec: DataSpec) -> jax.Array | float:
    """Convert nats per example to bits per dimension: ``nll / (D ln 2)``."""
    return nll_nats / (spec.num_dims * math.log(2.0))


def log_prob_batched(
    model: GenerativeModel,
    params: Any,
    data: np.ndarray,
    key: jax.Array,
    batch_size: int = 100,
    **options: Any,
) -> np.ndarray:
    """``model.log_prob`` over a whole array, in padded batches with one compilation.

    Batch ``i`` uses key ``fold_in(key, i)``; the last batch is padded by repeating its
    final example, and the padding is dropped from the result.

    Returns:
      float64 numpy array ``[N]`` of log-probabilities in nats.
    """
    if batch_size < 1:
        raise ConfigError(f"evaluation batch size must be >= 1, got {batch_size}")
    num = data.shape[0]
    if num == 0:
        raise ConfigError("cannot evaluate on an empty split")
    batch_size = min(batch_size, num)
    fn = jax.jit(functools.partial(model.log_prob, **options))
    out = []
    for i, start in enumerate(range(0, num, batch_size)):
        chunk = data[start : start + batch_size]
        valid = chunk.shape[0]
        if valid < batch_size:
            pad = np.repeat(chunk[-1:], batch_size - valid, axis=0)
            chunk = np.concatenate([chunk, pad], axis=0)
        values = fn(params, jnp.asarray(chunk), jax.random.fold_in(key, i))
        out.append(np.asarray(values, dtype=np.float64)[:valid])
    return np.concatenate(out)


def evaluate(
    model: GenerativeModel,
    params: Any,
    data: PreparedData,
    split: str = "test",
    key: jax.Array | None = None,
    batch_size: int = 100,
    **options: Any,
) -> dict[str, Any]:
    """Estimate the NLL of a split and report it with the estimator's name.

    Args:
      model, params: a trained model.
      data: the prepared data the model was trained on.
      split: ``"test"`` or ``"train"`` (each preprocessed with a fixed seed).
      key: PRNG key for stochastic estimators (default ``key(0)``).
      batch_size: examples per ``log_prob`` call.
      **options: estimator options passed to ``model.log_prob`` (e.g. ``num_samples``).

    Returns:
      ``{"split", "num_examples", "nll_nats", "nll_stderr", "bits_per_dim", "estimator",
      "log_prob_kind", "preprocessing"}``, plus ``"estimator_details"`` when the model states
      them (e.g. the trace and ODE steps of a continuous-time likelihood).
    """
    array = data.split(split)
    key = jax.random.key(0) if key is None else key
    log_probs = log_prob_batched(model, params, array, key, batch_size=batch_size, **options)
    nll = np.asarray(nll_in_data_space(jnp.asarray(log_probs), data.spec), dtype=np.float64)
    if not np.all(np.isfinite(nll)):
        bad = int((~np.isfinite(nll)).sum())
        raise DataError(f"{bad} of {nll.size} {split} examples got a non-finite log-probability (outside the model's support?)")
    mean = float(nll.mean())
    report = {
        "split": split,
        "num_examples": int(nll.size),
        "nll_nats": mean,
        "nll_stderr": float(nll.std(ddof=1) / math.sqrt(nll.size)) if nll.size > 1 else 0.0,
        "bits_per_dim": float(bits_per_dim(mean, data.spec)),
        "estimator": model.estimator(**options),
        "log_prob_kind": log_prob_kind(model, **options),
        "preprocessing": dict(data.preprocessing),
    }
    if hasattr(model, "estimator_details"):
        report["estimator_details"] = model.estimator_details(**options)
    return report


def log_prob_kind(model: GenerativeModel, **options: Any) -> str:
    """Return ``"exact"``, ``"lower-bound"`` or ``"estimate"`` for ``model.log_prob(**options)``.

    A model whose estimators differ in kind (e.g. a diffusion model's exact-trace ODE vs its
    variational bound) says so with ``estimator_kind(**options)``; otherwise its ``log_prob_kind``.
    """
    if hasattr(model, "estimator_kind"):
        return model.estimator_kind(**options)
    return model.log_prob_kind


def write_eval(workdir: str, report: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Write ``WORKDIR/eval_<split>_<estimator>.json`` and return the full record."""
    from genjax_models.train.workdir import atomic_write_text

    record = {"model": config["model"], "data": config["data"], **report}
    name = f"eval_{report['split']}_{report['estimator']}.json"
    atomic_write_text(os.path.join(workdir, name), json.dumps(record, indent=2) + "\n")
    return record
