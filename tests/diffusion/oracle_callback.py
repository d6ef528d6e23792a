"""Shared helpers of the sampler tests: the oracle's denoiser behind a host callback, float64."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from genjax_models.diffusion import oracle


def host_denoiser(mixture: oracle.GaussianMixture, process):
    """Return ``(denoise, compiled)``: the mixture's exact denoiser behind a host callback.

    Inlined, the oracle dominates every sampler's compile time (~2 s per NFE value); behind the
    callback it compiles once, the numbers are the same, and they do not depend on how XLA fuses
    the sampler around it. ``compiled`` is the jitted oracle itself.
    """
    compiled = jax.jit(functools.partial(oracle.denoiser, mixture, process))

    def host(x, t):
        return np.asarray(compiled(x, t))

    def denoise(x, t):
        out = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.pure_callback(host, out, x, t, vmap_method="sequential")

    return denoise, compiled


@pytest.fixture(autouse=True, scope="module")
def x64_on_every_thread():
    """float64 for the whole module that imports this fixture, on every thread.

    The oracle runs behind a host callback, which XLA may call from a worker thread; the
    thread-local ``tests.x64.float64()`` context would not reach it there, and its float64
    arguments would arrive cast to float32. So the global flag is set and restored.
    """
    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
