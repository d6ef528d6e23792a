"""Planar and radial flows (Rezende & Mohamed, 2015) with numerically exact inverses.

Planar: ``f(z) = z + u_hat * tanh(w^T z + b)`` on vectors ``[*batch, D]``, where
``u_hat = u + (m(w^T u) - w^T u) w / |w|^2``, ``m(a) = -1 + softplus(a)``, so that
``k = w^T u_hat = m(w^T u) > -1`` and f is invertible. Log-det (forward):
``log(1 + k sech^2(w^T z + b))``. Inverse: with ``c = w^T y + b`` the scalar ``a = w^T z + b``
solves ``a + k tanh(a) = c`` (strictly increasing, root bracketed in ``[c - |k|, c + |k|]``);
it is found by a fixed number of safeguarded Newton / bisection steps in ``lax.fori_loop``,
under ``stop_gradient``, followed by one differentiable Newton step, which gives the exact
implicit-function gradient ``da/dtheta = -(dg/dtheta) / g'(a)`` at the root. Then
``z = y - u_hat tanh(a)``.

Radial: ``f(z) = z + beta h(alpha, r) (z - z0)``, ``r = |z - z0|``, ``h = 1 / (alpha + r)``,
with ``alpha = softplus(alpha_raw) > 0`` and ``beta = -alpha + softplus(beta_raw) > -alpha``.
Log-det: ``(D - 1) log(1 + beta h) + log(1 + alpha beta h^2)``. Inverse in closed form:
``rho = |y - z0| = r (1 + beta / (alpha + r))`` gives ``r^2 + (alpha + beta - rho) r -
alpha rho = 0``, whose positive root is taken in a cancellation-free form, and
``z = z0 + (y - z0) (alpha + r) / (alpha + r + beta)``.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
from jax import lax

from genjax_models.errors import ConfigError, ShapeError

PlanarParams = dict[str, jax.Array]
RadialParams = dict[str, jax.Array]


def planar_init(key: jax.Array, d: int, scale: float = 0.1, dtype=jnp.float32) -> PlanarParams:
    """Initialise planar-flow parameters: ``w, u ~ N(0, scale^2 I)``, ``b = 0``.

    Args:
      key: PRNG key.
      d: dimension D.
      scale: standard deviation of ``w`` and ``u``.
      dtype: float dtype.

    Returns:
      ``{"w": [D], "u": [D], "b": []}`` (``u`` unconstrained; see :class:`Planar`).
    """
    if d < 1:
        raise ConfigError(f"planar_init needs d >= 1, got {d}")
    kw, ku = jax.random.split(key)
    return {
        "w": scale * jax.random.normal(kw, (d,), dtype),
        "u": scale * jax.random.normal(ku, (d,), dtype),
        "b": jnp.zeros((), dtype),
    }


def radial_init(key: jax.Array, d: int, scale: float = 1.0, dtype=jnp.float32) -> RadialParams:
    """Initialise radial-flow parameters: ``z0 ~ N(0, scale^2 I)``, ``alpha = beta_raw = 0``.

    Args:
      key: PRNG key.
      d: dimension D.
      scale: standard deviation of the centre ``z0``.
      dtype: float dtype.

    Returns:
      ``{"z0": [D], "alpha_raw": [], "beta_raw": []}`` (unconstrained; see :class:`Radial`).
    """
    if d < 1:
        raise ConfigError(f"radial_init needs d >= 1, got {d}")
    return {
        "z0": scale * jax.random.normal(key, (d,), dtype),
        "alpha_raw": jnp.zeros((), dtype),
        "beta_raw": jnp.zeros((), dtype),
    }


def _sech2(a: jax.Array) -> jax.Array:
    """Return ``sech(a)^2 = 4 e^{-2|a|} / (1 + e^{-2|a|})^2`` without overflow."""
    e = jnp.exp(-2.0 * jnp.abs(a))
    return 4.0 * e / (1.0 + e) ** 2


def _check_vector(name: str, x: jax.Array, d: int) -> None:
    shape = tuple(jnp.shape(x))
    if len(shape) < 1 or shape[-1] != d:
        raise ShapeError(f"{name} expects vectors [*batch, {d}], got shape {shape}")


def _check_params(name: str, d_shape: tuple[int, ...], **scalars: jax.Array) -> int:
    if len(d_shape) != 1 or d_shape[0] < 1:
        raise ShapeError(f"{name} vector parameters must have shape [D], got {d_shape}")
    for key, value in scalars.items():
        if jnp.ndim(value) != 0:
            raise ShapeError(f"{name} parameter {key} must be a scalar, got {jnp.shape(value)}")
    return d_shape[0]


class Planar(distrax.Bijector):
    """Planar flow ``f(z) = z + u_hat tanh(w^T z + b)`` on ``[*batch, D]`` (see module doc).

    Event shape ``[D]``. Log-det (forward) ``log(1 + k sech^2(w^T z + b))`` with
    ``k = w^T u_hat > -1``; inverse log-det its negative at the pre-image. The inverse is
    solved to rounding level by ``num_iterations`` safeguarded Newton steps (float64 residual
    ``|f(f^{-1}(y)) - y| < 1e-13 |y|``; the pre-image error is that times the conditioning
    ``1 / (1 + k sech^2)``) and is differentiable (implicit gradient).

    Args:
      w: ``[D]`` normal of the hyperplane.
      u: ``[D]`` unconstrained direction (``u_hat`` is derived from it).
      b: scalar offset.
      num_iterations: fixed number of Newton / bisection steps of the inverse.
    """

    def __init__(self, w: jax.Array, u: jax.Array, b: jax.Array, num_iterations: int = 60):
        d = _check_params("Planar", tuple(jnp.shape(w)), b=b)
        if tuple(jnp.shape(u)) != (d,):
            raise ShapeError(f"Planar u must have shape ({d},) like w, got {jnp.shape(u)}")
        if num_iterations < 1:
            raise ConfigError(f"num_iterations must be >= 1, got {num_iterations}")
        super().__init__(event_ndims_in=1)
        self._w, self._u, self._b = w, u, b
        self._dim = d
        self._num_iterations = int(num_iterations)

    @classmethod
    def from_params(cls, params: PlanarParams, num_iterations: int = 60) -> Planar:
        """Build from ``{"w", "u", "b"}`` (see :func:`planar_init`)."""
        return cls(params["w"], params["u"], params["b"], num_iterations)

    def u_hat(self) -> jax.Array:
        """Return the constrained ``u_hat`` with ``w^T u_hat = -1 + softplus(w^T u) > -1``."""
        w, u = self._w, self._u
        wu = jnp.dot(w, u)
        norm2 = jnp.dot(w, w)
        positive = norm2 > 0
        coef = jnp.where(
            positive, (jax.nn.softplus(wu) - 1.0 - wu) / jnp.where(positive, norm2, 1), 0
        )
        return u + coef * w

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``x + u_hat tanh(w^T x + b)`` and ``log(1 + k sech^2(w^T x + b))``."""
        _check_vector(self.name, x, self._dim)
        u_hat = self.u_hat()
        k = jnp.dot(self._w, u_hat)
        a = x @ self._w + self._b
        y = x + jnp.tanh(a)[..., None] * u_hat
        return y, jnp.log1p(k * _sech2(a))

    def _solve(self, c: jax.Array, k: jax.Array) -> jax.Array:
        """Solve ``a + k tanh(a) = c`` elementwise (no gradient) by bracketed Newton."""
        c, k = lax.stop_gradient(c), lax.stop_gradient(k)
        k = jnp.broadcast_to(k, c.shape)
        width = jnp.abs(k)
        lo, hi = c - width, c + width
        a0 = jnp.clip(c - k * jnp.tanh(c), lo, hi)

        def step(_, state):
            a, lo, hi = state
            g = a + k * jnp.tanh(a) - c
            lo = jnp.where(g <= 0, a, lo)
            hi = jnp.where(g >= 0, a, hi)
            newton = a - g / (1.0 + k * _sech2(a))
            inside = (newton > lo) & (newton < hi)
            a = jnp.where(g == 0, a, jnp.where(inside, newton, 0.5 * (lo + hi)))
            return a, lo, hi

        a, _, _ = lax.fori_loop(0, self._num_iterations, step, (a0, lo, hi))
        return a

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute the pre-image ``z`` of ``y`` and ``-log(1 + k sech^2(w^T z + b))``."""
        _check_vector(self.name, y, self._dim)
        u_hat = self.u_hat()
        k = jnp.dot(self._w, u_hat)
        c = y @ self._w + self._b
        a = self._solve(c, k)
        # One differentiable Newton step at the (numerically exact) root: value unchanged,
        # gradient = the implicit-function gradient of the root.
        a = a - (a + k * jnp.tanh(a) - c) / (1.0 + k * _sech2(a))
        x = y - jnp.tanh(a)[..., None] * u_hat
        return x, -jnp.log1p(k * _sech2(a))


class Radial(distrax.Bijector):
    """Radial flow ``f(z) = z + beta (z - z0) / (alpha + |z - z0|)`` on ``[*batch, D]``.

    Event shape ``[D]``. ``alpha = softplus(alpha_raw)``, ``beta = -alpha + softplus(beta_raw)``.
    Log-det (forward) ``(D - 1) log(1 + beta h) + log(1 + alpha beta h^2)``,
    ``h = 1 / (alpha + r)``; the inverse is closed-form (a quadratic in r, see module doc).

    Args:
      z0: ``[D]`` centre.
      alpha_raw: scalar, unconstrained.
      beta_raw: scalar, unconstrained.
    """

    def __init__(self, z0: jax.Array, alpha_raw: jax.Array, beta_raw: jax.Array):
        d = _check_params("Radial", tuple(jnp.shape(z0)), alpha_raw=alpha_raw, beta_raw=beta_raw)
        super().__init__(event_ndims_in=1)
        self._z0, self._alpha_raw, self._beta_raw = z0, alpha_raw, beta_raw
        self._dim = d

    @classmethod
    def from_params(cls, params: RadialParams) -> Radial:
        """Build from ``{"z0", "alpha_raw", "beta_raw"}`` (see :func:`radial_init`)."""
        return cls(params["z0"], params["alpha_raw"], params["beta_raw"])

    def alpha_beta(self) -> tuple[jax.Array, jax.Array]:
        """Return the constrained ``(alpha > 0, beta > -alpha)``."""
        alpha = jax.nn.softplus(self._alpha_raw)
        return alpha, -alpha + jax.nn.softplus(self._beta_raw)

    @staticmethod
    def _norm(v: jax.Array) -> jax.Array:
        """Return ``|v|`` over the last axis with a zero (not NaN) gradient at ``v = 0``."""
        sq = jnp.sum(v * v, axis=-1)
        positive = sq > 0
        return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)

    def _log_det(self, r: jax.Array, alpha: jax.Array, gap: jax.Array) -> jax.Array:
        """Return ``(D-1) log(1 + beta h) + log(1 + alpha beta h^2)``, ``gap = alpha + beta``.

        Written as ``(D-1) log((r + gap) / (alpha + r)) + log((r^2 + 2 alpha r + alpha gap) /
        (alpha + r)^2)`` so that beta close to -alpha loses no precision.
        """
        log_ar = jnp.log(alpha + r)
        radial = jnp.log(r + gap) - log_ar
        return (self._dim - 1) * radial + jnp.log(r * r + 2 * alpha * r + alpha * gap) - 2 * log_ar

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute ``x + beta (x - z0) / (alpha + r)`` and the closed-form log-det."""
        _check_vector(self.name, x, self._dim)
        alpha = jax.nn.softplus(self._alpha_raw)
        gap = jax.nn.softplus(self._beta_raw)  # alpha + beta > 0, computed without cancellation
        diff = x - self._z0
        r = self._norm(diff)
        # 1 + beta h = (r + alpha + beta) / (alpha + r).
        y = self._z0 + ((r + gap) / (alpha + r))[..., None] * diff
        return y, self._log_det(r, alpha, gap)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Compute the closed-form pre-image of ``y`` and minus the forward log-det there."""
        _check_vector(self.name, y, self._dim)
        alpha = jax.nn.softplus(self._alpha_raw)
        gap = jax.nn.softplus(self._beta_raw)  # alpha + beta > 0, computed without cancellation
        diff = y - self._z0
        rho = self._norm(diff)
        p = gap - rho
        root = jnp.sqrt(p * p + 4.0 * alpha * rho)
        # Positive root of r^2 + p r - alpha rho = 0, without cancellation for either sign of p.
        r = jnp.where(p > 0, 2.0 * alpha * rho / jnp.where(p > 0, p + root, 1.0), 0.5 * (root - p))
        x = self._z0 + ((alpha + r) / (gap + r))[..., None] * diff
        return x, -self._log_det(r, alpha, gap)
