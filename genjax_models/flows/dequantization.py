"""Uniform and variational dequantisation of integer data (Theis et al. 2016; Ho et al. 2019).

Integer data ``x in {0, .., L-1}^D`` is modelled through a continuous density p on the unit
cube via ``y = (x + u) / L``, ``u in [0, 1)^D``. The discrete probability of x is the mass of
its bin, ``P(x) = int_{bin(x)} p(y) dy``, and for any density q(y | x) on the bin Jensen's
inequality gives, in nats,

    log P(x) >= E_{q(y|x)}[log p(y) - log q(y | x)].

Both dequantisers return ``(y, log_q)`` with ``log_q = log q(y | x)``, the density of y in
y-space (the space of p), so the per-example bound is always ``log_p(y) - log_q``:

- uniform: ``u ~ U[0, 1)^D``, ``q(y | x) = L^D`` on the bin, ``log_q = D log L`` and
  ``log P(x) >= E_u[log p((x + u) / L)] - D log L``;
- variational (Flow++): ``u = sigmoid(g(eps; x))``, ``eps ~ N(0, I_D)``, g a conditional flow,
  ``log_q = log q(u | x) + D log L`` and
  ``log P(x) >= E_q[log p((x + u) / L) - D log L - log q(u | x)]``.

If the model density lives on another scale (e.g. ``y' = 2 y - 1`` or a :class:`Logit`
pre-processing), add that map's log-det to ``log_p``; bits/dim = -bound / (D ln 2).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.nn.mlp import MLP

Params = dict


def _float_dtype() -> jnp.dtype:
    return jnp.result_type(float)  # float64 under x64, else float32


def _check_levels(num_levels: int) -> int:
    if isinstance(num_levels, bool) or not isinstance(num_levels, numbers.Integral):
        raise ConfigError(f"num_levels must be an int >= 2, got {num_levels!r}")
    if num_levels < 2:
        raise ConfigError(f"num_levels must be an int >= 2, got {num_levels!r}")
    return int(num_levels)


def uniform_dequantize(
    key: jax.Array, x_int: jax.Array, num_levels: int
) -> tuple[jax.Array, jax.Array]:
    """Dequantise with uniform noise: ``y = (x + u) / L``, ``u ~ U[0, 1)^D``.

    Args:
      key: PRNG key.
      x_int: ``[B, *event]`` integer-valued data in ``{0, .., L-1}`` (any numeric dtype).
      num_levels: L.

    Returns:
      ``(y, log_q)``: ``y [B, *event]`` in ``[0, 1)`` (default float dtype) and
      ``log_q = D log L`` per example ``[B]``, the log-density of y given x; the bound is
      ``log P(x) >= E[log p(y)] - D log L``.
    """
    levels = _check_levels(num_levels)
    x_int = jnp.asarray(x_int)
    if x_int.ndim < 1:
        raise ShapeError(f"expected a batch [B, *event], got shape {tuple(x_int.shape)}")
    dtype = _float_dtype()
    u = jax.random.uniform(key, x_int.shape, dtype)
    y = (x_int.astype(dtype) + u) / levels
    d = math.prod(x_int.shape[1:])
    return y, jnp.full(x_int.shape[:1], d * math.log(levels), dtype)


class _DequantFlow(nn.Module):
    """Conditional flow eps -> v on flat ``[B, D]``, conditioned on ``context [B, D]``.

    ``v_0 = mu(ctx) + exp(log_sigma(ctx)) * eps``, then K affine couplings
    ``v_k = m v + (1 - m) (v exp(tanh(s)) + t)`` with ``(s, t) = MLP_k([m v, ctx])`` and the
    mask m alternating between even and odd flat indices. Output MLPs start at zero, so the
    initial map is ``v = eps``.
    """

    dim: int
    hidden: tuple[int, ...]
    num_couplings: int

    def setup(self):
        self.base = MLP(self.hidden, 2 * self.dim, zero_init_output=True)
        self.couplings = [
            MLP(self.hidden, 2 * self.dim, zero_init_output=True) for _ in range(self.num_couplings)
        ]

    def _mask(self, k: int, dtype) -> jax.Array:
        return (jnp.arange(self.dim) % 2 == k % 2).astype(dtype)

    def forward(self, eps: jax.Array, ctx: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return ``(v, log|det dv/deps|)`` for ``eps [B, D]``."""
        mu, log_sigma = jnp.split(self.base(ctx), 2, axis=-1)
        v = mu + jnp.exp(log_sigma) * eps
        log_det = jnp.sum(log_sigma, axis=-1)
        for k, net in enumerate(self.couplings):
            m = self._mask(k, v.dtype)
            s, t = jnp.split(net(jnp.concatenate([m * v, ctx], axis=-1)), 2, axis=-1)
            s = (1 - m) * jnp.tanh(s)
            v = m * v + (1 - m) * (v * jnp.exp(s) + t)
            log_det = log_det + jnp.sum(s, axis=-1)
        return v, log_det

    def inverse(self, v: jax.Array, ctx: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return ``(eps, log|det dv/deps|)`` for ``v [B, D]`` (the forward log-det)."""
        log_det = jnp.zeros(v.shape[:-1], v.dtype)
        for k in reversed(range(self.num_couplings)):
            m = self._mask(k, v.dtype)
            s, t = jnp.split(self.couplings[k](jnp.concatenate([m * v, ctx], axis=-1)), 2, axis=-1)
            s = (1 - m) * jnp.tanh(s)
            v = m * v + (1 - m) * (v - t) * jnp.exp(-s)
            log_det = log_det + jnp.sum(s, axis=-1)
        mu, log_sigma = jnp.split(self.base(ctx), 2, axis=-1)
        eps = (v - mu) * jnp.exp(-log_sigma)
        return eps, log_det + jnp.sum(log_sigma, axis=-1)

    def __call__(self, eps: jax.Array, ctx: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.forward(eps, ctx)


def _log_normal(eps: jax.Array) -> jax.Array:
    return -0.5 * jnp.sum(eps * eps, axis=-1) - 0.5 * eps.shape[-1] * math.log(2 * math.pi)


def _log_sigmoid_jacobian(v: jax.Array) -> jax.Array:
    """Return ``sum_i log sigmoid'(v_i) = sum_i [log sigmoid(v_i) + log sigmoid(-v_i)]``."""
    return jnp.sum(jax.nn.log_sigmoid(v) + jax.nn.log_sigmoid(-v), axis=-1)


@dataclasses.dataclass(frozen=True)
class VariationalDequantizer:
    """Flow++ variational dequantiser ``q(u | x)``: ``u = sigmoid(g(eps; x))``, eps ~ N(0, I).

    g is a conditional flow on the flattened event (a conditional diagonal affine map followed
    by ``num_couplings`` affine couplings, each from a small MLP of the context
    ``2 x / (L - 1) - 1``), so ``log q(u | x) = log N(eps; 0, I) - log|det dg/deps|
    - sum log sigmoid'(g)`` exactly. Params are a plain Flax pytree to train jointly with
    the flow by maximising ``log p(y) - log_q``.

    Attributes:
      event_shape: shape of one example; data batches are ``[B, *event_shape]``.
      num_levels: L, the number of integer levels.
      hidden: widths of the conditioner MLPs' hidden layers.
      num_couplings: number of conditional affine couplings after the base affine map.
    """

    event_shape: tuple[int, ...]
    num_levels: int
    hidden: tuple[int, ...] = (64, 64)
    num_couplings: int = 2

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(n) for n in self.event_shape)
            hidden = tuple(int(n) for n in self.hidden)
        except TypeError as err:
            raise ConfigError(
                f"event_shape and hidden must be sequences of ints, got {self.event_shape!r} "
                f"and {self.hidden!r}"
            ) from err
        if not shape or any(n < 1 for n in shape) or any(n < 1 for n in hidden):
            raise ConfigError(
                f"event_shape and hidden need positive ints, got {shape} and {hidden}"
            )
        if self.num_couplings < 0:
            raise ConfigError(f"num_couplings must be >= 0, got {self.num_couplings}")
        object.__setattr__(self, "event_shape", shape)
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "num_levels", _check_levels(self.num_levels))

    @property
    def num_dims(self) -> int:
        """D, the number of scalar dimensions of one example."""
        return math.prod(self.event_shape)

    def _net(self) -> _DequantFlow:
        return _DequantFlow(self.num_dims, self.hidden, self.num_couplings)

    def _context(self, x_int: jax.Array) -> jax.Array:
        x_int = jnp.asarray(x_int)
        if x_int.ndim != len(self.event_shape) + 1 or tuple(x_int.shape[1:]) != self.event_shape:
            raise ShapeError(
                f"expected x_int of shape [B, {', '.join(map(str, self.event_shape))}] "
                f"(i.e. [B, *event_shape]), got {tuple(x_int.shape)}"
            )
        flat = x_int.reshape(x_int.shape[0], self.num_dims).astype(_float_dtype())
        return 2.0 * flat / (self.num_levels - 1) - 1.0

    def init(self, key: jax.Array, x_int: jax.Array) -> Params:
        """Initialise the conditioner parameters; the initial q is ``u = sigmoid(eps)``.

        Args:
          key: PRNG key.
          x_int: ``[B, *event_shape]`` example batch (values unused).

        Returns:
          The Flax ``params`` collection.
        """
        ctx = self._context(x_int)
        return self._net().init(key, jnp.zeros_like(ctx), ctx)["params"]

    def noise_to_u(
        self, params: Params, x_int: jax.Array, eps: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Map standard-normal noise to dequantisation noise, with its exact log-density.

        Args:
          params: dequantiser parameters.
          x_int: ``[B, *event_shape]`` integer data.
          eps: ``[B, *event_shape]`` noise.

        Returns:
          ``(u, log_q_u)``: ``u [B, *event_shape]`` in (0, 1) and ``log q(u | x)`` ``[B]``.
        """
        ctx = self._context(x_int)
        eps_flat = jnp.reshape(eps, ctx.shape).astype(ctx.dtype)
        v, log_det = self._net().apply({"params": params}, eps_flat, ctx, method="forward")
        log_q = _log_normal(eps_flat) - log_det - _log_sigmoid_jacobian(v)
        return jax.nn.sigmoid(v).reshape(jnp.shape(x_int)), log_q

    def sample_and_log_q(
        self, params: Params, key: jax.Array, x_int: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Draw ``y = (x + u) / L`` with ``u ~ q(u | x)`` and return ``log q(y | x)``.

        Args:
          params: dequantiser parameters.
          key: PRNG key.
          x_int: ``[B, *event_shape]`` integer data in ``{0, .., L-1}``.

        Returns:
          ``(y, log_q)``: ``y [B, *event_shape]`` inside x's bin and
          ``log_q = log q(u | x) + D log L`` ``[B]``; the bound is ``log p(y) - log_q``.
        """
        ctx = self._context(x_int)
        eps = jax.random.normal(key, jnp.shape(x_int), ctx.dtype)
        u, log_q_u = self.noise_to_u(params, x_int, eps)
        y = (jnp.asarray(x_int).astype(ctx.dtype) + u) / self.num_levels
        return y, log_q_u + self.num_dims * math.log(self.num_levels)

    def log_q_u(self, params: Params, x_int: jax.Array, u: jax.Array) -> jax.Array:
        """Evaluate ``log q(u | x)`` for ``u [B, *event_shape]`` in (0, 1) (exact inverse flow).

        Args:
          params: dequantiser parameters.
          x_int: ``[B, *event_shape]`` integer data.
          u: ``[B, *event_shape]`` noise values in (0, 1).

        Returns:
          ``[B]`` log-densities on the unit cube.
        """
        ctx = self._context(x_int)
        u_flat = jnp.reshape(u, ctx.shape).astype(ctx.dtype)
        v = jnp.log(u_flat) - jnp.log1p(-u_flat)
        eps, log_det = self._net().apply({"params": params}, v, ctx, method="inverse")
        return _log_normal(eps) - log_det - _log_sigmoid_jacobian(v)
