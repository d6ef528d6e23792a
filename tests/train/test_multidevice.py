"""Data parallelism: 8 host devices give the same losses as 1 at the same global batch, a
checkpoint written on 8 devices restores on 1, labels are sharded with their examples, and the
streaming input path (batches fed from the host) takes the same steps on 8 devices."""

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
    import dataclasses, json, sys
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
    # The streaming input path (host-fed batches) on 8 devices: the same steps.
    streamed = fit(model, data, dataclasses.replace(config, input="stream"),
                   mesh=data_mesh(jax.devices()), progress=False)
    out["stream_8"] = [r["loss"] for r in streamed.history]
    # Checkpoint on 8 devices at step 25, resume on 1 device up to step 50.
    import tempfile
    workdir = tempfile.mkdtemp()
    half = dataclasses.replace(config, steps=25, checkpoint_every=25)
    fit(model, data, half, workdir=workdir, mesh=data_mesh(jax.devices()), progress=False)
    resumed = fit(model, data, dataclasses.replace(half, steps=50), workdir=workdir, """
    """mesh=data_mesh(jax.devices()[:1]), progress=False)
    out["resumed_from"] = resumed.resumed_from
    out["resumed"] = [r["loss"] for r in resumed.history]
    # Labels are gathered and sharded like the examples (x[:, 0] == y, so err == 0 exactly).
    import jax.numpy as jnp, numpy as np
    from genjax_models.data import Dataset
    from genjax_models.model import ModelBase

    @dataclasses.dataclass(frozen=True)
    class Echo(ModelBase):
        labels = "needs"

        def init(self, key, batch):
            return {"w": jnp.ones(())}

        def loss(self, params, batch, key):
            x, y = self.check_batch(batch)
            err = jnp.mean(jnp.abs(x[:, 0] - y))
            return params["w"] ** 2 + err, {"err": err}

    y = np.arange(64, dtype=np.int32) % 5
    x = np.stack([y.astype(np.float32), np.zeros(64, np.float32)], -1)
    echo_data = prepare(Dataset("echo", x, x[:8], y, y[:8]))
    echo_config = TrainConfig(steps=4, batch_size=16, log_every=1, steps_per_call=2)
    echo = fit(Echo((2,)), echo_data, echo_config, mesh=data_mesh(jax.devices()), progress=False)
    out["echo_err"] = [r["err"] for r in echo.history]
    echo_stream = dataclasses.replace(echo_config, input="stream")
    echo = fit(Echo((2,)), echo_data, echo_stream, mesh=data_mesh(jax.devices()), progress=False)
    out["echo_stream_err"] = [r["err"] for r in echo.history]
    print(json.dumps(out))
    """
)


@pytest.mark.smoke
@pytest.mark.slow
def test_eight_devices_match_one_device():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, eight = np.array(out["1"]), np.array(out["8"])
    assert one.shape == eight.shape == (50,)
    assert out["8_devices_of_params"] == 8 and out["1_devices_of_params"] == 1
    rel = np.abs(one - eight) / np.abs(one)
    assert rel.max() <= 1e-4, rel.max()
    # A checkpoint written on 8 devices restores on 1 and continues like the 1-device run.
    assert out["resumed_from"] == 25
    resumed = np.array(out["resumed"])
    assert resumed.shape == (50,)
    np.testing.assert_allclose(resumed, one, rtol=1e-4)
    assert out["echo_err"] == [0.0] * 4  # labels travel with their examples on 8 devices
    assert out["echo_stream_err"] == [0.0] * 4  # ... and when streamed from the host
    np.testing.assert_allclose(out["stream_8"], eight, rtol=1e-6)  # host-fed: the same steps
