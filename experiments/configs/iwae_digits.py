"""IWAE (k = 10) on sklearn digits thresholded at 8 (pixel > 8).

Run:
    genjax train iwae --config experiments/configs/iwae_digits.py --workdir runs/iwae_digits
    genjax eval --workdir runs/iwae_digits --k 1000

Expected: test NLL (IWAE-1000) at or below the VAE's and below FVSBN's 18.05 nats;
see experiments/results/latent_quality.json.

This file states only what it changes over the model's default run (``genjax describe
iwae``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "iwae"
    config.data = "digits"
    config.model_config = ml_collections.ConfigDict({"hidden": (256, 128), "latent_dim": 8})
    config.data_config = ml_collections.ConfigDict({"binarize": "threshold(8)"})
    config.train = ml_collections.ConfigDict({"steps": 3000})
    return config
