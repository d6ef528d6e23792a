"""Gaussian mixture (K = 8, full covariances) on eight-Gaussians: EM in init, then Adam.

Run:
    genjax train gmm --config experiments/configs/gmm_eight_gaussians.py \
        --workdir runs/gmm_eight_gaussians
    genjax eval --workdir runs/gmm_eight_gaussians

Expected (measured once, seed 0, on a shared 2-core CPU, 11 s): init runs 100 EM iterations
from a greedy k-means++ start on the 4096-example init batch, then 2000 cosine-decayed Adam
steps on the exact NLL. Test NLL 1.7066 +- 0.014 nats (estimator "exact") against the data
entropy 1.698 nats (KL ~0.009). The default run (EM on 2048 examples, 500 constant-lr steps)
measured 1.7066 as well, EM alone on 2048 examples 1.723: the longer fine-tuning buys nothing.

This file states only what it changes over the model's default run (``genjax describe
gmm``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "gmm"
    config.train = ml_collections.ConfigDict(
        {"steps": 2000, "batch_size": 4096, "schedule": "cosine", "decay_steps": 2000,
         "checkpoint_every": 1000}
    )
    return config
