"""Class-conditional diffusion on digits: classifier-free guidance and inpainting.

What it measures (one class-conditional ``edm``, ``experiments/configs/edm_conditional_digits.py``:
U-Net base width 16, label dropout 0.1, 2000 steps, EMA 0.995):

1. **Classifier-free guidance**, D_w = D(x, t, y) + w (D(x, t, y) - D(x, t, null)): for each
   weight w, 1000 samples (100 per class, DPM-Solver++ 2M, 25 NFE; guided samples call the
   network twice per step), their **class accuracy** (the fraction assigned to the asked class
   by the nearest class mean in the feature space below; its test accuracy is recorded) and
   their **Fréchet distance** to the test split in those features (the MLP classifier of
   ``diffusion_quality.py``, trained here on the training split; floor: the training split
   against the test split). Also the unconditional model (no labels).
   Guidance trades diversity (FD) for class fidelity (accuracy).
2. **Inpainting** of the bottom half of 200 test digits given the top half (``complete``:
   replacement, and RePaint with ``resample`` U): mean squared error of the completed pixels,
   accuracy of the completed images against the true labels (the originals' accuracy is the
   ceiling), and FD to the test split; conditional (true labels) and unconditional (null label).

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/diffusion_conditional.py           # diffusion_conditional.json
    python experiments/bench/diffusion_conditional.py --quick   # smoke run, *_quick.json
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import parse_args, write_result  # noqa: E402
from diffusion_quality import fd, train, train_classifier  # noqa: E402

from genjax_models import get_model  # noqa: E402
from genjax_models.completion import make_mask  # noqa: E402
from genjax_models.data import Batch, load_dataset, prepare  # noqa: E402

FULL = {"steps": 2000, "num_samples": 1000, "num_inpaint": 200, "classifier_steps": 3000,
        "weights": (0.0, 0.5, 1.0, 2.0, 4.0),
        "inpaint": (("ancestral", 51, 1), ("ancestral", 51, 5), ("heun", 35, 1),
                    ("dpm-solver++", 25, 1))}
QUICK = {"steps": 20, "num_samples": 100, "num_inpaint": 20, "classifier_steps": 100,
         "weights": (0.0, 2.0), "inpaint": (("ancestral", 11, 1), ("ancestral", 11, 2))}


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = np.asarray(fn(*args, **kwargs))
    return out, time.perf_counter() - t0


def main() -> None:
    args = parse_args(__doc__)
    plan = QUICK if args.quick else FULL
    t_start = time.perf_counter()
    dataset = load_dataset("digits")
    prepared = prepare(dataset, dequantize="uniform")
    train_x, test_x = np.asarray(prepared.train_eval), np.asarray(prepared.test)
    test_y = np.asarray(dataset.test_labels)
    feature_fn, classifier = train_classifier(
        train_x, dataset.train_labels, test_x, test_y, plan["classifier_steps"]
    )
    test_feats = feature_fn(test_x)
    n = plan["num_samples"]
    floor_idx = np.random.RandomState(0).permutation(train_x.shape[0])[:n]
    floor = fd(feature_fn(train_x[floor_idx]), test_feats)

    model = get_model("edm", prepared.spec, channels=16, conditional=True)
    params, record = train(
        model, prepared, {"steps": plan["steps"], "batch": 64, "lr": 2e-3, "ema": 0.995}
    )
    print(f"trained in {record['train_wall_s']:.0f} s; FD floor {floor:.3f}", flush=True)
    classify = _class_predictor(feature_fn, train_x, dataset.train_labels)
    classifier["nearest_class_mean_test_accuracy"] = float(np.mean(classify(test_x) == test_y))

    guidance: dict[str, Any] = {}
    labels = np.arange(n) % 10
    for w in plan["weights"]:
        samples, wall = _timed(model.sample, params, jax.random.key(1), n, labels=labels,
                               guidance=w, sampler="dpm-solver++", nfe=25)
        guidance[f"w={w:g}"] = {
            "class_accuracy": float(np.mean(classify(samples) == labels)),
            "fd": fd(feature_fn(samples), test_feats),
            "sample_wall_s": wall,
        }
        print(f"w={w:g}: {guidance[f'w={w:g}']}", flush=True)
    samples, wall = _timed(model.sample, params, jax.random.key(1), n, sampler="dpm-solver++",
                           nfe=25)
    guidance["unconditional"] = {"fd": fd(feature_fn(samples), test_feats),
                                 "sample_wall_s": wall}

    m = plan["num_inpaint"]
    x, y = test_x[:m], test_y[:m]
    observed = make_mask("top-half", model.event_shape, m)
    inpainting: dict[str, Any] = {
        "originals_class_accuracy": float(np.mean(classify(x) == y)),
    }
    for sampler, nfe, resample in plan["inpaint"]:
        for conditional in (True, False):
            batch = Batch(x, y) if conditional else x
            result, wall = _timed(
                lambda b, s=sampler, f=nfe, u=resample: model.complete(
                    params, jax.random.key(2), b, observed, 1, sampler=s, nfe=f, resample=u
                ).samples[0],
                batch,
            )
            missing = ~observed
            key = f"{sampler}@{nfe} resample={resample} " + (
                "labels" if conditional else "no labels")
            inpainting[key] = {
                "missing_pixel_mse": float(np.mean((result - x)[missing] ** 2)),
                "class_accuracy": float(np.mean(classify(result) == y)),
                "fd": fd(feature_fn(result), test_feats),
                "wall_s": wall,
            }
            print(f"{key}: {inpainting[key]}", flush=True)

    payload = {
        "description": "class-conditional edm on digits: CFG accuracy / FD and inpainting",
        "quick": args.quick,
        "model": {"name": "edm", "channels": 16, "conditional": True, "label_dropout": 0.1,
                  **{k: v for k, v in record.items() if k != "loss_curve"}},
        "classifier": classifier,
        "fd_floor_train_vs_test": floor,
        "guidance": guidance,
        "inpainting_top_half_observed": inpainting,
        "wall_s": time.perf_counter() - t_start,
    }
    print(write_result("diffusion_conditional" + ("_quick" if args.quick else ""), payload))


def _class_predictor(feature_fn, train_x, train_y):
    """Nearest class mean in the classifier's feature space (the feature net has no head here)."""
    feats = feature_fn(train_x)
    means = np.stack([feats[np.asarray(train_y) == k].mean(0) for k in range(10)])

    def classify(images: np.ndarray) -> np.ndarray:
        f = feature_fn(np.asarray(images, np.float32))
        return np.argmin(((f[:, None] - means[None]) ** 2).sum(-1), axis=1)

    return classify


if __name__ == "__main__":
    main()
