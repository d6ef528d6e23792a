"""RealNVP (8 affine couplings + ActNorm, MLP conditioners 64-64) on eight-Gaussians.

Run:
    genjax train realnvp --config experiments/configs/realnvp_eight_gaussians.py --workdir runs/realnvp_eight_gaussians
    genjax eval --workdir runs/realnvp_eight_gaussians

Expected (measured once, seed 0, on a shared 2-core CPU: training took 24 s): test NLL
1.938 +- 0.015 nats (estimator "exact") against the data entropy 1.698 nats, i.e.
KL(p || model) ~ 0.240 nats.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "realnvp"
    config.data = "eight-gaussians"
    config.model_config = ml_collections.ConfigDict({"num_layers": 8, "hidden": (64, 64)})
    config.train = ml_collections.ConfigDict(
        {
            "steps": 6000,
            "batch_size": 256,
            "lr": 1e-3,
            "schedule": "cosine",
            "decay_steps": 6000,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 50,
        }
    )
    return config
