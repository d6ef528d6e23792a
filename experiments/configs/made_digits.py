"""MADE (8 order/connectivity-agnostic masks, one 500-unit layer) on sklearn digits
thresholded at 8.

Run:
    genjax train made --config experiments/configs/made_digits.py --workdir runs/made_digits
    genjax eval --workdir runs/made_digits

Expected: TBD

This file states only what it changes over the model's default run (``genjax describe
made``); everything else is the model's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "made"
    return config
