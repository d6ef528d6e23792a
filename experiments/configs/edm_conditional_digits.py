"""Class-conditional EDM on dequantised 8x8 digits, for classifier-free guidance.

Run:
    genjax train edm --config experiments/configs/edm_conditional_digits.py \\
        --workdir runs/edm_conditional_digits
    genjax sample --workdir runs/edm_conditional_digits --labels 0,1,2,3,4,5,6,7,8,9 \\
        --guidance 1 --sampler dpm-solver++ --nfe 25 --num 100 --out guided.png

Expected: see experiments/results/diffusion_guidance.json (python
experiments/bench/diffusion_guidance.py trains this config).

This file states only what it changes over the model's default run (``genjax describe
edm``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "edm"
    config.model_config = ml_collections.ConfigDict(
        {"channels": 16, "conditional": True}
    )
    config.train = ml_collections.ConfigDict({"ema_decay": 0.995, "steps_per_call": 50})
    return config
