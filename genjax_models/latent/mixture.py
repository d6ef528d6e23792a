"""Finite mixtures with an exact likelihood: the shared base, k-means++ and EM as one ``lax.scan``.

A K-component mixture over flat examples x in R^D (images are flattened) is

    p(x) = sum_{k=1..K} pi_k p(x | k),    pi = softmax(logits),

so ``log p(x) = logsumexp_k [log pi_k + log p(x | k)]`` is exact. Subclasses
(:class:`~genjax_models.latent.gmm.GaussianMixture`,
:class:`~genjax_models.latent.mob.MixtureOfBernoullis`) give the component family:

- ``component_log_likelihood(params, x [B, D], observed [B, D] | None) -> [B, K]``:
  log p(x_observed | k), the missing entries marginalised out;
- ``m_step(x [N, D], resp [N, K]) -> params``: the closed-form M step;
- ``draw_given(params, key, x [B, D], observed [B, D], comps [n, B]) -> [n, B, D]``: draws of
  x from p(x_missing | x_observed, k = comps) (observed entries are overwritten later).

**EM** (Dempster, Laird & Rubin, 1977). E step: responsibilities
``r_nk = p(k | x_n) = softmax_k(log pi_k + log p(x_n | k))``; M step: maximise
``sum_nk r_nk [log pi_k + log p(x_n | k)]``, which gives ``pi_k = N_k / N`` with
``N_k = sum_n r_nk`` and the family's weighted estimates. Each iteration never decreases the
training log-likelihood (for a penalised M step, the penalised one). :func:`fit_em` runs the
iterations as one jitted ``lax.scan`` from a k-means++ initialisation (Arthur & Vassilvitskii,
2007): centres drawn with probability proportional to the squared distance to the nearest
centre chosen so far, then hard assignments to the nearest centre and one M step.

**Missing data** are exact: p(x_observed) = sum_k pi_k p(x_observed | k), and a completion
draws k from the posterior p(k | x_observed) (the weights reweighted by each component's
marginal likelihood of the observed part), then x_missing from that component's conditional.

In ``init`` the model runs ``em_iterations`` EM steps on the init batch, so the generic trainer
starts gradient steps on ``loss`` (the mean NLL; the parameters are unconstrained) from an EM
fit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genjax_models.completion import Completion, flat_observed
from genjax_models.data.batch import Batch
from genjax_models.errors import ConfigError
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params


def kmeans_plus_plus(
    key: jax.Array, x: Float[Array, "n d"], num_components: int, num_trials: int | None = None
) -> jax.Array:
    """Choose K initial centres from the rows of ``x`` by greedy k-means++ seeding.

    The first centre is a uniform row; for each next one, ``num_trials`` candidate rows are
    drawn with probability proportional to ``min_j ||x_n - c_j||^2`` over the centres c_j
    chosen so far (uniform if every distance is 0, e.g. fewer distinct rows than K), and the
    candidate that most lowers the total squared distance is kept (scikit-learn's greedy
    variant; ``num_trials = 1`` is plain k-means++). One ``lax.scan`` over the K - 1 picks.

    Args:
      key: PRNG key.
      x: ``[N, D]`` data.
      num_components: K (static).
      num_trials: candidates per pick (static; default 2 + floor(log K)).

    Returns:
      ``[K, D]`` centres, rows of ``x``.
    """
    n = x.shape[0]
    trials = 2 + int(math.log(num_components)) if num_trials is None else num_trials
    first_key, rest_key = jax.random.split(key)
    first = x[jax.random.randint(first_key, (), 0, n)]
    dist = jnp.sum((x - first) ** 2, axis=-1)

    def step(dist: jax.Array, step_key: jax.Array) -> tuple[jax.Array, jax.Array]:
        total = jnp.sum(dist)
        logits = jnp.where(total > 0, jnp.log(jnp.maximum(dist, 0.0)), 0.0)
        picks = jax.random.categorical(step_key, logits, shape=(trials,))
        candidate = jnp.minimum(dist, jnp.sum((x[None] - x[picks][:, None]) ** 2, axis=-1))
        best = jnp.argmin(candidate.sum(axis=1))
        return candidate[best], x[picks[best]]

    _, rest = jax.lax.scan(step, dist, jax.random.split(rest_key, num_components - 1))
    return jnp.concatenate([first[None], rest], axis=0)


def hard_responsibilities(x: Float[Array, "n d"], centres: Float[Array, "k d"]) -> jax.Array:
    """Return one-hot responsibilities ``[N, K]`` assigning each row to its nearest centre."""
    dist = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
    return jax.nn.one_hot(jnp.argmin(dist, axis=1), centres.shape[0], dtype=x.dtype)


def weights_from_counts(counts: Float[Array, " k"]) -> Float[Array, " k"]:
    """Return the M-step mixture logits ``log(N_k / N)`` (empty components floored, not -inf)."""
    counts = counts + 10 * jnp.finfo(counts.dtype).eps
    return jnp.log(counts) - jnp.log(jnp.sum(counts))


def joint_log_probs(
    model: MixtureModel,
    params: Params,
    x: Float[Array, "b d"],
    observed: jax.Array | None = None,
) -> Float[Array, "b k"]:
    """Return ``log pi_k + log p(x_observed | k)`` for flat ``x [B, D]``: ``[B, K]``."""
    log_pi = jax.nn.log_softmax(params["logits"])
    return log_pi + model.component_log_likelihood(params, x, observed)


def e_step(
    model: MixtureModel, params: Params, x: Float[Array, "n d"]
) -> tuple[Float[Array, "n k"], jax.Array]:
    """Return the responsibilities ``[N, K]`` and the mean log-likelihood of flat ``x``."""
    joint = joint_log_probs(model, params, x)
    log_p = jax.nn.logsumexp(joint, axis=1, keepdims=True)
    return jnp.exp(joint - log_p), jnp.mean(log_p)


def em_step(
    model: MixtureModel, params: Params, x: Float[Array, "n d"]
) -> tuple[Params, jax.Array]:
    """Run one EM iteration on flat ``x [N, D]``.

    Returns:
      ``(new_params, mean_log_likelihood)``: the M step's parameters and the mean
      log-likelihood of ``x`` under the *given* ``params`` (computed in the E step).
    """
    resp, mean_ll = e_step(model, params, x)
    return model.m_step(x, resp), mean_ll


def initial_params(model: MixtureModel, key: jax.Array, x: Float[Array, "n d"]) -> Params:
    """Return the k-means++ initialisation: nearest-centre assignments, then one M step."""
    centres = kmeans_plus_plus(key, x, model.num_components)
    return model.m_step(x, hard_responsibilities(x, centres))


@functools.partial(jax.jit, static_argnames=("model", "num_iterations"))
def fit_em(
    model: MixtureModel,
    key: jax.Array,
    x: Float[Array, "n d"],
    num_iterations: int,
    init_params: Params | None = None,
) -> tuple[Params, Float[Array, " t"]]:
    """Fit a mixture by EM: ``num_iterations`` E + M steps in one jitted ``lax.scan``.

    Args:
      model: a :class:`MixtureModel` (static).
      key: PRNG key of the k-means++ initialisation (unused with ``init_params``).
      x: ``[N, D]`` flat data.
      num_iterations: T (static), the number of M steps.
      init_params: start here instead of the k-means++ initialisation.

    Returns:
      ``(params, log_likelihood [T])``: the parameters after T M steps and the mean training
      log-likelihood after each one (so the last entry is that of the returned ``params``).
    """
    params = initial_params(model, key, x) if init_params is None else init_params
    resp, _ = e_step(model, params, x)

    def step(carry: tuple, _: None) -> tuple[tuple, jax.Array]:
        _, resp = carry
        params = model.m_step(x, resp)
        resp, mean_ll = e_step(model, params, x)
        return (params, resp), mean_ll

    (params, _), lls = jax.lax.scan(step, (params, resp), None, length=num_iterations)
    return params, lls


def responsibilities(
    model: MixtureModel, params: Params, batch: Batch | jax.Array
) -> Float[Array, "b k"]:
    """Return the posterior component probabilities p(k | x), ``[B, K]``."""
    return e_step(model, params, model.flatten(batch))[0]


def assign(model: MixtureModel, params: Params, batch: Batch | jax.Array) -> Int[Array, " b"]:
    """Return the most probable component of each example, ``[B]`` ints."""
    return jnp.argmax(joint_log_probs(model, params, model.flatten(batch)), axis=1)


@dataclasses.dataclass(frozen=True)
class MixtureModel(ModelBase):
    """Shared base of the EM-fitted mixtures (see the module docstring).

    Attributes:
      event_shape: shape of one example; examples are flattened to D = prod(event_shape).
      num_components: K, the number of mixture components.
      em_iterations: EM iterations run in ``init`` on the init batch, from a k-means++
        initialisation (0: k-means++ initialisation only).
    """

    num_components: int = 8
    em_iterations: int = 100

    can_complete: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_components < 1:
            raise ConfigError(f"num_components must be >= 1, got {self.num_components!r}")
        if self.em_iterations < 0:
            raise ConfigError(f"em_iterations must be >= 0, got {self.em_iterations!r}")

    # ------------------------------------------------------------------- hooks
    def component_log_likelihood(
        self, params: Params, x: Float[Array, "b d"], observed: jax.Array | None
    ) -> Float[Array, "b k"]:
        """Return log p(x_observed | k), ``[B, K]`` (subclasses implement)."""
        raise NotImplementedError

    def m_step(self, x: Float[Array, "n d"], resp: Float[Array, "n k"]) -> Params:
        """Return the M-step parameters for flat ``x`` and responsibilities (subclasses)."""
        raise NotImplementedError

    def draw_given(
        self,
        params: Params,
        key: jax.Array,
        x: Float[Array, "b d"],
        observed: jax.Array,
        comps: Int[Array, "n b"],
    ) -> Float[Array, "n b d"]:
        """Draw x ~ p(x_missing | x_observed, k = comps[i, b]) (subclasses implement)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def flatten(self, batch: Batch | jax.Array) -> Float[Array, "b d"]:
        """Check ``batch`` is ``[B, *event_shape]`` and return it as floats ``[B, D]``."""
        x, _ = self.check_batch(batch)
        return x.reshape(x.shape[0], self.num_dims)

    def flat_observed(self, observed: Any, num: int) -> jax.Array:
        """Check a mask ``[*event_shape]`` or ``[B, *event_shape]``; return bools ``[B, D]``."""
        return flat_observed(observed, self.event_shape, num)

    def log_prior(self, params: Params) -> jax.Array:
        """Return the log-prior the M step maximises with the likelihood (0: plain EM)."""
        del params
        return jnp.zeros(())

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise by k-means++ on ``batch``, then ``em_iterations`` EM steps on it."""
        return fit_em(self, key, self.flatten(batch), self.em_iterations)[0]

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Compute the mean negative log-likelihood in nats (exact; ``key`` is unused).

        Returns:
          ``(loss, metrics)`` with metrics ``loss`` and ``nll`` (the same mean NLL).
        """
        del key
        nll = -jnp.mean(self.log_prob(params, batch, None))
        return nll, {"loss": nll, "nll": nll}

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Return the exact log p(x) = logsumexp_k [log pi_k + log p(x | k)], ``[B]`` nats."""
        del key
        self.resolve_log_prob_options(options)
        joint = joint_log_probs(self, params, self.flatten(batch))
        return jax.nn.logsumexp(joint, axis=1)

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: exact, by logsumexp over the K components."""
        self.resolve_log_prob_options(options)
        return LogProbInfo("exact", "exact", {"num_components": self.num_components})

    def log_prob_observed(
        self, params: Params, batch: Batch | jax.Array, observed: Any
    ) -> Float[Array, " b"]:
        """Return the exact log p(x_observed) per example, ``[B]`` (0 where nothing is seen).

        ``log p(x_o) = logsumexp_k [log pi_k + log p(x_o | k)]``; ``observed`` is a bool mask
        ``[*event_shape]`` or ``[B, *event_shape]`` (True = observed).
        """
        x = self.flatten(batch)
        seen = self.flat_observed(observed, x.shape[0])
        return jax.nn.logsumexp(joint_log_probs(self, params, x, seen), axis=1)

    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion:
        """Fill in the missing entries with exact draws from p(x_missing | x_observed).

        For each completion, k ~ p(k | x_o) (softmax of log pi_k + log p(x_o | k)), then
        x_missing ~ p(x_missing | x_o, k). ``log_p_observed`` is exact.

        Args:
          params: model parameters.
          key: PRNG key.
          batch: ``[B, *event_shape]`` (missing entries may hold anything finite).
          observed: bool mask ``[*event_shape]`` or ``[B, *event_shape]`` (True = observed).
          num_completions: n, completions per example (static).

        Returns:
          :class:`~genjax_models.completion.Completion`: samples ``[n, B, *event_shape]``,
          ``log_p_observed [B]``, ``exact [B]`` (all True).
        """
        self.resolve_complete_options(options)
        x = self.flatten(batch)
        num = x.shape[0]
        seen = self.flat_observed(observed, num)
        joint = joint_log_probs(self, params, x, seen)
        comp_key, draw_key = jax.random.split(key)
        comps = jax.random.categorical(comp_key, joint, axis=-1, shape=(num_completions, num))
        drawn = self.draw_given(params, draw_key, x, seen, comps)
        samples = jnp.where(seen[None], x[None], drawn)
        return Completion(
            samples.reshape(num_completions, num, *self.event_shape),
            jax.nn.logsumexp(joint, axis=1),
            jnp.ones((num,), bool),
        )

    def sample_components(self, params: Params, key: jax.Array, num: int) -> Int[Array, " num"]:
        """Draw ``num`` component indices k ~ Categorical(pi)."""
        return jax.random.categorical(key, params["logits"], shape=(num,))


__all__ = [
    "MixtureModel",
    "assign",
    "e_step",
    "em_step",
    "fit_em",
    "hard_responsibilities",
    "initial_params",
    "joint_log_probs",
    "kmeans_plus_plus",
    "responsibilities",
    "weights_from_counts",
]
