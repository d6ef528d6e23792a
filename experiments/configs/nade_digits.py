"""NADE on sklearn digits (8x8, 1438/359 stratified split) thresholded at 8 (pixel > 8).

Run:
    genjax train nade --config experiments/configs/nade_digits.py --workdir runs/nade_digits
    genjax eval --workdir runs/nade_digits

Expected: exact test NLL 16.63 nats (measured: 16.6307, standard error 0.23; 33 s wall for
train + eval on a shared 2-core CPU) with the default run: H = 256 sigmoid units tied across
the 64 conditionals, 2000 Adam steps of 128 at lr 3e-3. Reference numbers on the same data:
FVSBN 18.17 (this project; 18.05 published), IWAE 16.16, independent Bernoulli 25.2
(shared/REFERENCE.md): NADE is below FVSBN, as the lecture says it should be.

This file states only what it changes over the model's default run (``genjax describe
nade``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "nade"
    return config
