"""VAE on sklearn digits (8x8, 1438/359 stratified split) thresholded at 8 (pixel > 8).

Run:
    genjax train vae --config experiments/configs/vae_digits.py --workdir runs/vae_digits
    genjax eval --workdir runs/vae_digits --k 1000

Expected: test NLL (IWAE-1000) below FVSBN's 18.05 nats on the same data
(shared/REFERENCE.md); see experiments/results/latent_quality.json.

This file states only what it changes over the model's default run (``genjax describe
vae``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "vae"
    config.data = "digits"
    config.model_config = ml_collections.ConfigDict({"hidden": (256, 128), "latent_dim": 8})
    config.data_config = ml_collections.ConfigDict({"binarize": "threshold(8)"})
    config.train = ml_collections.ConfigDict({"steps": 3000})
    return config
