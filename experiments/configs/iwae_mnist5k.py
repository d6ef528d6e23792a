"""IWAE (k = 10) on mnist5k, dynamic binarisation.

Run:
    genjax train iwae --config experiments/configs/iwae_mnist5k.py --workdir runs/iwae_mnist5k
    genjax eval --workdir runs/iwae_mnist5k --k 1000

Expected: test NLL (IWAE-1000) a little below the VAE's on the same data and budget;
see experiments/results/latent_quality.json.

This file states only what it changes over the model's default run (``genjax describe
iwae``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "iwae"
    config.train = ml_collections.ConfigDict({"steps": 3000})
    return config
