"""float64 inside a `with` block, on every supported jax version (the package's helper)."""

from genjax_models.precision import float64

__all__ = ["float64"]
