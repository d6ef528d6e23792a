"""FVSBN on sklearn digits (8x8, 1438/359 stratified split) thresholded at 8 (pixel > 8).

Run:
    genjax train fvsbn --config experiments/configs/fvsbn_digits.py --workdir runs/fvsbn_digits
    genjax eval --workdir runs/fvsbn_digits

Expected: exact test NLL 18.17 nats (measured, ~6 s on a 2-core CPU; standard error ~0.23);
the reference FVSBN reaches 18.05 nats on the same data, the independent-Bernoulli baseline
25.2 (shared/REFERENCE.md). The default run (2000 constant-lr steps) measured 18.18; longer
constant-lr runs overfit slightly (5000 steps: 18.24), so this one decays the rate.

This file states only what it changes over the model's default run (``genjax describe
fvsbn``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "fvsbn"
    config.train = ml_collections.ConfigDict(
        {"steps": 4000, "schedule": "cosine", "decay_steps": 4000}
    )
    return config
