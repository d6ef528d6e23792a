"""Invertible linear maps in LU form: ``LULinear`` on vectors, Glow's ``Conv1x1`` on channels.

Parametrisation (Kingma & Dhariwal 2018, section 3.2):

    W = P L (U + diag(s)),    s = sign * exp(log_abs_diag),

with P a fixed permutation matrix, L unit lower-triangular (its strictly-lower entries are
``params["lower"]``), U strictly upper-triangular (``params["upper"]``) and a diagonal whose
log-magnitudes ``params["log_abs_diag"]`` are free. Then ``log|det W| = sum(log_abs_diag)``,
cost O(D) instead of O(D^3), and ``W^{-1} y`` is two triangular solves and an un-permutation.

P and ``sign`` are constants, not parameters: they are constructor arguments (default: the
identity and +1), so the trainable ``params`` pytree holds floats only and ``jax.grad`` /
optax never touch them. :func:`lu_linear_init` starts from a random orthogonal matrix Q; with
``Q = P L U`` (partial pivoting) it returns the LU factors of ``P^T Q diag(sign(diag U))``,
which is also orthogonal, so the default P = I, sign = +1 loses nothing at initialisation.
:func:`lu_linear_from_matrix` gives the exact factors (with P and sign) of any invertible W.
"""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from genjax_models.errors import ConfigError, ShapeError

LUParams = dict[str, jax.Array]


def lu_linear_init(key: jax.Array, d: int, dtype: jnp.dtype = jnp.float32) -> LUParams:
    """Initialise LU parameters whose matrix ``L (U + diag(exp(log_abs_diag)))`` is orthogonal.

    Draws Q from the Haar measure on O(d) (QR of a Gaussian matrix with sign-fixed R),
    factors ``Q = P L U`` with partial pivoting (so ``|L_ij| <= 1``) and returns the factors of
    the orthogonal matrix ``P^T Q diag(sign(diag U)) = L (U diag(sign(diag U)))``, whose
    diagonal is positive: the LU form with P = I and sign = +1.

    Args:
      key: PRNG key.
      d: dimension D (features, or channels for :class:`Conv1x1`).
      dtype: float dtype of the parameters.

    Returns:
      ``{"lower": [D, D], "upper": [D, D], "log_abs_diag": [D]}``; only the strictly lower
      (upper) triangle of ``lower`` (``upper``) is used.
    """
    if d < 1:
        raise ConfigError(f"lu_linear_init needs d >= 1, got {d}")
    g = jax.random.normal(key, (d, d), dtype)
    q, r = jnp.linalg.qr(g)
    q = q * jnp.where(jnp.diag(r) < 0, -1.0, 1.0).astype(dtype)
    _, lower, upper = jax.scipy.linalg.lu(q)
    diag = jnp.diag(upper)
    # Flip the columns whose pivot is negative: U diag(sign) has a positive diagonal.
    upper = upper * jnp.sign(diag)[None, :]
    return {
        "lower": jnp.tril(lower, -1),
        "upper": jnp.triu(upper, 1),
        "log_abs_diag": jnp.log(jnp.abs(diag)),
    }


def lu_linear_from_matrix(w: jax.Array) -> tuple[LUParams, np.ndarray, np.ndarray]:
    """Factor an invertible ``w`` exactly as ``P L (U + diag(sign * exp(log_abs_diag)))``.

    Args:
      w: ``[D, D]`` invertible matrix (concrete, not traced).

    Returns:
      ``(params, permutation, sign)``: the trainable parameters, the ``[D]`` int permutation
      (``(P v)_i = v[permutation[i]]``) and the ``[D]`` signs, ready for
      ``LULinear(params, permutation=permutation, sign=sign)``.
    """
    w = jnp.asarray(w)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ShapeError(f"expected a square [D, D] matrix, got shape {tuple(w.shape)}")
    p, lower, upper = jax.scipy.linalg.lu(w)
    diag = jnp.diag(upper)
    if not bool(jnp.all(diag != 0)):
        raise ConfigError("lu_linear_from_matrix needs an invertible matrix (a zero pivot)")
    # w = p @ l @ u with p a permutation matrix: (p v)_i = v[perm[i]], perm[i] = argmax_j p[i, j].
    permutation = np.asarray(jnp.argmax(p, axis=1), np.int32)
    params = {
        "lower": jnp.tril(lower, -1),
        "upper": jnp.triu(upper, 1),
        "log_abs_diag": jnp.log(jnp.abs(diag)),
    }
    return params, permutation, np.asarray(jnp.sign(diag))


class LULinear(distrax.Bijector):
    """Invertible linear map ``y = W x`` on the last axis, ``W = P L (U + diag(s))``.

    Map: ``y[..., i] = sum_j W[i, j] x[..., j]`` on ``x [*batch, *event]`` whose last event
    axis has size D; with ``event_ndims = k`` the map acts on the last axis of every position
    of the other k - 1 event axes (``k = 3``: every pixel of ``[B, H, W, C]``, see
    :class:`Conv1x1`). Log-det: ``N * sum(log_abs_diag)`` per example with N the number of
    positions (product of the event axes but the last; N = 1 for vectors). Inverse:
    ``x = (U + diag(s))^{-1} L^{-1} P^T y`` by two triangular solves.

    Args:
      params: ``{"lower", "upper", "log_abs_diag"}`` (see :func:`lu_linear_init`).
      permutation: fixed ``[D]`` permutation, ``(P v)_i = v[permutation[i]]``; None = identity.
      sign: fixed ``[D]`` signs of the diagonal; None = all +1.
      event_ndims: number of event axes (1 for vectors).
    """

    def __init__(
        self,
        params: LUParams,
        permutation: jax.Array | np.ndarray | None = None,
        sign: jax.Array | np.ndarray | None = None,
        event_ndims: int = 1,
    ):
        if event_ndims < 1:
            raise ConfigError(f"{type(self).__name__} needs event_ndims >= 1, got {event_ndims}")
        missing = {"lower", "upper", "log_abs_diag"} - set(params)
        if missing:
            raise ConfigError(f"LU params are missing {sorted(missing)}; use lu_linear_init")
        log_abs_diag = params["log_abs_diag"]
        d = int(jnp.shape(log_abs_diag)[-1]) if jnp.ndim(log_abs_diag) == 1 else -1
        for name, shape in (("lower", (d, d)), ("upper", (d, d)), ("log_abs_diag", (d,))):
            if d < 1 or tuple(jnp.shape(params[name])) != shape:
                raise ShapeError(
                    f"LU params[{name!r}] must have shape {shape} with D = len(log_abs_diag), "
                    f"got {tuple(jnp.shape(params[name]))}"
                )
        super().__init__(event_ndims_in=event_ndims, is_constant_jacobian=True)
        self._lower = params["lower"]
        self._upper = params["upper"]
        self._log_abs_diag = log_abs_diag
        self._dim = d
        if permutation is None:
            self._perm = None
            self._inverse_perm = None
        else:
            perm = np.asarray(permutation)
            if perm.shape != (d,) or not np.array_equal(np.sort(perm), np.arange(d)):
                raise ConfigError(f"permutation must be a permutation of 0..{d - 1}")
            self._perm = jnp.asarray(perm, jnp.int32)
            self._inverse_perm = jnp.asarray(np.argsort(perm), jnp.int32)
        if sign is not None and tuple(jnp.shape(sign)) != (d,):
            raise ShapeError(f"sign must have shape ({d},), got {tuple(jnp.shape(sign))}")
        self._sign = None if sign is None else jnp.asarray(sign)

    # ------------------------------------------------------------------ pieces
    @property
    def dim(self) -> int:
        """D, the size of the transformed axis."""
        return self._dim

    def _diag(self) -> jax.Array:
        s = jnp.exp(self._log_abs_diag)
        return s if self._sign is None else self._sign.astype(s.dtype) * s

    def _factors(self) -> tuple[jax.Array, jax.Array]:
        eye = jnp.eye(self._dim, dtype=self._lower.dtype)
        lower = jnp.tril(self._lower, -1) + eye
        upper = jnp.triu(self._upper, 1) + jnp.diag(self._diag())
        return lower, upper

    def matrix(self) -> jax.Array:
        """Return the dense ``[D, D]`` matrix W = P L (U + diag(s))."""
        lower, upper = self._factors()
        w = lower @ upper
        return w if self._perm is None else w[self._perm]

    def _check(self, x: jax.Array) -> None:
        shape = tuple(jnp.shape(x))
        if len(shape) < self.event_ndims_in or shape[-1] != self._dim:
            raise ShapeError(
                f"{self.name} expects inputs [*batch, *event] with {self.event_ndims_in} event "
                f"axes and last axis of size {self._dim}, got shape {shape}"
            )

    def _log_det(self, x: jax.Array) -> jax.Array:
        positions = math.prod(x.shape[x.ndim - self.event_ndims_in : -1])
        batch_shape = x.shape[: x.ndim - self.event_ndims_in]
        ldj = positions * jnp.sum(self._log_abs_diag)
        return jnp.broadcast_to(ldj.astype(jnp.result_type(x, ldj)), batch_shape)

    # --------------------------------------------------------------- bijector
    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``y = W x`` on the last axis and ``N * sum(log_abs_diag)`` (batch shape)."""
        self._check(x)
        y = jnp.einsum("ij,...j->...i", self.matrix().astype(jnp.result_type(x, self._lower)), x)
        return y, self._log_det(x)

    def inverse_matrix(self) -> jax.Array:
        """Return W^{-1} = (U + diag(s))^{-1} L^{-1} P^T.

        Computed by two triangular solves on the identity.
        """
        lower, upper = self._factors()
        eye = jnp.eye(self._dim, dtype=lower.dtype)
        inv = solve_triangular(
            upper, solve_triangular(lower, eye, lower=True, unit_diagonal=True), lower=False
        )
        # x = (LU)^{-1} y[inverse_perm], i.e. column perm[k] of (LU)^{-1} multiplies y[k].
        return inv if self._perm is None else inv[:, self._perm]

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``x = W^{-1} y`` and ``-N * sum(log_abs_diag)``.

        W^{-1} is formed once per call from the triangular factors (O(D^3), no general inverse)
        and applied as a matmul: batched triangular solves are several times slower on CPU.
        """
        self._check(y)
        inv = self.inverse_matrix().astype(jnp.result_type(y, self._lower))
        return jnp.einsum("ij,...j->...i", inv, y), -self._log_det(y)


class Conv1x1(LULinear):
    """Glow's invertible 1x1 convolution: ``LULinear`` on the channels of every pixel.

    Map: ``y[b, h, w, :] = W x[b, h, w, :]`` on ``[B, H, W, C]`` (channels last), with W in LU
    form (see :class:`LULinear`). Event shape ``[H, W, C]`` (``event_ndims = 3``); log-det
    ``H * W * sum(log_abs_diag)`` per example; inverse by triangular solves.

    Args:
      params: ``{"lower", "upper", "log_abs_diag"}`` from ``lu_linear_init(key, C)``.
      permutation: fixed ``[C]`` channel permutation (None = identity).
      sign: fixed ``[C]`` signs (None = +1).
    """

    def __init__(
        self,
        params: LUParams,
        permutation: jax.Array | np.ndarray | None = None,
        sign: jax.Array | np.ndarray | None = None,
    ):
        super().__init__(params, permutation=permutation, sign=sign, event_ndims=3)
