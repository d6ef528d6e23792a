"""VAE on sklearn digits (8x8, 1437/360 stratified split) thresholded at 8 (pixel > 8).

Run:
    genjax train vae --config experiments/configs/vae_digits.py --workdir runs/vae_digits
    genjax eval --workdir runs/vae_digits --k 1000

Expected: test NLL (IWAE-1000) below FVSBN's 18.05 nats on the same data
(shared/REFERENCE.md); see experiments/results/latent_quality.json.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "vae"
    config.data = "digits"
    config.model_config = ml_collections.ConfigDict({"latent_dim": 8, "hidden": (256, 128)})
    config.data_config = ml_collections.ConfigDict({"binarize": "threshold(8)"})
    config.train = ml_collections.ConfigDict(
        {"steps": 3000, "batch_size": 128, "lr": 1e-3, "log_every": 100, "checkpoint_every": 1000}
    )
    return config
