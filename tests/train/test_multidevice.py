"""Data parallelism: 8 host devices give the same losses as 1 at the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    from genjax_models.data import load_dataset, prepare
    from genjax_models.model import get_model
    from genjax_models.train import TrainConfig, data_mesh, fit

    assert jax.device_count() == 8, jax.devices()
    data = prepare(load_dataset("digits"), binarize="dynamic")
    model = get_model("vae", data.spec, hidden=(64,), latent_dim=4)
    config = TrainConfig(steps=50, batch_size=64, lr=1e-3, log_every=1, steps_per_call=10)
    out = {}
    for n in (1, 8):
        result = fit(model, data, config, mesh=data_mesh(jax.devices()[:n]), progress=False)
        out[n] = [r["loss"] for r in result.history]
        leaf = jax.tree.leaves(result.state.params)[0]
        out[f"{n}_devices_of_params"] = len(leaf.sharding.device_set)
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_eight_devices_match_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, eight = np.array(out["1"]), np.array(out["8"])
    assert one.shape == eight.shape == (50,)
    assert out["8_devices_of_params"] == 8 and out["1_devices_of_params"] == 1
    rel = np.abs(one - eight) / np.abs(one)
    assert rel.max() <= 1e-4, rel.max()
