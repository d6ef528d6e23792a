"""The Gaussian mixture model, fitted by EM (in ``init``) and fine-tuned by gradient steps.

Model over flat examples x in R^D (D = prod(event_shape); images are flattened):

    p(x) = sum_{k=1..K} pi_k N(x; mu_k, Sigma_k),    pi = softmax(logits),

with ``Sigma_k = L_k L_k^T`` (``covariance="full"``, L_k lower triangular with a positive
diagonal) or ``Sigma_k = diag(s_k^2)`` (``covariance="diag"``). Parameters are unconstrained
for gradient training:

- ``logits [K]``, ``means [K, D]``;
- full: ``scale_raw [K, D, D]``, L_k = tril(scale_raw_k, -1) + diag(exp(diag(scale_raw_k)))
  (the upper triangle is unused);
- diag: ``log_scales [K, D]``, s_k = exp(log_scales_k).

``log_prob`` is exact (logsumexp over components). The M step, with N_k = sum_n r_nk,

    pi_k = N_k / N,  mu_k = sum_n r_nk x_n / N_k,
    Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + min_variance I

(the diagonal only for ``"diag"``), is scikit-learn's (``reg_covar`` = ``min_variance``, also
``N_k + 10 eps``), so from the same initialisation both take the same EM path.

**Missing data.** Marginalising dimensions keeps a mixture: p(x_o) = sum_k pi_k
N(x_o; mu_k,o, Sigma_k,oo), and p(x_m | x_o, k) = N(mu_k,m + Sigma_k,mo Sigma_k,oo^{-1}
(x_o - mu_k,o), Sigma_k,mm - Sigma_k,mo Sigma_k,oo^{-1} Sigma_k,om) (the Schur complement). With
a per-example mask and static shapes this is done by one stable permutation per example that
puts the observed dimensions first: the Cholesky factor of the permuted covariance,
``C = [[C_oo, 0], [C_mo, C_mm]]``, has C_oo = chol(Sigma_oo) and C_mm = chol(Schur complement).
So with z_o = C_oo^{-1} (x_o - mu_o) (the first n_o entries of a full triangular solve, which
never see the missing entries), ``log N(x_o) = -|z_o|^2 / 2 - sum log diag C_oo -
(n_o / 2) log 2 pi``, and ``mu + C [z_o; eps]`` with eps ~ N(0, I) is an exact draw of the
missing entries given the observed ones (and reproduces x_o on the observed ones).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Float, Int

from genjax_models.errors import ConfigError
from genjax_models.latent.mixture import (
    MixtureModel,
    assign,
    em_step,
    fit_em,
    kmeans_plus_plus,
    responsibilities,
    weights_from_counts,
)
from genjax_models.model import LogProbInfo, Params, RunRecipe

COVARIANCES: tuple[str, ...] = ("diag", "full")
_LOG_2PI = math.log(2 * math.pi)


def scale_tril(scale_raw: Float[Array, "k d d"]) -> Float[Array, "k d d"]:
    """Return L = tril(raw, -1) + diag(exp(diag(raw))), the Cholesky factors ``[K, D, D]``."""
    diag = jnp.diagonal(scale_raw, axis1=-2, axis2=-1)
    return jnp.tril(scale_raw, -1) + jnp.exp(diag)[..., None] * jnp.eye(scale_raw.shape[-1])


def scale_raw_from_tril(chol: Float[Array, "k d d"]) -> Float[Array, "k d d"]:
    """Invert :func:`scale_tril`: the unconstrained ``scale_raw`` of Cholesky factors."""
    diag = jnp.diagonal(chol, axis1=-2, axis2=-1)
    return jnp.tril(chol, -1) + jnp.log(diag)[..., None] * jnp.eye(chol.shape[-1])


@dataclasses.dataclass(frozen=True)
class GaussianMixture(MixtureModel):
    """A K-component Gaussian mixture with full or diagonal covariances (module docstring).

    Attributes:
      covariance: ``"full"`` (Sigma_k = L_k L_k^T) or ``"diag"`` (Sigma_k = diag(s_k^2)).
      min_variance: variance floor added to every M-step covariance (scikit-learn's
        ``reg_covar``); 0 is plain EM, which can produce singular covariances.
    """

    covariance: str = "full"
    min_variance: float = 1e-6

    name: ClassVar[str] = "gmm"
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="eight-gaussians",
        train={
            "steps": 500,
            "batch_size": 2048,
            "lr": 1e-3,
            "log_every": 100,
            "checkpoint_every": 500,
            "steps_per_call": 100,
        },
        expected="a few seconds on a 2-core CPU: EM in init, then 500 Adam steps; "
        "test NLL ~1.707 nats (exact; data entropy 1.698)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.covariance not in COVARIANCES:
            raise ConfigError(
                f"covariance must be one of {', '.join(COVARIANCES)}, got {self.covariance!r}"
            )
        if not (self.min_variance >= 0 and math.isfinite(self.min_variance)):
            raise ConfigError(f"min_variance must be >= 0 and finite, got {self.min_variance!r}")

    # ------------------------------------------------------------------ pieces
    def covariances(self, params: Params) -> Float[Array, "k d d"]:
        """Return Sigma_k ``[K, D, D]`` (diagonal matrices for ``"diag"``)."""
        if self.covariance == "diag":
            return jax.vmap(jnp.diag)(jnp.exp(2 * params["log_scales"]))
        chol = scale_tril(params["scale_raw"])
        return chol @ jnp.swapaxes(chol, -1, -2)

    def weights(self, params: Params) -> Float[Array, " k"]:
        """Return the mixture weights pi ``[K]``."""
        return jax.nn.softmax(params["logits"])

    def component_log_likelihood(
        self, params: Params, x: Float[Array, "b d"], observed: jax.Array | None
    ) -> Float[Array, "b k"]:
        """Return log N(x_o; mu_k,o, Sigma_k,oo) ``[B, K]`` (all of x if ``observed`` is None)."""
        means = params["means"]
        if self.covariance == "diag":
            log_scales = params["log_scales"]
            z = (x[:, None, :] - means) * jnp.exp(-log_scales)
            terms = -0.5 * (z**2 + _LOG_2PI) - log_scales
            if observed is not None:
                terms = jnp.where(observed[:, None, :], terms, 0.0)
            return terms.sum(axis=-1)
        if observed is None:
            raw = params["scale_raw"]
            chol = scale_tril(raw)
            # z = L_k^{-1} (x - mu_k) through the K small inverses (one solve against I each:
            # far faster on CPU than a triangular solve with B right-hand sides).
            eye = jnp.broadcast_to(jnp.eye(self.num_dims, dtype=chol.dtype), chol.shape)
            inv = solve_triangular(chol, eye, lower=True)  # [K, D, D]
            z = jnp.einsum("kij,bkj->bki", inv, x[:, None, :] - means)  # [B, K, D]
            log_det = jnp.diagonal(raw, axis1=-2, axis2=-1).sum(-1)  # sum log diag L_k
            return -0.5 * jnp.sum(z**2, -1) - log_det - 0.5 * self.num_dims * _LOG_2PI
        return self.observed_parts(params, x, observed)[0]

    def observed_parts(
        self, params: Params, x: Float[Array, "b d"], observed: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
        """Return the per-example pieces of the observed marginal and missing conditional.

        For each example the dimensions are stably permuted, observed first (``perm [B, D]``,
        ``seen [B, D]`` the permuted mask); ``chol [B, K, D, D]`` is the Cholesky factor of
        each permuted Sigma_k and ``z [B, K, D]`` the whitened observed residual (zero on the
        missing positions). ``log_lik [B, K]`` is log N(x_o; mu_k,o, Sigma_k,oo).
        """
        cov = self.covariances(params)
        means = params["means"]

        def one(x_b: jax.Array, seen_b: jax.Array) -> tuple:
            perm = jnp.argsort(jnp.logical_not(seen_b).astype(jnp.int32), stable=True)
            seen = seen_b[perm]
            chol = jnp.linalg.cholesky(cov[:, perm][:, :, perm])  # [K, D, D]
            resid = jnp.where(seen, (x_b - means)[:, perm], 0.0)  # [K, D]
            z = jax.vmap(lambda c, r: solve_triangular(c, r, lower=True))(chol, resid)
            z = jnp.where(seen, z, 0.0)
            log_diag = jnp.where(seen, jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), 0.0)
            num_seen = jnp.sum(seen)
            log_lik = -0.5 * jnp.sum(z**2, -1) - log_diag.sum(-1) - 0.5 * num_seen * _LOG_2PI
            return log_lik, chol, z, perm, seen

        return jax.vmap(one)(x, observed)

    def m_step(self, x: Float[Array, "n d"], resp: Float[Array, "n k"]) -> Params:
        """Return the closed-form M-step parameters (module docstring) for flat ``x``.

        Both scatters are matrix products over n (measured at N = 1e5, K = 10 against one
        ``[N, K, D]`` einsum: 17x faster for diag at D = 64, 1.4-1.8x for full):

        - diag: sum_n r_nk (x_nd - mu_kd)^2 / N_k = sum_n r_nk x_nd^2 / N_k - mu_kd^2 on x
          centred at its mean (shift-invariant; keeps the cancellation small), floored at 0
          before ``min_variance`` is added;
        - full: per component (d_k^T diag(r_k) d_k) / N_k with the residuals d_k = x - mu_k,
          positive semi-definite by construction.
        """
        counts = resp.sum(axis=0) + 10 * jnp.finfo(x.dtype).eps
        params = {"logits": weights_from_counts(resp.sum(axis=0))}
        if self.covariance == "diag":
            centre = jnp.mean(x, axis=0)
            xc = x - centre
            means_c = (resp.T @ xc) / counts[:, None]
            second = (resp.T @ (xc * xc)) / counts[:, None]
            var = jnp.maximum(second - means_c**2, 0.0) + self.min_variance
            params["means"] = means_c + centre
            params["log_scales"] = 0.5 * jnp.log(var)
            return params
        means = (resp.T @ x) / counts[:, None]

        def scatter(r_k: jax.Array, mean_k: jax.Array) -> jax.Array:
            resid = x - mean_k  # [N, D]
            return (resid * r_k[:, None]).T @ resid

        cov = jax.vmap(scatter, in_axes=(1, 0))(resp, means) / counts[:, None, None]
        params["means"] = means
        cov = cov + self.min_variance * jnp.eye(self.num_dims, dtype=x.dtype)
        params["scale_raw"] = scale_raw_from_tril(jnp.linalg.cholesky(cov))
        return params

    def draw_given(
        self,
        params: Params,
        key: jax.Array,
        x: Float[Array, "b d"],
        observed: jax.Array,
        comps: Int[Array, "n b"],
    ) -> Float[Array, "n b d"]:
        """Draw x_m ~ N(conditional mean, Schur complement) of component ``comps[i, b]``."""
        means = params["means"]
        eps = jax.random.normal(key, (*comps.shape, self.num_dims), x.dtype)
        if self.covariance == "diag":
            return means[comps] + jnp.exp(params["log_scales"])[comps] * eps
        _, chol, z, perm, seen = self.observed_parts(params, x, observed)

        def one(chol_b, z_b, perm_b, seen_b, comps_b, eps_b):  # one example, n draws
            w = jnp.where(seen_b, z_b[comps_b], eps_b)  # [n, D]
            drawn = means[comps_b][:, perm_b] + jnp.einsum("nij,nj->ni", chol_b[comps_b], w)
            return jnp.zeros_like(drawn).at[:, perm_b].set(drawn)

        out = jax.vmap(one, in_axes=(0, 0, 0, 0, 1, 1))(chol, z, perm, seen, comps, eps)
        return jnp.swapaxes(out, 0, 1)

    # ---------------------------------------------------------------- protocol
    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples: k ~ Categorical(pi), x = mu_k + L_k eps, eps ~ N(0, I).

        Returns:
          ``[num, *event_shape]`` floats.
        """
        self.check_sample_labels(labels, num)
        self.resolve_sample_options(options)
        comp_key, eps_key = jax.random.split(key)
        comps = self.sample_components(params, comp_key, num)
        means = params["means"]
        eps = jax.random.normal(eps_key, (num, self.num_dims), means.dtype)
        if self.covariance == "diag":
            x = means[comps] + jnp.exp(params["log_scales"])[comps] * eps
        else:
            x = means[comps] + jnp.einsum("nij,nj->ni", scale_tril(params["scale_raw"])[comps], eps)
        return x.reshape(num, *self.event_shape)

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: exact, by logsumexp over the K Gaussian components."""
        self.resolve_log_prob_options(options)
        return LogProbInfo(
            "exact",
            "exact",
            {"num_components": self.num_components, "covariance": self.covariance},
        )


__all__ = [
    "COVARIANCES",
    "GaussianMixture",
    "assign",
    "em_step",
    "fit_em",
    "kmeans_plus_plus",
    "responsibilities",
    "scale_raw_from_tril",
    "scale_tril",
]
