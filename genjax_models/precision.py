"""Numerical precision helpers."""

from __future__ import annotations

import contextlib

import jax


@contextlib.contextmanager
def float64():
    """Enable 64-bit floats for the block.

    Uses ``jax.enable_x64`` on new jax, the config flag on old.
    """
    if hasattr(jax, "enable_x64"):
        with jax.enable_x64(True):
            yield
        return
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
