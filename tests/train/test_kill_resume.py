"""A run killed with SIGKILL mid-training resumes from its last finished checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from genjax_models.train.checkpoint import checkpoint_dir
from genjax_models.workdir import read_metrics
from tests.conftest import TINY_SETS
from tests.train.helpers import model_metrics


def _train_cmd(workdir: str, steps: int) -> list[str]:
    sets = [s for s in TINY_SETS if not s.startswith("train.checkpoint_every")] + [
        "train.checkpoint_every=20"
    ]
    cmd = [
        sys.executable,
        "-m",
        "genjax_models.cli",
        "train",
        "vae",
        "--data",
        "digits",
        "--steps",
        str(steps),
        "--workdir",
        workdir,
        "--no-progress",
    ]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _finished_steps(workdir: str) -> list[int]:
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        return []
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    steps = 4000
    killed = str(tmp_path / "killed")
    proc = subprocess.Popen(
        _train_cmd(killed, steps), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 240
    while time.time() < deadline and len(_finished_steps(killed)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, (
        "training finished before it could be killed: " + proc.stderr.read().decode()[-2000:]
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = _finished_steps(killed)
    assert at_kill, "no checkpoint had been written"

    # Continue the killed run to a smaller total, so the test stays short.
    total = max(at_kill) + 40
    rerun = subprocess.run(
        _train_cmd(killed, total), env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from step" in rerun.stdout
    reference = str(tmp_path / "reference")
    ref = subprocess.run(
        _train_cmd(reference, total), env=env, capture_output=True, text=True, timeout=300
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    got, want = read_metrics(killed), read_metrics(reference)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    np.testing.assert_allclose(
        np.array(model_metrics(got)), np.array(model_metrics(want)), rtol=1e-6, atol=1e-6
    )
    assert max(_finished_steps(killed)) == total
