"""Multi-process training with ``jax.distributed``: 2 processes x 4 CPU devices train exactly as
1 process x 8 devices, and a run whose processes are killed mid-run resumes like an
uninterrupted one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from genjax_models.errors import ConfigError
from genjax_models.train import distributed
from genjax_models.train.checkpoint import checkpoint_dir
from genjax_models.workdir import read_metrics
from tests.conftest import TINY_SETS
from tests.train.helpers import model_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _train_cmd(workdir: str, steps: int, *extra: str) -> list[str]:
    sets = [s for s in TINY_SETS if not s.startswith("train.checkpoint_every")]
    sets += ["train.checkpoint_every=20"]
    cmd = [sys.executable, "-m", "genjax_models.cli", "train", "vae", "--data", "digits",
           "--steps", str(steps), "--workdir", workdir, "--no-progress", *extra]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _start_processes(workdir: str, steps: int) -> list[subprocess.Popen]:
    """Two processes of one run (4 CPU devices each), streaming their halves of each batch."""
    port = _free_port()
    return [
        subprocess.Popen(
            _train_cmd(workdir, steps, "--set", "train.input=stream",
                       "--coordinator", f"localhost:{port}", "--num-processes", "2",
                       "--process-id", str(i)),
            env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]


def _finished_steps(workdir: str) -> list[int]:
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        return []
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


@pytest.mark.slow
def test_two_processes_match_one_and_resume_after_a_kill(tmp_path):
    run = str(tmp_path / "two_processes")
    procs = _start_processes(run, 4000)
    deadline = time.time() + 240
    while time.time() < deadline and not _finished_steps(run) and procs[0].poll() is None:
        time.sleep(0.05)
    assert procs[0].poll() is None, "the run ended early: " + procs[0].stderr.read()[-2000:]
    os.kill(procs[1].pid, signal.SIGKILL)  # one process dies; the other is then stuck
    os.kill(procs[0].pid, signal.SIGKILL)
    for proc in procs:
        proc.communicate()
    at_kill = _finished_steps(run)
    assert at_kill, "no checkpoint had been written"

    total = max(at_kill) + 20
    procs = _start_processes(run, total)
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    assert f"resumed from step {max(at_kill)}" in outputs[0][0]
    assert "trained vae" not in outputs[1][0]  # process 0 reports, the others stay quiet

    reference = str(tmp_path / "one_process")
    ref = subprocess.run(_train_cmd(reference, total), env=_env(8), capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]
    got, want = read_metrics(run), read_metrics(reference)
    assert [r["step"] for r in got] == [r["step"] for r in want]  # one writer: no repeats
    np.testing.assert_allclose(
        np.array(model_metrics(got)), np.array(model_metrics(want)), rtol=1e-4
    )
    assert max(_finished_steps(run)) == total
    assert os.path.isfile(os.path.join(run, "samples.png"))


def test_multi_process_options_are_checked():
    with pytest.raises(ConfigError, match="needs all of"):
        distributed.initialize("localhost:1234", None, 0)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        distributed.initialize("localhost", 2, 0)
    with pytest.raises(ConfigError, match="0..1"):
        distributed.initialize("localhost:1234", 2, 2)
    with pytest.raises(ConfigError, match="detects"):
        distributed.initialize("localhost:1234", 2, 0, auto=True)
