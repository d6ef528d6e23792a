"""One likelihood convention for every model: nats per example and bits per dimension.

A model's ``log_prob`` is a log-density (or log-probability) of the arrays it sees. For
quantised data modelled as continuous (uniform dequantisation, scaling), the map from the
discrete data to the model's space has a log-Jacobian ``spec.log_jacobian`` per example,
and the discrete log-probability is bounded by

    log P(x) >= E_u[ log p_model(y) ] + log_jacobian,    y = (x + u) / L,  log_jacobian = -D log L.

That correction lives in one place, :meth:`DataSpec.data_nll` (used here and by the trainer)::

    nll_nats     = -(log_prob + log_jacobian)
    bits_per_dim = nll_nats / (D ln 2)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from genjax_models.data.batch import Batch
from genjax_models.data.dataset import PreparedData
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError, DataError
from genjax_models.model import DIAGNOSTIC_EXAMPLES, GenerativeModel


def nll_in_data_space(log_prob: jax.Array, spec: DataSpec) -> jax.Array:
    """Negative log-likelihood in nats of the *data* (adds the preprocessing log-Jacobian)."""
    return spec.data_nll(-log_prob)


def bits_per_dim(nll_nats: jax.Array | float, spec: DataSpec) -> jax.Array | float:
    """Convert data-space nats per example to bits per dimension: ``nll / (D ln 2)``."""
    return nll_nats / (spec.num_dims * math.log(2.0))


def log_prob_batched(
    model: GenerativeModel,
    params: Any,
    data: np.ndarray | Batch,
    key: jax.Array,
    batch_size: int = 100,
    progress: bool = False,
    **options: Any,
) -> np.ndarray:
    """``model.log_prob`` over a whole array (or ``Batch``), in padded batches, one compilation.

    Batch ``i`` uses key ``fold_in(key, i)``; the last batch is padded by repeating its
    final example, and the padding is dropped from the result.

    Returns:
      float64 numpy array ``[N]`` of log-probabilities in nats.
    """
    if batch_size < 1:
        raise ConfigError(f"evaluation batch size must be >= 1, got {batch_size}")
    data = data if isinstance(data, Batch) else Batch(data)
    num = data.x.shape[0]
    if num == 0:
        raise ConfigError("cannot evaluate on an empty split")
    batch_size = min(batch_size, num)
    model.describe_log_prob(**options)  # unknown options fail before any compilation
    fn = jax.jit(functools.partial(model.log_prob, **options))
    out = []
    starts = range(0, num, batch_size)
    for i, start in enumerate(tqdm(starts, disable=not progress, unit="batch", leave=False)):
        chunk = jax.tree_util.tree_map(
            lambda a, s=start: _padded(a[s : s + batch_size], batch_size), data
        )
        valid = min(batch_size, num - start)
        values = fn(params, chunk, jax.random.fold_in(key, i))
        out.append(np.asarray(values, dtype=np.float64)[:valid])
    return np.concatenate(out)


def _padded(chunk: np.ndarray, size: int) -> jax.Array:
    if chunk.shape[0] < size:
        pad = np.repeat(chunk[-1:], size - chunk.shape[0], axis=0)
        chunk = np.concatenate([chunk, pad], axis=0)
    return jnp.asarray(chunk)


def evaluate(
    model: GenerativeModel,
    params: Any,
    data: PreparedData,
    split: str = "test",
    key: jax.Array | None = None,
    batch_size: int = 100,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Estimate the NLL of a split and report it with the estimator's name and kind.

    Args:
      model, params: a trained model.
      data: the prepared data the model was trained on.
      split: ``"test"`` or ``"train"`` (each preprocessed with a fixed seed).
      key: PRNG key for stochastic estimators (default ``key(0)``).
      batch_size: examples per ``log_prob`` call.
      progress: show a progress bar (stderr).
      **options: the model's log-prob options (e.g. ``num_samples``, ``estimator``).

    Returns:
      ``{"split", "num_examples", "nll_nats", "nll_stderr", "bits_per_dim", "estimator",
      "log_prob_kind", "estimator_details", "preprocessing"}``; for data with a known
      density also ``"entropy_nats"`` and ``"nll_minus_entropy"`` (an estimate of
      KL(p || model), >= 0 up to noise); for models with diagnostics (e.g. a VAE's active
      units) ``"diagnostics"``, computed on up to ``DIAGNOSTIC_EXAMPLES`` examples.
    """
    info = model.describe_log_prob(**options)
    array = data.split(split)
    labels = data.split_labels(split) if model.labels != "ignores" else None
    key = jax.random.key(0) if key is None else key
    log_probs = log_prob_batched(
        model,
        params,
        Batch(array, labels),
        key,
        batch_size=batch_size,
        progress=progress,
        **options,
    )
    nll = np.asarray(nll_in_data_space(jnp.asarray(log_probs), data.spec), dtype=np.float64)
    if not np.all(np.isfinite(nll)):
        bad = int((~np.isfinite(nll)).sum())
        raise DataError(
            f"{bad} of {nll.size} {split} examples got a non-finite log-probability "
            "(outside the model's support?)"
        )
    mean = float(nll.mean())
    report: dict[str, Any] = {
        "split": split,
        "num_examples": int(nll.size),
        "nll_nats": mean,
        "nll_stderr": float(nll.std(ddof=1) / math.sqrt(nll.size)) if nll.size > 1 else 0.0,
        "bits_per_dim": float(bits_per_dim(mean, data.spec)),
        "estimator": info.estimator,
        "log_prob_kind": info.kind,
        "estimator_details": dict(info.details),
        "preprocessing": dict(data.preprocessing),
    }
    num_diag = min(int(array.shape[0]), DIAGNOSTIC_EXAMPLES)
    # Diagnostics see the split's labels whenever it has them, even for a model that ignores
    # labels in log_prob (e.g. the GMVAE's cluster purity).
    diag_labels = data.split_labels(split)
    diag_batch = Batch(
        jnp.asarray(array[:num_diag]),
        None if diag_labels is None else jnp.asarray(diag_labels[:num_diag]),
    )
    diagnose = getattr(model, "diagnostics", None)  # models outside ModelBase may lack it
    diag_key = jax.random.fold_in(key, 1)
    diagnostics = {} if diagnose is None else diagnose(params, diag_batch, diag_key)
    if diagnostics:
        report["diagnostics"] = {name: float(value) for name, value in diagnostics.items()}
    entropy = data.dataset.entropy
    if entropy is not None and data.spec.log_jacobian == 0.0:
        report["entropy_nats"] = float(entropy)
        report["nll_minus_entropy"] = mean - float(entropy)
    return report
