"""The small categorical problem the estimator tests share: N = 3 variables, K = 3 classes.

f(z) = 5 + c . tanh(A vec(z) + b), a fixed random smooth function of the one-hot z (the
offset 5 is the kind of non-zero mean a baseline removes). On one-hot z it is a table of
K^N = 27 values; the relaxed estimators evaluate the same formula on the simplex, where it is
*not* multilinear (for a multilinear f, straight-through would be exactly unbiased).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax_models.discrete import enumerate_one_hot, exact_expectation

N, K = 3, 3


class Toy:
    """Logits, f and the exact gradient of E_q[f(z)] by enumeration (build under float64)."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.logits = jnp.asarray(rng.normal(size=(N, K)))
        self.a = jnp.asarray(rng.normal(size=(4, N * K)))
        self.b = jnp.asarray(rng.normal(size=4))
        self.c = jnp.asarray(2.0 * rng.normal(size=4))
        self.values = jax.vmap(self.f)(enumerate_one_hot(N, K))  # [27]
        self.mean_f = exact_expectation(self.logits, self.values)
        self.exact_grad = jax.grad(lambda lg: exact_expectation(lg, self.values))(self.logits)

    def f(self, z: jax.Array) -> jax.Array:
        return 5.0 + self.c @ jnp.tanh(self.a @ z.reshape(-1) + self.b)


def moments(grads: jax.Array) -> tuple[np.ndarray, np.ndarray, float]:
    """Return (mean [N*K], standard error [N*K], total variance trace) of per-draw gradients."""
    g = np.asarray(grads).reshape(grads.shape[0], -1)
    return g.mean(0), g.std(0, ddof=1) / math.sqrt(g.shape[0]), float(g.var(0, ddof=1).sum())
