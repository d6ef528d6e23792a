"""The shared machinery of the discrete-latent VAEs: one loss per gradient estimator.

Model over binary x in {0, 1}^D (D = prod(event_shape)):

    p(z) = prod_n Uniform(z_n; K classes),   p(x | z) = prod_d Bernoulli(x_d; sigmoid(dec(z))_d),
    q(z | x) = prod_n Categorical(z_n; softmax(enc(x)_n)),

z one-hot ``[N, K]``. The ELBO is

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)),   KL = sum_n sum_k q log q + N log K,

with the KL term in closed form and the reconstruction term estimated with k = ``num_importance``
samples; the estimator (``estimator``, one of :data:`~genjax_models.discrete.ESTIMATORS`) says
how its gradient reaches the encoder:

- ``reinforce``: f = log p(x | z) through :func:`score_function_surrogate`, no baseline;
- ``reinforce-moving-average``: the model keeps no state outside its parameters, so the running
  mean is taken over the batch: b_b = mean of f over the *other* examples of the batch (a
  moving average with a one-batch window; independent of z_b, so unbiased). Research loops
  that keep state use :func:`moving_average_update` directly;
- ``reinforce-learned``: b(x) = (that batch mean) + r_psi(x), r_psi a small MLP (NVIL-style
  centring; ``params["baseline"]``) fitted by :func:`baseline_regression_loss`, which is added
  to the loss with zero value, so the loss still reads as the negative ELBO;
- ``reinforce-loo``: k >= 2 samples, leave-one-out baselines;
- ``vimco``: k >= 2 samples, the loss is the negative IWAE-k objective with VIMCO gradients;
- ``gumbel-softmax``: the decoder sees relaxed samples at ``temperature`` (the loss is the
  relaxed objective of Jang et al. 2017, analytic categorical KL); the ``elbo`` metric is the
  discrete ELBO at the hard sample argmax(y), an exact draw of q;
- ``straight-through`` / ``st-gumbel``: hard samples forward (the loss is a discrete ELBO
  estimate), softmax-probability / Gumbel-softmax gradients backward.

The relaxation's temperature may anneal during a run (Jang et al. 2017):
tau(step) = max(``temperature_min``, ``temperature`` * exp(-``anneal_rate`` * step))
(:func:`temperature_schedule`); the trainer passes the optimiser step to the loss, so the
schedule resumes exactly. With the default ``temperature_min = None`` tau stays ``temperature``.
``log_prob`` is the IWAE-k bound with q as proposal (:func:`categorical_importance_log_prob`);
:meth:`DiscreteVAE.exact_log_marginal` and :meth:`DiscreteVAE.exact_elbo` enumerate all K^N
latents of small models, the reference for both.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.data.batch import Batch
from genjax_models.data.spec import DataSpec
from genjax_models.discrete.categorical import (
    categorical_kl_uniform,
    categorical_log_prob,
    enumerate_one_hot,
    sample_one_hot,
)
from genjax_models.discrete.estimators import check_estimator
from genjax_models.discrete.importance import categorical_importance_log_prob
from genjax_models.discrete.relaxed import (
    gumbel_softmax_sample,
    straight_through_gumbel_sample,
    straight_through_sample,
    temperature_schedule,
)
from genjax_models.discrete.score_function import (
    baseline_regression_loss,
    leave_one_out_baseline,
    leave_one_out_surrogate,
    score_function_surrogate,
)
from genjax_models.discrete.vimco import iwae_objective, vimco_surrogate
from genjax_models.errors import ConfigError, unknown_name
from genjax_models.fields import Option
from genjax_models.latent.likelihoods import bernoulli_log_likelihood
from genjax_models.latent.networks import Decoder
from genjax_models.model import LogProbInfo, Metrics, ModelBase, Params, RunRecipe
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.nn.mlp import MLP
from genjax_models.validation import positive_int

_sg = jax.lax.stop_gradient
_MULTI_SAMPLE_DEFAULT = 5


def _batch_mean_baseline(f: Float[Array, "k b"]) -> Float[Array, "k b"]:
    """Return the mean of f over the other examples of the batch (0 for a batch of one)."""
    if f.shape[1] < 2:
        return jnp.zeros_like(f)
    return leave_one_out_baseline(f, axis=1)


@dataclasses.dataclass(frozen=True)
class DiscreteVAE(ModelBase):
    """Shared base of :class:`CategoricalVAE` and :class:`BernoulliVAE` (module docstring).

    Subclasses define ``num_classes`` (K) and the maps between network outputs and the
    ``[..., N, K]`` logits / one-hot latents.

    Attributes:
      num_latents: N, the number of latent variables.
      hidden: encoder hidden widths; the decoder uses them reversed.
      activation: one of :data:`~genjax_models.nn.ACTIVATIONS`.
      estimator: the gradient estimator: gumbel-softmax, st-gumbel, straight-through,
        reinforce, reinforce-moving-average, reinforce-learned, reinforce-loo or vimco.
      temperature: tau of ``gumbel-softmax`` and ``st-gumbel`` at step 0.
      temperature_min: the floor of the annealed temperature, in (0, temperature]; ``None``
        (default) keeps tau fixed at ``temperature``.
      anneal_rate: r >= 0, tau(step) = max(temperature_min, temperature * exp(-r step));
        used only with ``temperature_min``.
      num_importance: samples per example in the training objective (None: 1, or 5 for the
        multi-sample estimators ``reinforce-loo`` and ``vimco``, which need >= 2).
      baseline_hidden: hidden widths of the learned baseline r_psi(x) (``reinforce-learned``).
      eval_samples: default k of the IWAE-k ``log_prob``.
      eval_chunk: samples per chunk in ``log_prob`` (memory only).
    """

    num_latents: int = 20
    hidden: tuple[int, ...] = (512, 256)
    activation: str = "relu"
    estimator: str = "gumbel-softmax"
    temperature: float = 1.0
    temperature_min: float | None = None
    anneal_rate: float = 0.0
    num_importance: int | None = None
    baseline_hidden: tuple[int, ...] = (100,)
    eval_samples: int = 1000
    eval_chunk: int = 100

    name: ClassVar[str] = "discrete-vae"
    loss_uses_step: ClassVar[bool] = True
    sample_options: ClassVar[tuple[Option, ...]] = (
        Option("mean", bool, False, "return Bernoulli probabilities instead of binary draws"),
    )
    log_prob_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "num_samples",
            int | None,
            None,
            "importance samples k of the IWAE-k bound (default: eval_samples)",
        ),
        Option(
            "chunk_size", int | None, None, "samples per chunk, memory only (default: eval_chunk)"
        ),
    )
    default_run: ClassVar[RunRecipe] = RunRecipe(
        data="mnist5k",
        binarize="dynamic",
        train={
            "steps": 5000,
            "batch_size": 100,
            "lr": 1e-3,
            "log_every": 100,
            "checkpoint_every": 1000,
            "steps_per_call": 20,
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(n < 1 for n in self.hidden + self.baseline_hidden):
            raise ConfigError(
                f"hidden widths must be positive, got {self.hidden} / {self.baseline_hidden}"
            )
        if self.activation not in ACTIVATIONS:
            raise unknown_name("activation", self.activation, ACTIVATIONS)
        info = check_estimator(self.estimator)
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"temperature must be positive, got {self.temperature!r}")
        if self.temperature_min is not None and not (
            0 < self.temperature_min <= self.temperature
        ):
            raise ConfigError(
                f"temperature_min must lie in (0, temperature={self.temperature!r}], got "
                f"{self.temperature_min!r}"
            )
        if not (self.anneal_rate >= 0 and math.isfinite(self.anneal_rate)):
            raise ConfigError(f"anneal_rate must be a finite number >= 0, got {self.anneal_rate!r}")
        for field in ("num_latents", "eval_samples", "eval_chunk"):
            positive_int(field, getattr(self, field))
        if self.num_importance is not None:
            positive_int("num_importance", self.num_importance)
            if info.multi_sample and self.num_importance < 2:
                raise ConfigError(
                    f"estimator {self.estimator!r} needs num_importance >= 2 samples per "
                    f"example, got {self.num_importance}; set model.num_importance=5 (or none)"
                )

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """Refuse non-binary data (the decoder is Bernoulli)."""
        if spec.data_type != "binary":
            raise ConfigError(
                f"{cls.name} has a Bernoulli decoder, but the data are not binary: binarise "
                "them with --set data.binarize=dynamic (or data.binarize=threshold(8))"
            )
        return {}

    # ------------------------------------------------------- subclass hooks
    @property
    def num_classes(self) -> int:  # pragma: no cover - defined by subclasses
        """K, the number of classes of each latent variable."""
        raise NotImplementedError

    @property
    def encoder_width(self) -> int:
        """Width of the encoder's output layer (N K for categorical latents)."""
        return self.num_latents * self.num_classes

    def latent_logits(self, h: Float[Array, "b w"]) -> Float[Array, "b n k"]:
        """Turn the encoder output into categorical logits ``[B, N, K]``."""
        return h.reshape(h.shape[0], self.num_latents, self.num_classes)

    def decoder_input(self, z: Float[Array, "... n k"]) -> Float[Array, "... w"]:
        """Turn (relaxed) one-hot latents ``[..., N, K]`` into the decoder's input vector."""
        return z.reshape(*z.shape[:-2], self.num_latents * self.num_classes)

    # ------------------------------------------------------------------ pieces
    @property
    def train_samples(self) -> int:
        """k, the samples per example of the training objective."""
        if self.num_importance is not None:
            return self.num_importance
        return _MULTI_SAMPLE_DEFAULT if check_estimator(self.estimator).multi_sample else 1

    def encoder(self) -> MLP:
        """Return the encoder MLP, ``x [B, D] -> [B, encoder_width]``."""
        return MLP(self.hidden, self.encoder_width, ACTIVATIONS[self.activation])

    def decoder(self) -> Decoder:
        """Return the decoder, ``decoder_input(z) -> (logits [B, D], None)``."""
        return Decoder(tuple(reversed(self.hidden)), self.num_dims, ACTIVATIONS[self.activation])

    def baseline_net(self) -> MLP:
        """Return the learned baseline's residual MLP r_psi, ``x [B, D] -> [B, 1]``."""
        return MLP(self.baseline_hidden, 1, ACTIVATIONS[self.activation], zero_init_output=True)

    def flatten(self, batch: Batch | jax.Array) -> Float[Array, "b d"]:
        """Check ``batch`` is ``[B, *event_shape]`` and return it as floats ``[B, D]``."""
        x, _ = self.check_batch(batch)
        return x.reshape(x.shape[0], self.num_dims)

    def encode(self, params: Params, x: Float[Array, "b d"]) -> Float[Array, "b n k"]:
        """Return the logits of q(z | x), ``[B, N, K]``, for flat ``x``."""
        return self.latent_logits(self.encoder().apply({"params": params["encoder"]}, x))

    def log_likelihood(
        self, params: Params, x: Float[Array, "b d"], z: Float[Array, "b n k"]
    ) -> Float[Array, " b"]:
        """Compute log p(x | z) summed over the D pixels (z one-hot or relaxed)."""
        logits, _ = self.decoder().apply({"params": params["decoder"]}, self.decoder_input(z))
        return bernoulli_log_likelihood(x, logits)

    def log_prior(self) -> float:
        """Return log p(z) = -N log K, the same for every z (uniform prior)."""
        return -self.num_latents * math.log(self.num_classes)

    def log_joint(
        self, params: Params, x: Float[Array, "b d"], z: Float[Array, "b n k"]
    ) -> Float[Array, " b"]:
        """Compute log p(x, z) = log p(x | z) + log p(z)."""
        return self.log_likelihood(params, x, z) + self.log_prior()

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise ``{"encoder", "decoder"}`` (+ ``"baseline"`` for ``reinforce-learned``)."""
        x = self.flatten(batch)
        enc_key, dec_key, base_key = jax.random.split(key, 3)
        z = jnp.zeros((x.shape[0], self.num_latents, self.num_classes), x.dtype)
        params = {
            "encoder": self.encoder().init(enc_key, x)["params"],
            "decoder": self.decoder().init(dec_key, self.decoder_input(z))["params"],
        }
        if self.estimator == "reinforce-learned":
            params["baseline"] = self.baseline_net().init(base_key, x)["params"]
        return params

    def _draw(self, key: jax.Array, k: int, fn: Any) -> jax.Array:
        return jax.vmap(lambda i: fn(jax.random.fold_in(key, i)))(jnp.arange(k))

    def temperature_at(self, step: int | jax.Array | None) -> jax.Array:
        """Return tau at optimiser ``step`` (``None``: the schedule's end point, the floor)."""
        if self.temperature_min is None:
            return jnp.asarray(self.temperature, jnp.result_type(float))
        if step is None:
            return jnp.asarray(self.temperature_min, jnp.result_type(float))
        return temperature_schedule(step, self.temperature, self.temperature_min, self.anneal_rate)

    def loss(
        self,
        params: Params,
        batch: Batch | jax.Array,
        key: jax.Array,
        *,
        step: int | jax.Array | None = None,
    ) -> tuple[jax.Array, Metrics]:
        """Compute the mean negative ELBO (or IWAE-k for ``vimco``) with the chosen estimator.

        Sample i of k uses ``fold_in(key, i)``. The loss's value is the negative Monte Carlo
        ELBO (analytic KL) for the score-function and straight-through estimators, -L_k for
        ``vimco`` and the negative relaxed objective for ``gumbel-softmax``; its gradient is
        the estimator's (module docstring). ``step`` (passed by the trainer) sets the annealed
        temperature of the relaxed estimators (:meth:`temperature_at`).

        Returns:
          ``(loss, metrics)`` with ``loss``, ``elbo`` (discrete ELBO estimate), ``recon``,
          ``kl`` and ``nll`` (-elbo, or -iwae_bound for ``vimco``: an upper bound on the NLL
          in nats), plus ``iwae_bound`` (vimco), ``relaxed_elbo`` (gumbel-softmax) and
          ``baseline_loss`` (reinforce-learned) and ``temperature`` (gumbel-softmax, st-gumbel).
        """
        x = self.flatten(batch)
        logits = self.encode(params, x)  # [B, N, K]
        kl = categorical_kl_uniform(logits)  # [B]
        k, name = self.train_samples, self.estimator
        log_lik = jax.vmap(functools.partial(self.log_likelihood, params, x))
        metrics: Metrics = {"kl": jnp.mean(kl)}

        if name in ("gumbel-softmax", "straight-through", "st-gumbel"):
            tau = self.temperature_at(step)
            if name != "straight-through":  # plain ST uses no temperature
                metrics["temperature"] = tau
            if name == "gumbel-softmax":
                z = self._draw(key, k, lambda kk: gumbel_softmax_sample(kk, logits, tau))
            elif name == "st-gumbel":
                z = self._draw(key, k, lambda kk: straight_through_gumbel_sample(kk, logits, tau))
            else:
                z = self._draw(key, k, lambda kk: straight_through_sample(kk, logits))
            recon = log_lik(z).mean(axis=0)  # [B]
            objective = jnp.mean(recon - kl)
            if name == "gumbel-softmax":  # the discrete ELBO at h = argmax(y) ~ q, no gradient
                hard = jax.nn.one_hot(jnp.argmax(z, -1), self.num_classes, dtype=z.dtype)
                metrics["relaxed_elbo"] = objective
                recon = _sg(log_lik(_sg(hard)).mean(axis=0))
            elbo = jnp.mean(recon - kl)
            loss = -objective
        else:
            z = self._draw(key, k, lambda kk: sample_one_hot(kk, logits))  # [k, B, N, K]
            log_q = categorical_log_prob(logits, z)  # [k, B]
            f = log_lik(z)  # [k, B], gradient to the decoder only
            recon = f.mean(axis=0)
            elbo = jnp.mean(recon - kl)
            if name == "vimco":
                log_w = f + self.log_prior() - log_q
                metrics["iwae_bound"] = jnp.mean(_sg(iwae_objective(log_w)))
                loss = -jnp.mean(vimco_surrogate(log_q, log_w))
            elif name == "reinforce-loo":
                loss = -jnp.mean(leave_one_out_surrogate(log_q, f) - kl)
            else:
                baseline = jnp.zeros_like(f)
                extra = jnp.zeros(())
                if name in ("reinforce-moving-average", "reinforce-learned"):
                    baseline = _batch_mean_baseline(f)
                if name == "reinforce-learned":
                    net = self.baseline_net().apply({"params": params["baseline"]}, x)[:, 0]
                    baseline = _sg(baseline) + net  # [k, B]
                    reg = jnp.mean(baseline_regression_loss(f, baseline))
                    metrics["baseline_loss"] = reg
                    extra = reg - _sg(reg)  # zero in value, fits r_psi in gradient
                surrogate = score_function_surrogate(log_q, f, baseline).mean(axis=0)
                loss = -jnp.mean(surrogate - kl) + extra
        metrics.update(loss=loss, elbo=elbo, recon=-jnp.mean(recon))
        metrics["nll"] = -metrics.get("iwae_bound", elbo)
        return loss, metrics

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw ``num`` examples: z ~ p(z) (uniform), then x ~ p(x | z) (or its mean).

        Args:
          params: model parameters.
          key: PRNG key.
          num: number of samples (static).
          labels: must be ``None`` (unconditional).
          **options: ``mean`` (default False): return the Bernoulli probabilities.

        Returns:
          ``[num, *event_shape]`` floats, in {0, 1} unless ``mean``.
        """
        self.check_sample_labels(labels, num)
        mean = self.resolve_sample_options(options)["mean"]
        z_key, x_key = jax.random.split(key)
        z = sample_one_hot(z_key, jnp.zeros((num, self.num_latents, self.num_classes)))
        logits, _ = self.decoder().apply({"params": params["decoder"]}, self.decoder_input(z))
        probs = jax.nn.sigmoid(logits)
        x = probs if mean else jax.random.bernoulli(x_key, probs).astype(probs.dtype)
        return x.reshape(num, *self.event_shape)

    def _k_and_chunk(self, options: dict[str, Any]) -> tuple[int, int]:
        opts = self.resolve_log_prob_options(options)
        k = self.eval_samples if opts["num_samples"] is None else opts["num_samples"]
        chunk = self.eval_chunk if opts["chunk_size"] is None else opts["chunk_size"]
        return positive_int("num_samples", k), positive_int("chunk_size", chunk)

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Estimate log p(x) per example by the IWAE-k bound with q(z | x) as proposal.

        Args:
          params: model parameters.
          batch: ``[B, *event_shape]`` binary.
          key: PRNG key.
          **options: ``num_samples`` k (static; default ``eval_samples``; k = 1 is the Monte
            Carlo ELBO) and ``chunk_size`` (static; default ``eval_chunk``).

        Returns:
          ``[B]`` nats, a stochastic lower bound on log p(x).
        """
        k, chunk = self._k_and_chunk(options)
        x = self.flatten(batch)
        return categorical_importance_log_prob(
            key, x, self.encode(params, x), functools.partial(self.log_joint, params), k, chunk
        )

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """Describe ``log_prob``: a lower bound, ``"elbo"`` for k = 1, else ``"iwae-k"``."""
        k, _ = self._k_and_chunk(options)
        return LogProbInfo(
            "lower-bound",
            "elbo" if k == 1 else f"iwae-{k}",
            {"num_samples": k, "proposal": "q(z|x)"},
        )

    # ------------------------------------------------------------- enumeration
    def _enumerated(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return (log q(z_s | x), log p(x, z_s)) for every configuration, each ``[B, S]``."""
        configs = enumerate_one_hot(self.num_latents, self.num_classes).astype(x.dtype)
        logits = self.encode(params, x)
        log_q = categorical_log_prob(logits[:, None], configs[None])  # [B, S]
        z = jnp.broadcast_to(configs[:, None], (configs.shape[0], *logits.shape))
        log_joint = jax.vmap(functools.partial(self.log_joint, params, x))(z).T  # [B, S]
        return log_q, log_joint

    def exact_log_marginal(self, params: Params, batch: Batch | jax.Array) -> Float[Array, " b"]:
        """Compute log p(x) = logsumexp_z log p(x, z) exactly over all K^N latents, ``[B]``.

        Raises:
          ConfigError: K^N above 2^16 (use ``log_prob``).
        """
        _, log_joint = self._enumerated(params, self.flatten(batch))
        return jax.nn.logsumexp(log_joint, axis=-1)

    def exact_elbo(self, params: Params, batch: Batch | jax.Array) -> Float[Array, " b"]:
        """Compute ELBO(x) = sum_z q(z | x) [log p(x, z) - log q(z | x)] exactly, ``[B]``."""
        log_q, log_joint = self._enumerated(params, self.flatten(batch))
        return jnp.sum(jnp.exp(log_q) * (log_joint - log_q), axis=-1)
