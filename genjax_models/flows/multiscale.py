"""The multi-scale (factor-out) architecture of RealNVP / Glow as ONE shape-preserving bijector.

Data -> latent (the inverse, density direction) with L levels on ``x [*batch, H, W, C]``:

    h_0 = x
    for l = 1 .. L:
        t_l = flow_l^{-1}(squeeze(h_{l-1}))        # [H/2^l, W/2^l, 4 C_{l-1}],  C_0 = C
        if l < L:  f_l, h_l = t_l[..., :half], t_l[..., half:]     # half = 2 C_{l-1}
        else:      f_L = t_L                       # the last level factors out everything

Factored-out halves ``f_l`` are untouched by later levels. The latent z puts every ``f_l``
back where the data came from, so that z has the data's shape ``[*batch, H, W, C]``:

    z = Z_1,   Z_l = unsqueeze(concat([f_l, Z_{l+1}], axis=-1)),   Z_L = unsqueeze(f_L).

With every flow_l the identity the whole map is the identity (z == x): the layout only
moves each value back to the pixel it came from. The base distribution is N(0, I) over the
whole tensor (all the factored-out latents at once); the forward map (z -> x) runs the
levels in reverse, calling ``flow_l.forward``. Log-det: the sum of the level flows'
log-dets (squeezes and splits are permutations, log-det 0). The shapes shown are for the
default factor f = 2 (in general ``[H/f^l, W/f^l, f^2 C_{l-1}]``, half = ``f^2 C_{l-1} / 2``).

Level flows are arbitrary ``distrax`` bijectors with 3 event axes acting on the level's
event shape ``[H/f^l, W/f^l, f^2 C_{l-1}]`` (``C_l = f^2 C_{l-1} / 2``), e.g. a
``distrax.Chain`` of ActNorm -> Conv1x1 -> couplings. Use :func:`multiscale_level_shapes` to
get those shapes for initialising their parameters, then either pass the built bijectors to
``MultiScale(flows)`` or a builder ``build(level, event_shape) -> bijector`` to
:meth:`MultiScale.from_builder`. Levels have different shapes, so the loop over levels is
unrolled Python (L is small); deep stacks inside a level can scan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import distrax
import jax
import jax.numpy as jnp

from genjax_models.errors import ConfigError, ShapeError
from genjax_models.flows.squeeze import squeeze, unsqueeze


def multiscale_level_shapes(
    event_shape: Sequence[int], num_levels: int, factor: int = 2
) -> list[tuple[int, int, int]]:
    """Return the event shape ``(H_l, W_l, C'_l)`` each level flow acts on.

    Args:
      event_shape: ``(H, W, C)`` of the data.
      num_levels: L >= 1.
      factor: squeeze factor f.

    Returns:
      ``[(H / f^l, W / f^l, f^2 C_{l-1}) for l = 1..L]`` with ``C_0 = C`` and
      ``C_l = f^2 C_{l-1} / 2`` (half the channels continue).
    """
    if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
        raise ConfigError(f"num_levels must be a positive int, got {num_levels!r}")
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"the multi-scale squeeze factor must be an int >= 2, got {factor!r}")
    shape = tuple(int(n) for n in event_shape)
    if len(shape) != 3 or any(n < 1 for n in shape):
        raise ShapeError(f"multi-scale flows need an image event shape (H, W, C), got {shape}")
    h, w, c = shape
    block = factor**num_levels
    if h % block or w % block:
        raise ShapeError(
            f"height {h} and width {w} must be divisible by factor**num_levels = {block} "
            f"for {num_levels} levels of squeeze factor {factor}"
        )
    shapes = []
    for level in range(1, num_levels + 1):
        h, w, c = h // factor, w // factor, c * factor * factor
        shapes.append((h, w, c))
        if level < num_levels:
            if c % 2:
                raise ShapeError(
                    f"level {level} has {c} channels after squeezing, which cannot be split "
                    "in half; use an even channel count or factor"
                )
            c //= 2
    return shapes


class MultiScale(distrax.Bijector):
    """RealNVP / Glow multi-scale flow as one bijector ``[*batch, H, W, C] -> same shape``.

    See the module docstring for the exact layout of z. Forward (z -> x): for l = L .. 1,
    regroup z's factored-out parts, apply ``flow_l.forward`` and un-squeeze; inverse (x -> z):
    squeeze, ``flow_l.inverse``, factor out half the channels, recurse. Log-det: sum of the
    level flows' log-dets, shape ``[*batch]``. Event shape ``[H, W, C]`` with H and W divisible
    by ``factor**L``.

    Args:
      flows: L bijectors (``event_ndims_in == event_ndims_out == 3``); ``flows[l - 1]`` acts
        on ``multiscale_level_shapes(event_shape, L, factor)[l - 1]`` and must preserve it.
      factor: squeeze factor f (default 2).
    """

    def __init__(self, flows: Sequence[distrax.Bijector], factor: int = 2):
        flows = list(flows)
        if not flows:
            raise ConfigError("MultiScale needs at least one level flow")
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
            raise ConfigError(f"the multi-scale squeeze factor must be an int >= 2, got {factor!r}")
        for i, flow in enumerate(flows):
            if not isinstance(flow, distrax.Bijector):
                raise ConfigError(
                    f"level flow {i} must be a distrax.Bijector, got {type(flow).__name__}; "
                    "wrap callables with MultiScale.from_builder"
                )
            if flow.event_ndims_in != 3 or flow.event_ndims_out != 3:
                raise ConfigError(
                    f"level flow {i} ({flow.name}) must act on [H, W, C] events "
                    f"(event_ndims 3 in and out), got {flow.event_ndims_in} -> "
                    f"{flow.event_ndims_out}"
                )
        super().__init__(event_ndims_in=3)
        self._flows = flows
        self._factor = factor

    @classmethod
    def from_builder(
        cls,
        event_shape: Sequence[int],
        num_levels: int,
        build: Callable[[int, tuple[int, int, int]], distrax.Bijector],
        factor: int = 2,
    ) -> MultiScale:
        """Build the level flows with ``build(level, level_event_shape)``, level = 0 .. L-1.

        Args:
          event_shape: ``(H, W, C)`` of the data.
          num_levels: L.
          build: called once per level with the level index and its event shape (see
            :func:`multiscale_level_shapes`); returns that level's bijector, typically closing
            over ``params[level]``.
          factor: squeeze factor f.

        Returns:
          The ``MultiScale`` bijector.
        """
        shapes = multiscale_level_shapes(event_shape, num_levels, factor)
        return cls([build(level, shape) for level, shape in enumerate(shapes)], factor)

    @property
    def flows(self) -> list[distrax.Bijector]:
        """The level flows, first level (finest scale) first."""
        return list(self._flows)

    @property
    def num_levels(self) -> int:
        """L, the number of levels."""
        return len(self._flows)

    def _check(self, x: jax.Array) -> None:
        if jnp.ndim(x) < 3:
            raise ShapeError(
                f"MultiScale expects images [*batch, H, W, C], got shape {tuple(jnp.shape(x))}"
            )
        multiscale_level_shapes(tuple(jnp.shape(x)[-3:]), self.num_levels, self._factor)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map data ``y`` to the latent (same shape) and the summed level log-dets ``[*batch]``."""
        self._check(y)
        h = y
        factored = []
        log_det = 0.0
        for level, flow in enumerate(self._flows):
            t, ldj = flow.inverse_and_log_det(squeeze(h, self._factor))
            log_det = log_det + ldj
            if level < self.num_levels - 1:
                half = t.shape[-1] // 2
                factored.append(t[..., :half])
                h = t[..., half:]
            else:
                factored.append(t)
        z = unsqueeze(factored[-1], self._factor)
        for f in reversed(factored[:-1]):
            z = unsqueeze(jnp.concatenate([f, z], axis=-1), self._factor)
        return z, jnp.broadcast_to(log_det, y.shape[:-3])

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map latent ``x`` to data (same shape) and the summed level log-dets ``[*batch]``."""
        self._check(x)
        # Peel the latent into the per-level factored-out parts (inverse of the final regroup).
        parts = []
        z = x
        for level in range(self.num_levels):
            s = squeeze(z, self._factor)
            if level < self.num_levels - 1:
                half = s.shape[-1] // 2
                parts.append(s[..., :half])
                z = s[..., half:]
            else:
                parts.append(s)
        # Run the levels from coarsest to finest.
        h = parts[-1]
        log_det = 0.0
        for level in range(self.num_levels - 1, -1, -1):
            if level < self.num_levels - 1:
                h = jnp.concatenate([parts[level], h], axis=-1)
            t, ldj = self._flows[level].forward_and_log_det(h)
            log_det = log_det + ldj
            h = unsqueeze(t, self._factor)
        return h, jnp.broadcast_to(log_det, x.shape[:-3])
