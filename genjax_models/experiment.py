"""Train a configured run in its workdir, write its pictures and optionally evaluate it.

This sits above both ``train/`` and ``eval/`` (which never import each other), so notebooks and
the CLI share one entry point::

    from genjax_models.experiment import train_and_evaluate
    from genjax_models.train import resolve_config

    config = resolve_config("vae", overrides=["train.steps=500"])
    result = train_and_evaluate(config, "runs/vae_quick", eval_split="test")
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from genjax_models import viz
from genjax_models.eval import evaluate
from genjax_models.train.distributed import barrier, is_writer
from genjax_models.train.fit import FitResult, fit
from genjax_models.train.run import RESUMABLE_CHANGES, build
from genjax_models.workdir import claim_workdir, read_metrics, record_config, write_eval


def train_and_evaluate(
    config: dict[str, Any],
    workdir: str,
    *,
    progress: bool = True,
    eval_split: str | None = None,
    mesh: Mesh | None = None,
) -> FitResult:
    """Train the configured run in ``workdir`` (resuming it), write plots, optionally evaluate.

    Validation (names, shapes, data, config conflicts) happens before anything is written,
    so a rejected command leaves the workdir as it was. The preview ``samples.png`` uses the
    model's default sample options, as ``genjax sample`` does.

    Args:
      config: a resolved run configuration (:func:`genjax_models.train.resolve_config`).
      workdir: the run directory (created, or resumed when it holds the same run).
      progress: show progress bars.
      eval_split: ``"test"`` or ``"train"`` to evaluate the NLL at the end (default: none).
      mesh: device mesh with a ``"data"`` axis (default: every device of every process;
        in a multi-process run process 0 alone writes the config, plots and evaluation).

    Returns:
      The :class:`~genjax_models.train.FitResult`; with ``eval_split`` the report is also in
      ``WORKDIR/eval_<split>_<estimator>.json``.
    """
    model, prepared, train_config, complete = build(config)
    writer = is_writer()
    if jax.process_count() > 1:  # every process checks before process 0 writes anything
        claim_workdir(workdir, complete, RESUMABLE_CHANGES, write=False)
        barrier("genjax-checked-workdir")
    resuming = claim_workdir(workdir, complete, RESUMABLE_CHANGES, write=writer)
    barrier("genjax-claimed-workdir")
    result = fit(model, prepared, train_config, workdir=workdir, mesh=mesh, progress=progress)
    if not writer:  # process 0 alone records, draws and evaluates
        return result
    if resuming:  # only now record the continued run's new step budget / intervals
        record_config(workdir, complete)
    params = result.state.eval_params
    if jax.process_count() > 1:  # host copies: process 0 samples and evaluates on its own
        params = jax.device_get(params)
    preview_key = jax.random.fold_in(jax.random.key(train_config.seed), 3)
    num_preview = train_config.num_preview_samples
    preview_labels = None  # a conditional model previews every class in turn
    if model.samples_by_class:
        preview_labels = jnp.arange(num_preview) % prepared.spec.num_classes
    samples = model.sample(params, preview_key, num_preview, labels=preview_labels)
    title = f"{complete['model']} on {complete['data']}"
    viz.save_samples(samples, os.path.join(workdir, "samples.png"), title=title)
    viz.save_loss_curve(read_metrics(workdir), os.path.join(workdir, "loss.png"))
    if eval_split is not None:
        report = evaluate(model, params, prepared, split=eval_split, key=jax.random.key(0),
                          progress=progress)
        write_eval(workdir, report, complete)
    return result
