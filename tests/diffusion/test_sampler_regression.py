"""Every sampler reproduces, bit for bit, the samples it drew before the one-driver refactor.

``tests/diffusion/data/sampler_regression.npz`` holds 8 x 2-D float32 samples of every sampler
configuration in :data:`CASES` on four processes, drawn with the Gaussian-mixture oracle's exact
denoiser, fixed keys and a budget of 12 NFE, by the per-sampler code that preceded the generic
driver. Regenerate (only when a change of the numbers is intended) with

    python -m tests.diffusion.test_sampler_regression --write
"""

from __future__ import annotations

import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import oracle
from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.processes import DDPM, EDM, VE, VP
from tests.diffusion.oracle_callback import host_denoiser

DATA = pathlib.Path(__file__).parent / "data" / "sampler_regression.npz"
SHAPE = (8, 2)
NFE = 12
PROCESSES = {"vp": VP(), "edm": EDM(), "ddpm": DDPM(50), "ve": VE()}

# (label, sampler, options): every sampler, and the options that take other code paths.
CASES: tuple[tuple[str, str, dict], ...] = (
    ("ancestral", "ancestral", {}),
    ("ancestral-large", "ancestral", {"variance": "large"}),
    ("ddim-eta0", "ddim", {"eta": 0.0}),
    ("ddim-eta1", "ddim", {"eta": 1.0}),
    ("ddim-eta05-nofinal", "ddim", {"eta": 0.5, "denoise_final": False}),
    ("euler-maruyama", "euler-maruyama", {}),
    ("pc", "pc", {}),
    ("pc-em-2-example", "pc", {"predictor": "euler-maruyama", "corrector_steps": 2,
                               "snr_norm": "example"}),
    ("pc-0", "pc", {"corrector_steps": 0}),
    ("langevin", "langevin", {}),
    ("langevin-2-step", "langevin", {"steps_per_level": 2, "step_size": 1e-5}),
    ("euler", "euler", {}),
    ("euler-t", "euler", {"variable": "t"}),
    ("heun", "heun", {}),
    ("heun-t-uniform", "heun", {"variable": "t", "grid": "uniform"}),
    ("rk4", "rk4", {}),
    ("rk4-t", "rk4", {"variable": "t"}),
    ("dpm-1", "dpm-solver++", {"order": 1}),
    ("dpm-2", "dpm-solver++", {"order": 2}),
    ("dpm-3", "dpm-solver++", {"order": 3}),
    ("dpm-3-edm-grid", "dpm-solver++", {"order": 3, "grid": "edm", "rho": 5.0}),
)


@functools.lru_cache
def _denoiser(process_name: str):
    """The oracle's exact float32 denoiser, compiled once, behind a host callback."""
    mix = oracle.example_mixture(2, 3, dtype=jnp.float32)
    return host_denoiser(mix, PROCESSES[process_name])[0]


def draw(process_name: str, sampler: str, options: dict, seed: int) -> np.ndarray:
    """Return ``SHAPE`` float32 samples of ``sampler`` on ``process_name`` under jit."""
    process, denoise = PROCESSES[process_name], _denoiser(process_name)
    run = jax.jit(lambda k: smp.sample(sampler, denoise, process, k, SHAPE, NFE, **options))
    return np.asarray(run(jax.random.key(seed)))


def _entries():
    """``(name in the npz, process, sampler, options, seed)`` for every case and process."""
    for i, (label, sampler, options) in enumerate(CASES):
        for j, process_name in enumerate(PROCESSES):
            yield f"{process_name}/{label}", process_name, sampler, options, 100 * i + j


def write() -> None:
    """Draw every entry with the current code and save them to :data:`DATA`."""
    arrays = {name: draw(p, s, o, seed) for name, p, s, o, seed in _entries()}
    DATA.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DATA, **arrays)
    print(f"wrote {len(arrays)} arrays to {DATA} ({DATA.stat().st_size} bytes)")


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA) as data:
        return dict(data)


@pytest.mark.parametrize("label, sampler, options", CASES, ids=[c[0] for c in CASES])
def test_sampler_reproduces_the_pre_refactor_samples(reference, label, sampler, options):
    assert not jax.config.jax_enable_x64, "the fixture is float32"
    for name, process_name, s, o, seed in _entries():
        if name.split("/", 1)[1] != label:
            continue
        got = draw(process_name, s, o, seed)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, reference[name], err_msg=name)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.diffusion.test_sampler_regression --write")
    write()
