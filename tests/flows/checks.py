"""The bijector property check every flow test uses (../shared/ORACLES.md, normalising flows).

``check_bijector(bijector, x)`` asserts, per example of a batch ``x [B, *event]``:

1. ``forward_and_log_det`` log-det equals ``slogdet(jax.jacfwd(forward))`` of the flattened map;
2. ``inverse(forward(x)) == x``;
3. the forward log-det at ``x`` equals minus the inverse log-det at ``forward(x)``;
4. ``forward`` / ``inverse`` agree with ``forward_and_log_det`` / ``inverse_and_log_det``;
5. everything also holds under ``jax.jit`` (and the log-dets have shape ``[B]``).

Run it inside ``tests.x64.float64()`` with float64 inputs for tight tolerances.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def _flat_forward(bijector, event_shape):
    def f(flat):
        return bijector.forward(flat.reshape(1, *event_shape)).reshape(-1)

    return f


def check_bijector(bijector, x, *, atol: float = 1e-6, rtol: float = 1e-6) -> None:
    """Assert the change-of-variables properties of ``bijector`` on the batch ``x``.

    Args:
      bijector: a ``distrax.Bijector`` acting on ``[B, *event]`` batches; its output may have
        another event shape of the same size (e.g. a squeeze).
      x: ``[B, *event]`` inputs (float64 recommended).
      atol, rtol: tolerances for every comparison.
    """
    x = jnp.asarray(x)
    event_shape = x.shape[1:]
    d = math.prod(event_shape)
    y, ldj = bijector.forward_and_log_det(x)
    assert y.shape[0] == x.shape[0] and y.size == x.size, (y.shape, x.shape)
    assert ldj.shape == (x.shape[0],), f"log-det shape {ldj.shape}, expected ({x.shape[0]},)"
    assert np.all(np.isfinite(np.asarray(y))) and np.all(np.isfinite(np.asarray(ldj)))

    # 1. log|det J| against autodiff, one example at a time.
    f = _flat_forward(bijector, event_shape)
    for i in range(x.shape[0]):
        jac = jax.jacfwd(f)(x[i].reshape(-1))
        assert jac.shape == (d, d)
        sign, logabs = jnp.linalg.slogdet(jac)
        assert float(sign) != 0.0
        np.testing.assert_allclose(float(ldj[i]), float(logabs), atol=atol * max(1, d), rtol=rtol)

    # 2. inverse(forward(x)) == x, 3. forward ldj == -inverse ldj at y.
    x_back, ildj = bijector.inverse_and_log_det(y)
    np.testing.assert_allclose(np.asarray(x_back), np.asarray(x), atol=atol, rtol=rtol)
    np.testing.assert_allclose(np.asarray(ildj), -np.asarray(ldj), atol=atol * max(1, d), rtol=rtol)

    # 4. single-output methods agree.
    np.testing.assert_allclose(np.asarray(bijector.forward(x)), np.asarray(y), atol=atol, rtol=rtol)
    np.testing.assert_allclose(np.asarray(bijector.inverse(y)), np.asarray(x), atol=atol, rtol=rtol)

    # 5. under jit.
    y_jit, ldj_jit = jax.jit(bijector.forward_and_log_det)(x)
    np.testing.assert_allclose(np.asarray(y_jit), np.asarray(y), atol=atol, rtol=rtol)
    np.testing.assert_allclose(
        np.asarray(ldj_jit), np.asarray(ldj), atol=atol * max(1, d), rtol=rtol
    )
