"""Bernoulli-latent VAE (200 binary latents, Gumbel-softmax) on mnist5k, dynamic binarisation.

(The Bernoulli-latent sibling of categorical_vae_mnist5k.py: the K = 2 case of the same code.)

Run:
    genjax train bernoulli-vae --config experiments/configs/bernoulli_vae_mnist5k.py \\
        --workdir runs/bernoulli_vae_mnist5k
    genjax eval --workdir runs/bernoulli_vae_mnist5k --k 1000

Expected (measured once, 2-core CPU, about 35 s including the evaluation): test NLL
(IWAE-1000 with q as proposal, one fixed binarisation of the 1000 test images) 113.2 +- 1.0
nats. Other estimators: ``--set model.estimator=...`` (``genjax describe bernoulli-vae``).

This file states only what it changes over the model's default run (``genjax describe
bernoulli-vae``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "bernoulli-vae"
    config.train = ml_collections.ConfigDict({"steps": 3000})
    return config
