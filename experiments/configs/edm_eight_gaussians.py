"""EDM (preconditioned MLP 256^3 denoiser, EDM loss) on the 2-D eight-Gaussians mixture.

Run:
    genjax train edm --config experiments/configs/edm_eight_gaussians.py \
        --workdir runs/edm_eight_gaussians
    genjax eval --workdir runs/edm_eight_gaussians

Expected (experiments/results/diffusion_quality.json, seed 0, 2-core CPU, ~23 s of training):
test NLL - entropy = 0.028 nats (+- 0.013), the best of the three diffusion models there.

This file states only what it changes over the model's default run (``genjax describe
edm``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "edm"
    config.data = "eight-gaussians"
    config.train = ml_collections.ConfigDict({
        "steps": 6000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.995, "steps_per_call": 50,
        "num_preview_samples": 1000,
    })
    return config
