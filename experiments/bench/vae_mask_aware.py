"""VAE completion on mnist5k: the plain encoder (missing pixels set to 0) against a mask-aware one.

What it measures: two ``vae`` runs (latent 32, MLP 784-512-256, Bernoulli decoder, dynamic
binarisation, Adam 1e-3, batch 128, 5000 steps, seed 0), one plain and one with
``mask_aware=True`` (encoder input ``[x * m, m]``, training loss plus the bound on
log p(x_o) of randomly masked copies of each batch, ``train_masks="mixed"``). On the first
``NUM_TEST`` test images (one fixed binarisation), for the ``complete`` verb's masks top-half,
left-half and random(0.5):

- the importance-sampled bound on log p(x_observed) with k = 1, 10 and 1000 samples (its
  mean over images and standard error; k = 1 is the ELBO on x_o, and the rise from k = 1 to
  k = 1000 shows how far the proposal q(z | x_o) is from the posterior p(z | x_o));
- the missing-pixel accuracy of 10 completions per image (resampled from the k = 1000
  importance samples): the fraction of missing pixels equal to the true binarised ones;

and, on the full test split, the IWAE-1000 bound on -log p(x), to see what the masked training
term costs the fully observed likelihood. Both bounds are each model's own (the decoders
differ), so the comparison is of what each model reports, not of one quantity.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/vae_mask_aware.py           # vae_mask_aware.json (~4 min)
    python experiments/bench/vae_mask_aware.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import fit_timed, parse_args, write_result  # noqa: E402

from genjax_models.completion import make_mask  # noqa: E402
from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

RUNS = {"plain": {}, "mask-aware": {"mask_aware": True}}
MASK_NAMES = ("top-half", "left-half", "random(0.5)")
NUM_TEST = 500
CHUNK = 50


def completion_scores(model, params, images: np.ndarray, mask: np.ndarray, ks) -> dict:
    """Bounds on log p(x_o) for each k, and the missing-pixel accuracy at the largest k."""
    scores = {}
    for k in ks:
        bounds, accuracy = [], []
        for start in range(0, images.shape[0], CHUNK):
            x = jnp.asarray(images[start:start + CHUNK])
            seen = jnp.asarray(mask[start:start + CHUNK])
            result = model.complete(params, jax.random.key(k + start), x, seen, 10,
                                    num_samples=k)
            bounds.append(np.asarray(result.log_p_observed))
            missing = ~np.asarray(seen)
            hits = (np.asarray(result.samples) == np.asarray(x)[None]) & missing[None]
            accuracy.append(hits.sum(axis=(2, 3, 4)).mean(0) / missing.sum(axis=(1, 2, 3)))
        b = np.concatenate(bounds)
        scores[f"k={k}"] = {"bound_nats": float(b.mean()),
                            "stderr": float(b.std(ddof=1) / np.sqrt(b.size)),
                            "missing_pixel_accuracy": float(np.concatenate(accuracy).mean())}
    return scores


def main() -> None:
    args = parse_args(__doc__)
    steps, ks, full_k, num_test = (30, (1, 10), 10, 100) if args.quick else (
        5000, (1, 10, 1000), 1000, NUM_TEST)
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    images = prepared.test[:num_test]
    masks = {name: make_mask(name, prepared.spec.event_shape, num_test, jax.random.key(7))
             for name in MASK_NAMES}
    runs = {}
    for name, extra in RUNS.items():
        model = get_model("vae", prepared.spec, latent_dim=32, **extra)
        _, params, train_s = fit_timed(model, prepared, steps, batch_size=128)
        full = evaluate(model, params, prepared, key=jax.random.key(123), num_samples=full_k)
        runs[name] = {
            "model_config": {"latent_dim": 32, **extra},
            "test_nll_nats": full["nll_nats"],
            "test_nll_stderr": full["nll_stderr"],
            "estimator": full["estimator"],
            "train_wall_s": train_s,
            "masks": {m: completion_scores(model, params, images, masks[m], ks)
                      for m in MASK_NAMES},
        }
        print(f"{name:10s} full NLL {full['nll_nats']:.2f}  train {train_s:.0f}s", flush=True)
        for m, by_k in runs[name]["masks"].items():
            row = "  ".join(f"{k} {v['bound_nats']:8.2f}" for k, v in by_k.items())
            acc = by_k[f"k={ks[-1]}"]["missing_pixel_accuracy"]
            print(f"  {m:12s} log p(x_o) bounds: {row}   missing-pixel accuracy {acc:.3f}",
                  flush=True)
    payload = {
        "description": "vae on mnist5k: completion bounds of a plain vs a mask-aware encoder",
        "quick": args.quick,
        "train_config": {"steps": steps, "batch_size": 128, "lr": 1e-3, "seed": 0},
        "num_test_images": num_test,
        "masks": list(MASK_NAMES),
        "log_prob_kind": "lower bound (importance sampled) on log p(x_observed), nats",
        "runs": runs,
    }
    print("wrote", write_result("vae_mask_aware_quick" if args.quick else "vae_mask_aware",
                                payload))


if __name__ == "__main__":
    main()
