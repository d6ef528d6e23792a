"""GMVAE on mnist5k: the test NLL of a learned mixture prior, and how well its components cluster.

What it measures: ``gmvae`` with the mnist5k VAE's sizes (latent 32, hidden (512, 256),
Bernoulli decoder, dynamic binarisation, Adam 1e-3, batch 128, 3000 steps, as
experiments/configs/vae_mnist5k.py) and C = 10 mixture components, once with learned
mixture weights and once with them fixed uniform (the default), then evaluated on the 1000
test images (one fixed binarisation): the IWAE-1000 estimate of the NLL (a lower bound on
log p(x), with its standard error), the ELBO (k = 1), active units, the number of components
that own a test image, the perplexity of the mean cluster probabilities and the cluster
purity (each component mapped to its most frequent test label; the unsupervised clustering
accuracy). Baselines for the purity, in the same process: k-means (scikit-learn, 10
clusters, 10 restarts) on the test pixels and on the GMVAE's posterior means. The plain VAE's
NLL at the same budget is in latent_quality.json (99.11 nats).

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/gmvae.py           # gmvae.json (~2 minutes on 2 CPU cores)
    python experiments/bench/gmvae.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import fit_timed, parse_args, write_result  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402

from genjax_models.data import Batch, load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.latent.gmvae import cluster_purity  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

NUM_COMPONENTS = 10
RUNS = {"learned_weights": {"learn_weights": True}, "uniform_weights": {"learn_weights": False}}


def _kmeans_purity(features: np.ndarray, labels: np.ndarray) -> float:
    clusters = KMeans(NUM_COMPONENTS, n_init=10, random_state=0).fit_predict(features)
    return float(cluster_purity(jnp.asarray(clusters), jnp.asarray(labels), NUM_COMPONENTS, 10))


def main() -> None:
    args = parse_args(__doc__)
    steps, k = (50, 10) if args.quick else (3000, 1000)
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    test = jnp.asarray(prepared.test)
    test_labels = np.asarray(prepared.dataset.test_labels)
    flat_test = np.asarray(test).reshape(len(test), -1)
    runs = {}
    for name, extra in RUNS.items():
        model = get_model("gmvae", prepared.spec, num_components=NUM_COMPONENTS, **extra)
        _, params, train_s = fit_timed(model, prepared, steps, batch_size=128)
        report = evaluate(model, params, prepared, key=jax.random.key(123), num_samples=k)
        elbo = evaluate(model, params, prepared, key=jax.random.key(124), num_samples=1)
        batch = Batch(test, jnp.asarray(test_labels))
        clusters = np.asarray(jax.jit(model.assign)(params, batch))
        means = np.asarray(jax.jit(model.encode)(params, model.flatten(test))[0])
        weights = np.asarray(jax.nn.softmax(params["prior"]["logits"]))
        run = {
            "model_config": {"num_components": NUM_COMPONENTS, **extra},
            "test_nll_nats": report["nll_nats"],
            "test_nll_stderr": report["nll_stderr"],
            "test_neg_elbo_nats": elbo["nll_nats"],
            "estimator": report["estimator"],
            "log_prob_kind": report["log_prob_kind"],
            "diagnostics": report["diagnostics"],
            "cluster_purity_test": float(cluster_purity(
                jnp.asarray(clusters), jnp.asarray(test_labels), NUM_COMPONENTS, 10)),
            "cluster_sizes_test": np.bincount(clusters, minlength=NUM_COMPONENTS).tolist(),
            "mixture_weights": weights.tolist(),
            "kmeans_on_posterior_means_purity": _kmeans_purity(means, test_labels),
            "train_wall_s": train_s,
        }
        runs[name] = run
        diag = run["diagnostics"]
        print(f"{name:16s} NLL {run['test_nll_nats']:.2f} +- {run['test_nll_stderr']:.2f} "
              f"-ELBO {run['test_neg_elbo_nats']:.2f} active {diag['active_units']:.0f}/32 "
              f"components used {diag['components_used']:.0f} purity "
              f"{run['cluster_purity_test']:.3f} (k-means on its means "
              f"{run['kmeans_on_posterior_means_purity']:.3f})  train {train_s:.0f}s", flush=True)
    pixel_purity = _kmeans_purity(flat_test, test_labels)
    print(f"k-means on test pixels: purity {pixel_purity:.3f}")
    payload = {
        "description": "gmvae on mnist5k: test NLL and cluster purity of a learned MoG prior",
        "quick": args.quick,
        "train_config": {"steps": steps, "batch_size": 128, "lr": 1e-3, "seed": 0},
        "eval_num_samples": k,
        "kmeans_on_pixels_purity": pixel_purity,
        "vae_same_budget_test_nll": "99.11 +- 0.84 (latent_quality.json)",
        "runs": runs,
    }
    print("wrote", write_result("gmvae_quick" if args.quick else "gmvae", payload))


if __name__ == "__main__":
    main()
