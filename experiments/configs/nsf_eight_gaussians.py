"""Neural spline flow (4 RQ-spline couplings, K = 8 bins on [-4, 4], LU mixing) on eight-Gaussians.

Run:
    genjax train nsf --config experiments/configs/nsf_eight_gaussians.py --workdir runs/nsf_eight_gaussians
    genjax eval --workdir runs/nsf_eight_gaussians

Expected (measured once, seed 0, on a shared 2-core CPU: training took 29 s): test NLL
1.756 +- 0.015 nats (estimator "exact") against the data entropy 1.698 nats, i.e.
KL(p || model) ~ 0.058 nats.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "nsf"
    config.data = "eight-gaussians"
    config.model_config = ml_collections.ConfigDict(
        {"num_layers": 4, "hidden": (64, 64), "num_bins": 8, "bound": 4.0}
    )
    config.train = ml_collections.ConfigDict(
        {
            "steps": 3000,
            "batch_size": 256,
            "lr": 1e-3,
            "schedule": "cosine",
            "decay_steps": 3000,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 50,
        }
    )
    return config
