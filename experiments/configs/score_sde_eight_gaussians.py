"""Score SDE (VP, denoising score matching, MLP 256^3) on the 2-D eight-Gaussians mixture.

Run:
    genjax train score-sde --config experiments/configs/score_sde_eight_gaussians.py \
        --workdir runs/score_sde_eight_gaussians
    genjax eval --workdir runs/score_sde_eight_gaussians     # exact-trace PF-ODE, entropy too

Expected (experiments/results/diffusion_quality.json, seed 0, 2-core CPU, ~25 s of training):
test NLL - entropy = 0.108 nats (+- 0.013); ``--set model.sde=ve`` trains the VE SDE instead.

This file states only what it changes over the model's default run (``genjax describe
score-sde``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "score-sde"
    config.train = ml_collections.ConfigDict({"steps": 6000, "ema_decay": 0.995})
    return config
