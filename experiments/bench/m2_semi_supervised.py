"""Semi-supervised M2 on mnist5k with 100 labels, against a classifier of those labels alone.

What it measures: ``m2`` (the CVAE sizes of experiments/configs/cvae_mnist5k.py: latent 32,
hidden (512, 256); classifier q(y | x) with hidden (256,)) is trained for 3000 steps (Adam
1e-3, batch 128, dynamic binarisation) on the 4000 mnist5k training images, of which only
100 keep their label (``data.num_labelled=100``: 10 per class, seed 0), for a few values of
``classification_weight`` (0.1, 1, 10; Kingma et al.'s alpha = 0.1 N is 10 here).
Reported: the classifier's test accuracy on the 1000 test images, the test NLL bound (y
summed exactly over IWAE-1000 per class: a bound on log p(x), comparable with the VAE's
99.1), and the training wall time. The baseline is the same classifier MLP trained on the
same 100 labelled images alone (cross-entropy, Adam 1e-3, batch 100 = all of them, 500
steps, the digits binarised the same way each step), its test accuracy at the end.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/m2_semi_supervised.py           # m2_semi_supervised.json
    python experiments/bench/m2_semi_supervised.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from common import parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.data.semi_supervised import keep_labels  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import TrainConfig, fit  # noqa: E402

MODEL = {"latent_dim": 32, "hidden": (512, 256), "classifier_hidden": (256,)}
TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0}
NUM_LABELLED = 100
WEIGHTS = (0.1, 1.0, 10.0)


def supervised_baseline(prepared, model, steps: int) -> float:
    """Train the same classifier MLP on the labelled images alone; return test accuracy."""
    labels = np.asarray(prepared.train_labels)
    keep = np.flatnonzero(labels >= 0)
    x = jnp.asarray(prepared.train[keep]).reshape(len(keep), -1)
    y = jnp.asarray(labels[keep])
    net = model.classifier()
    params = net.init(jax.random.key(0), x)["params"]
    optimizer = optax.adam(1e-3)
    state = optimizer.init(params)

    def loss(p, key):
        xb = jax.random.bernoulli(key, x).astype(x.dtype)  # the dynamic binarisation
        logits = net.apply({"params": p}, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(carry, key):
        p, s = carry
        grads = jax.grad(loss)(p, key)
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(step, (params, state), jax.random.split(jax.random.key(1), steps))
    test_x = jnp.asarray(prepared.test).reshape(prepared.test.shape[0], -1)
    predicted = jnp.argmax(net.apply({"params": params}, test_x), axis=-1)
    return float(jnp.mean(predicted == jnp.asarray(prepared.dataset.test_labels)))


def main() -> None:
    args = parse_args(__doc__)
    steps, eval_k, weights = (30, 5, WEIGHTS[:1]) if args.quick else (3000, 1000, WEIGHTS)
    prepared = keep_labels(
        prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0), NUM_LABELLED, seed=0
    )
    runs = []
    for weight in weights:
        model = get_model("m2", prepared.spec, **MODEL, classification_weight=weight)
        config = TrainConfig(steps=steps, log_every=max(1, min(500, steps)),
                             checkpoint_every=10**9, steps_per_call=50, **TRAIN)
        t0 = time.perf_counter()
        result = fit(model, prepared, config, progress=False)
        jax.block_until_ready(result.state.params)
        train_s = time.perf_counter() - t0
        report = evaluate(model, result.state.eval_params, prepared, key=jax.random.key(123),
                          num_samples=eval_k)
        run = {
            "classification_weight": weight,
            "test_accuracy": report["diagnostics"]["classifier_accuracy"],
            "test_nll": {k: report[k] for k in ("estimator", "nll_nats", "nll_stderr",
                                                "log_prob_kind")},
            "active_units": report["diagnostics"]["active_units"],
            "train_wall_s": train_s,
            "final_train_metrics": {k: v for k, v in result.history[-1].items()
                                    if isinstance(v, float)},
        }
        runs.append(run)
        print(f"m2 weight {weight:5.1f}: test accuracy {run['test_accuracy']:.3f}  "
              f"test {report['estimator']} NLL {report['nll_nats']:.2f}"
              f"+-{report['nll_stderr']:.2f}  train {train_s:.0f}s", flush=True)
    baseline = supervised_baseline(prepared, model, 50 if args.quick else 500)
    print(f"classifier on the {NUM_LABELLED} labels alone: test accuracy {baseline:.3f}")
    payload = {
        "description": f"m2 on mnist5k with {NUM_LABELLED} labels vs a supervised classifier",
        "quick": args.quick,
        "num_labelled": NUM_LABELLED,
        "model_config": {k: list(v) if isinstance(v, tuple) else v for k, v in MODEL.items()},
        "train_config": {"steps": steps, **TRAIN},
        "runs": runs,
        "supervised_baseline_test_accuracy": baseline,
    }
    name = "m2_semi_supervised_quick" if args.quick else "m2_semi_supervised"
    print("wrote", write_result(name, payload))


if __name__ == "__main__":
    main()
