"""Parallel-in-time (Picard / ParaDiGMS) sampling against the sequential sampler it solves.

Gaussian data N(0, c^2 I) with its exact denoiser (float64): with a tolerance near 0 the Picard
run reproduces the sequential sampler's samples (same grid, same pre-drawn noise) for ODE, SDE
and multistep samplers and for windows shorter than the trajectory; its rounds never exceed the
sequential steps (plus the final denoising step); tol = 0 reproduces the sequential sampler (one
step per round at worst: a position is accepted only once its guess repeats bit for bit, i.e. solves
the recursion exactly); a loose tolerance needs far fewer rounds at a small error.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.processes import VP
from genjax_models.errors import ConfigError, UnknownNameError
from tests.x64 import float64

DATA_STD = 0.7
SHAPE = (32, 3)


def _denoiser(process):
    def denoise(x, t):
        a, s = process.alpha(t), process.sigma(t)
        gain = a * DATA_STD**2 / (a**2 * DATA_STD**2 + s**2)
        return gain[:, None] * x

    return denoise


@pytest.mark.parametrize(("name", "nfe", "window"), [
    ("euler", 41, 5), ("ancestral", 41, 8), ("dpm-solver++", 31, None),
])
def test_converged_picard_equals_the_sequential_sampler(name, nfe, window):
    with float64():
        process = VP()
        denoise = _denoiser(process)
        key = jax.random.key(3)
        sequential = smp.sample(name, denoise, process, key, SHAPE, nfe)
        run = jax.jit(lambda k: smp.picard(name, denoise, process, k, SHAPE, nfe,
                                           window=window, tol=1e-12))
        result = run(key)
        steps = smp.steps_for_nfe(name, nfe)
        np.testing.assert_allclose(result.samples, sequential, rtol=0, atol=1e-9)
        assert result.steps == steps
        assert 1 <= int(result.rounds) <= steps + 1
        assert int(result.nfe) >= smp.nfe_for_steps(name, steps)


def test_zero_tolerance_is_the_sequential_order_and_a_loose_one_needs_few_rounds():
    with float64():
        process = VP()
        denoise = _denoiser(process)
        key = jax.random.key(0)
        x_init = jax.random.normal(key, SHAPE)
        reference = smp.sample("euler", denoise, process, None, None, 201, x_init=x_init)
        exact = smp.picard("euler", denoise, process, None, None, 201, x_init=x_init, tol=0.0)
        assert int(exact.rounds) <= 200 + 1
        np.testing.assert_allclose(exact.samples, reference, rtol=0, atol=1e-9)
        loose = smp.picard("euler", denoise, process, None, None, 201, x_init=x_init, tol=1e-4)
        error = float(jnp.sqrt(jnp.mean(jnp.square(loose.samples - reference))))
        print(f"tol 1e-4: {int(loose.rounds)} rounds of 201, nfe {int(loose.nfe)}, "
              f"RMS error {error:.2e}")
        assert int(loose.rounds) * 3 <= 201 and error < 1e-3


def test_bad_window_and_tolerance_are_clear_errors():
    process = VP()
    with pytest.raises(ConfigError, match="window must be a positive int"):
        smp.picard("euler", _denoiser(process), process, jax.random.key(0), SHAPE, 11,
                   window=0)
    with pytest.raises(ConfigError, match="tol must be a finite number"):
        smp.picard("euler", _denoiser(process), process, jax.random.key(0), SHAPE, 11,
                   tol=-1.0)
    with pytest.raises(UnknownNameError, match="unknown sampler"):
        smp.picard("nope", _denoiser(process), process, jax.random.key(0), SHAPE, 11)
