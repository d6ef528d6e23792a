"""VQ-VAE on mnist5k: reconstruction, codebook usage with and without dead-code restarts,
the bound in bits/dim, and the Fréchet distance of its samples.

What it measures: ``vqvae`` (conv encoder/decoder with 32 channels, 2 stride-2 stages: a 7x7
grid of K = 64 codes of dimension 16; EMA decay 0.99; gated-PixelCNN prior, 64 channels, 5
layers, trained jointly on stop-gradient codes) for 2000 steps (Adam 1e-3, batch 64, dynamic
binarisation), once with dead-code restarts (threshold 1, every 100 steps) and once without.
Reported per run: on the 1000 test images (one fixed binarisation) the reconstruction
-log p(x | k(x)), the prior's -log p(k(x)) and their sum, the bound on -log p(x) (nats and
bits/dim; q is a point mass, so this is the ELBO), codebook usage on the test split (codes
used, perplexity), and the squared Fréchet distance between 1000 samples (codes from the
prior, decoded, one Bernoulli draw per pixel) and the binarised test images in the features
of the MLP classifier of ``diffusion_quality.py`` (D-256-128-10, trained here on one fixed
binarisation of 3000 training images), with the floor FD(the other 1000 binarised training
images, test images): a random 1000 (the split is sorted by label) that the classifier never
saw, like the test split (features of its own training images are overfit, far from the test
features). Everything compared is binary: grey training images or Bernoulli means against
binary test images would measure the binarisation, not the model.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/vqvae.py           # vqvae.json (~12 minutes on 2 CPU cores)
    python experiments/bench/vqvae.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import fit_timed, parse_args, write_result  # noqa: E402
from diffusion_quality import fd, train_classifier  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

MODEL = {"channels": 32, "num_codes": 64, "code_dim": 16, "num_downsample": 2}
TRAIN = {"batch_size": 64, "lr": 1e-3, "seed": 0}
RUNS = {"restarts": {"restart_threshold": 1.0}, "no_restarts": {"restart_threshold": 0.0}}


def main() -> None:
    args = parse_args(__doc__)
    steps, num_samples, clf_steps = (20, 50, 50) if args.quick else (2000, 1000, 2000)
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    test = jnp.asarray(prepared.test)
    flat = lambda a: np.asarray(a).reshape(len(a), -1)  # noqa: E731
    labels = prepared.dataset
    # Dynamic binarisation keeps the training split grey; binarise it once (seed 1) so the
    # classifier, the floor and the samples all live on binary images like the test split.
    train_binary = np.asarray(jax.random.bernoulli(
        jax.random.key(1), jnp.asarray(prepared.train)), dtype=np.float32)
    # The training split is sorted by label: hold out a random 1000 images, not the last.
    order = np.random.RandomState(0).permutation(len(train_binary))
    held_out, clf_rows = order[: len(prepared.test)], order[len(prepared.test):]
    features, clf = train_classifier(flat(train_binary[clf_rows]),
                                     np.asarray(labels.train_labels)[clf_rows],
                                     flat(prepared.test), labels.test_labels, clf_steps)
    test_feats = features(flat(prepared.test))
    floor = fd(features(flat(train_binary[held_out])), test_feats)
    runs = {}
    for name, extra in RUNS.items():
        model = get_model("vqvae", prepared.spec, **MODEL, **extra)
        result, params, train_s = fit_timed(model, prepared, steps, **TRAIN)
        report = evaluate(model, params, prepared, key=jax.random.key(123))
        codes = jax.jit(model.codes)(params, test)
        z_q = params["codebook"].embedding[codes]
        recon = -float(jnp.mean(jax.jit(model.decode_log_likelihood)(params, test, z_q)))
        prior_nll = -float(jnp.mean(jax.jit(model.prior_log_prob)(params, codes)))
        samples = jax.jit(model.sample, static_argnums=2)(params, jax.random.key(7), num_samples)
        run = {
            "model_config": {**MODEL, **extra},
            "test_bound_nats": report["nll_nats"],
            "test_bound_stderr": report["nll_stderr"],
            "test_bits_per_dim": report["bits_per_dim"],
            "estimator": report["estimator"],
            "log_prob_kind": report["log_prob_kind"],
            "test_recon_nats": recon,
            "test_prior_nll_nats": prior_nll,
            "test_codebook_usage": report["diagnostics"],
            "sample_fd": fd(features(flat(samples)), test_feats),
            "train_wall_s": train_s,
            "final_train_metrics": {k: v for k, v in result.history[-1].items()
                                    if isinstance(v, float)},
        }
        runs[name] = run
        usage = report["diagnostics"]
        print(f"{name:12s} bound {run['test_bound_nats']:.2f} nats "
              f"({run['test_bits_per_dim']:.4f} bits/dim) recon {recon:.2f} prior {prior_nll:.2f}"
              f"  codes used {usage['codes_used']:.0f}/{model.num_codes}"
              f" perplexity {usage['code_perplexity']:.1f}  FD {run['sample_fd']:.2f}"
              f"  train {train_s:.0f}s", flush=True)
    payload = {
        "description": "vqvae on mnist5k: bound, reconstruction, codebook usage, sample FD",
        "quick": args.quick,
        "train_config": {"steps": steps, **TRAIN},
        "num_samples": num_samples,
        "feature_classifier": clf,
        "fd_floor_train_vs_test": floor,
        "runs": runs,
    }
    print("wrote", write_result("vqvae_quick" if args.quick else "vqvae", payload))


if __name__ == "__main__":
    main()
