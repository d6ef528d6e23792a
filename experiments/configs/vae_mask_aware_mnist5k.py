"""Mask-aware VAE on mnist5k for completing partly observed digits (dynamic binarisation).

The encoder takes the observed-pixel mask beside the zeroed image, q(z | x_o, m), and the loss
adds the bound on log p(x_o) of randomly masked copies of each batch (half images and random
pixels, ``train_masks="mixed"``), so that ``genjax complete`` proposes from a posterior fitted
to partial observations instead of an encoder that sees the missing pixels as zeros.

Run:
    genjax train vae --config experiments/configs/vae_mask_aware_mnist5k.py \
        --workdir runs/vae_mask_aware_mnist5k
    genjax complete --workdir runs/vae_mask_aware_mnist5k --mask top-half --out top.png \
        --option num_samples=1000

Expected (the default 5000 steps; experiments/bench/vae_mask_aware.py, 500 test images): a
bound on log p(top half) of -49.6 nats with k = 1000 (-55.7 with k = 1), against -65.9 (-88.0)
for the plain vae; 0.891 of the missing pixels right in completions (plain 0.866); test NLL
101.4 nats (IWAE-1000) against the plain vae's 98.1 at the same steps.

This file states only what it changes over the model's default run (``genjax describe
vae``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "vae"
    config.model_config = ml_collections.ConfigDict({"mask_aware": True})
    return config
