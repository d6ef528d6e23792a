"""IWAE (k = 10) on mnist5k, dynamic binarisation.

Run:
    genjax train iwae --config experiments/configs/iwae_mnist5k.py --workdir runs/iwae_mnist5k
    genjax eval --workdir runs/iwae_mnist5k --k 1000

Expected: test NLL (IWAE-1000) a little below the VAE's on the same data and budget;
see experiments/results/latent_quality.json.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "iwae"
    config.data = "mnist5k"
    config.model_config = ml_collections.ConfigDict({"latent_dim": 32, "hidden": (512, 256), "num_importance": 10})
    config.data_config = ml_collections.ConfigDict({"binarize": "dynamic", "eval_seed": 0})
    config.train = ml_collections.ConfigDict(
        {"steps": 3000, "batch_size": 128, "lr": 1e-3, "log_every": 100, "checkpoint_every": 1000}
    )
    return config
