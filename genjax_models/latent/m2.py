"""M2, the semi-supervised VAE of Kingma et al. (2014): labels where known, summed out elsewhere.

Generative model p(y) = 1/C, p(z) = N(0, I), p(x | y, z) (the CVAE's decoder); inference
q(z | x, y) (the CVAE's encoder) and a classifier q(y | x). With
L(x, y) = E_q(z|x,y)[log p(x | y, z)] - KL(q(z | x, y) || p(z)) + log p(y) <= log p(x, y):

- a labelled example contributes L(x, y);
- an unlabelled one (label -1, :data:`~genjax_models.data.semi_supervised.UNLABELLED`) the
  bound with y summed out *exactly* over its C values:
  U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)) <= log p(x);
- the labelled examples of the batch add alpha * their mean -log q(y | x), so the
  classifier also learns from the labels. The paper's objective
  sum_lab [L + alpha CE] + sum_unlab U with alpha = 0.1 N, divided by N, is this loss with
  ``classification_weight`` = 0.1 N_labelled (10 for 100 labels, the default; batches hold
  labelled examples in their dataset proportion).

The loss is -mean_b [m_b L(x_b, y_b) + (1 - m_b) U(x_b)] + alpha * mean over labelled b of
-log q(y_b | x_b) (m_b = 1 for a labelled example). All C values of L(x, y) use the same
reparameterisation noise. ``log_prob`` ignores labels and bounds the marginal
log p(x) = log sum_y p(y) p(x | y) by summing y exactly over IWAE-k estimates of p(x | y):
log sum_y p(y) Zhat_y with Zhat_y = 1/k sum_i w_i (unbiased for p(x | y)), a stochastic
lower bound (Jensen), comparable with the other families' log p(x); ``complete`` does the
same for log p(x_observed) and resamples (y, z) by weight. ``diagnostics`` adds the
classifier's accuracy on the evaluated split (its labels). Train with partly hidden labels:
``genjax train m2 --set data.num_labelled=100``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from genjax_models.completion import Completion, flat_observed
from genjax_models.data.batch import Batch, check_labels
from genjax_models.errors import ConfigError
from genjax_models.fields import Option
from genjax_models.latent.bounds import gaussian_kl_standard, importance_log_prob
from genjax_models.latent.cvae import CVAE
from genjax_models.latent.kl_control import reject_kl_controls
from genjax_models.latent.vae_completion import (
    importance_samples,
    masked_sum,
    resample_indices,
)
from genjax_models.model import LogProbInfo, Metrics, Params, RunRecipe
from genjax_models.nn.activations import ACTIVATIONS
from genjax_models.nn.mlp import MLP
from genjax_models.validation import positive_int


@dataclasses.dataclass(frozen=True)
class M2(CVAE):
    """Semi-supervised VAE M2 (module docstring): a CVAE plus a classifier q(y | x).

    Attributes:
      classifier_hidden: hidden widths of the classifier q(y | x).
      classification_weight: weight of the labelled examples' mean cross-entropy
        -log q(y | x) in the per-example loss, >= 0; Kingma et al.'s alpha = 0.1 N is
        0.1 N_labelled here. Measured on mnist5k with 100 labels (3000 steps): 0.1 -> test
        accuracy 0.29, 1 -> 0.65, 10 -> 0.77 (supervised classifier alone: 0.74).
      (all other attributes as :class:`~genjax_models.latent.cvae.CVAE`; the KL controls
      must keep their defaults)
    """

    classifier_hidden: tuple[int, ...] = (256,)
    classification_weight: float = 10.0

    name: ClassVar[str] = "m2"
    labels: ClassVar[str] = "accepts"
    can_complete: ClassVar[bool] = True
    semi_supervised: ClassVar[bool] = True
    loss_uses_step: ClassVar[bool] = False
    log_prob_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "num_samples",
            int | None,
            None,
            "importance samples k per class of the IWAE-k estimates (default: eval_samples)",
        ),
        Option(
            "chunk_size", int | None, None, "samples per chunk, memory only (default: eval_chunk)"
        ),
    )
    default_run: ClassVar[RunRecipe] = dataclasses.replace(
        CVAE.default_run,
        expected="about three minutes on a 2-core CPU (C decoder passes per example); with "
        "--config experiments/configs/m2_mnist5k.py (100 labels, 3000 steps): test NLL "
        "bound 98.6 nats (IWAE-1000 per class, y summed), classifier test accuracy 0.77 "
        "(0.74 for the same classifier trained on the 100 labels alone)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        reject_kl_controls(self, "m2 trains its own bound with y summed out")
        if self.mask_aware:
            raise ConfigError(
                "m2 cannot be mask_aware: the masked training term is not built for its "
                "y-summed loss (m2 completes data with its plain encoder); use vae, iwae, cvae "
                "or gmvae for a mask-aware encoder"
            )
        if any(n < 1 for n in self.classifier_hidden):
            raise ConfigError(
                f"classifier_hidden widths must be positive, got {self.classifier_hidden}"
            )
        if not (self.classification_weight >= 0 and math.isfinite(self.classification_weight)):
            raise ConfigError(
                f"classification_weight must be a finite number >= 0, got "
                f"{self.classification_weight!r}"
            )

    # ------------------------------------------------------------------ pieces
    def classifier(self) -> MLP:
        """Return the classifier MLP, ``x [B, D] -> logits of q(y | x) [B, C]``."""
        return MLP(self.classifier_hidden, self.num_classes, ACTIVATIONS[self.activation])

    def classify(self, params: Params, x: jax.Array) -> Float[Array, "b c"]:
        """Return log q(y | x) for flat ``x [B, D]``, ``[B, C]``."""
        logits = self.classifier().apply({"params": params["classifier"]}, x)
        return jax.nn.log_softmax(logits, axis=-1)

    def all_classes(self, num: int, dtype: Any) -> Float[Array, "c b c"]:
        """Return e_y for every class y, broadcast over ``num`` examples: ``[C, num, C]``."""
        eye = jnp.eye(self.num_classes, dtype=dtype)
        return jnp.broadcast_to(eye[:, None, :], (self.num_classes, num, self.num_classes))

    def class_bounds(
        self, params: Params, x: jax.Array, key: jax.Array
    ) -> Float[Array, "b c"]:
        """Return L(x, y) for every class y (the same noise for all), ``[B, C]``, nats.

        L(x, y) = 1/n sum_i log p(x | y, z_i) - KL(q(z | x, y) || N(0, I)) - log C,
        z_i = mean + std * eps_i, n = ``num_importance``.
        """
        shape = (self.num_importance, x.shape[0], self.latent_dim)
        eps = jax.random.normal(key, shape, x.dtype)

        def bound(c: jax.Array) -> jax.Array:
            mean, log_std = self.encode(params, x, c)
            z = mean + jnp.exp(log_std) * eps
            log_lik = jax.vmap(lambda zz: self.log_likelihood(params, x, zz, c))(z).mean(0)
            return log_lik - gaussian_kl_standard(mean, log_std) - math.log(self.num_classes)

        return jax.vmap(bound)(self.all_classes(x.shape[0], x.dtype)).T

    def _labels_of(self, batch: Batch | jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Return flat x and the labels (-1 = unlabelled; ``None`` if the batch has none)."""
        x, y = self.check_batch_allowing_unlabelled(batch)
        return x.reshape(x.shape[0], self.num_dims), y

    def check_batch_allowing_unlabelled(
        self, batch: Batch | jax.Array
    ) -> tuple[jax.Array, jax.Array | None]:
        """``check_batch``, with labels in -1..C-1 (-1 = unlabelled) allowed."""
        x, y = self.check_batch(Batch(batch.x, None) if isinstance(batch, Batch) else batch)
        y = batch.y if isinstance(batch, Batch) else None
        if y is None:
            return x, None
        y = check_labels(y, x.shape[0])
        if not isinstance(y, jax.core.Tracer) and y.shape[0] > 0:
            concrete = np.asarray(y)  # host-side: jnp reductions would be staged inside a jit
            lo, hi = int(concrete.min()), int(concrete.max())
            if lo < -1 or hi >= self.num_classes:
                raise ConfigError(
                    f"m2 labels must lie in -1..{self.num_classes - 1} (-1: unlabelled), got "
                    f"{lo}..{hi}"
                )
        return x, y

    def _k_and_chunk(self, opts: dict[str, Any]) -> tuple[int, int]:
        k = self.eval_samples if opts["num_samples"] is None else opts["num_samples"]
        chunk = self.eval_chunk if opts["chunk_size"] is None else opts["chunk_size"]
        return positive_int("num_samples", k), positive_int("chunk_size", chunk)

    # ---------------------------------------------------------------- protocol
    def init(self, key: jax.Array, batch: Batch | jax.Array) -> Params:
        """Initialise ``{"encoder", "decoder", "classifier"}``."""
        x, _ = self._labels_of(batch)
        cvae_key, cls_key = jax.random.split(key)
        y = jnp.zeros(x.shape[0], jnp.int32)
        params = super().init(cvae_key, Batch(x.reshape(-1, *self.event_shape), y))
        return {**params, "classifier": self.classifier().init(cls_key, x)["params"]}

    def loss(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        """Compute the M2 loss (module docstring) on a batch with labels in -1..C-1.

        Returns:
          ``(loss, metrics)``: ``loss``; ``bound`` (mean of L(x, y) for labelled and U(x) for
          unlabelled examples); ``nll`` (-mean U(x) over *all* examples, an upper bound on
          -log p(x) in nats); ``classifier_ce`` (mean -log q(y | x) of the labelled examples,
          0 if none); ``labelled_fraction``; ``classifier_entropy`` (mean H(q(y | x))).
        """
        x, y = self._labels_of(batch)
        log_qy = self.classify(params, x)  # [B, C]
        bounds = self.class_bounds(params, x, key)  # [B, C]
        qy = jnp.exp(log_qy)
        entropy = -jnp.sum(qy * log_qy, axis=-1)
        unlabelled_bound = jnp.sum(qy * bounds, axis=-1) + entropy  # U(x), [B]
        if y is None:
            labelled = jnp.zeros(x.shape[0], bool)
            safe_y = jnp.zeros(x.shape[0], jnp.int32)
        else:
            labelled, safe_y = y >= 0, jnp.maximum(y, 0)
        labelled_bound = jnp.take_along_axis(bounds, safe_y[:, None], axis=1)[:, 0]
        per_example = jnp.where(labelled, labelled_bound, unlabelled_bound)
        ce = -jnp.take_along_axis(log_qy, safe_y[:, None], axis=1)[:, 0]
        num_labelled = jnp.sum(labelled)
        mean_ce = jnp.sum(jnp.where(labelled, ce, 0.0)) / jnp.maximum(num_labelled, 1)
        loss = -jnp.mean(per_example) + self.classification_weight * mean_ce
        metrics = {
            "loss": loss,
            "bound": jnp.mean(per_example),
            "nll": -jnp.mean(unlabelled_bound),
            "classifier_ce": mean_ce,
            "labelled_fraction": jnp.mean(labelled.astype(x.dtype)),
            "classifier_entropy": jnp.mean(entropy),
        }
        return loss, metrics

    def check_sample_labels(self, labels: Any, num: int) -> jax.Array | None:
        """Labels ``[num]`` in 0..C-1, or ``None`` (then y ~ p(y), uniform)."""
        return None if labels is None else check_labels(labels, num, self.num_classes)

    def sample(
        self, params: Params, key: jax.Array, num: int, *, labels: Any = None, **options: Any
    ) -> Float[Array, "num ..."]:
        """Draw y ~ p(y) (or take ``labels``), z ~ N(0, I), then x ~ p(x | y, z)."""
        y_key, key = jax.random.split(key)
        labels = self.check_sample_labels(labels, num)
        if labels is None:
            labels = jax.random.randint(y_key, (num,), 0, self.num_classes)
        return super().sample(params, key, num, labels=labels, **options)

    def log_prob(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array, **options: Any
    ) -> Float[Array, " b"]:
        """Estimate log p(x) = log sum_y p(y) p(x | y) by IWAE-k per class (labels ignored).

        Args:
          params: model parameters.
          batch: ``[B, *event_shape]`` (labels, if any, are not used).
          key: PRNG key; class y uses ``fold_in(key, y)``.
          **options: ``num_samples`` k per class (static; default ``eval_samples``) and
            ``chunk_size`` (static; default ``eval_chunk``).

        Returns:
          ``[B]`` nats, a stochastic lower bound on log p(x).
        """
        opts = self.resolve_log_prob_options(options)
        k, chunk = self._k_and_chunk(opts)
        x, _ = self._labels_of(batch)

        def per_class(c: jax.Array, onehot: jax.Array) -> jax.Array:
            return importance_log_prob(
                jax.random.fold_in(key, c), x,
                functools.partial(self.encode, params, c=onehot),
                lambda xx, z: self.log_likelihood(params, xx, z, onehot), k, chunk,
            )

        classes = jnp.arange(self.num_classes)
        log_px_given_y = jax.vmap(per_class)(classes, self.all_classes(x.shape[0], x.dtype))
        return jax.nn.logsumexp(log_px_given_y, axis=0) - math.log(self.num_classes)

    def complete(
        self,
        params: Params,
        key: jax.Array,
        batch: Batch | jax.Array,
        observed: jax.Array,
        num_completions: int,
        **options: Any,
    ) -> Completion:
        """Complete partly observed data with y summed out (labels, if any, are not used).

        For each class y, k importance samples z_{y,i} ~ q(z | x_fill, y) (missing entries set
        to ``fill``) with weights w_{y,i} = p(x_o | z, y) p(z) / q(z | x_fill, y) give
        Zhat_y = 1/k sum_i w_{y,i}, unbiased for p(x_o | y), so
        log sum_y p(y) Zhat_y is a stochastic lower bound on log p(x_o) (Jensen), the
        missing-data form of :meth:`log_prob`. Each completion resamples one pair (y, i) of
        the C k samples with probability proportional to p(y) w_{y,i} (an approximate draw of
        (y, z) from p(y, z | x_o)), then draws the missing entries from p(x | z, y).

        Args:
          params, key, batch: as in the protocol (``batch`` ``[B, *event_shape]``).
          observed: bool mask ``[*event_shape]`` or ``[B, *event_shape]`` (True = observed).
          num_completions: n, completions per example (static).
          **options: ``num_samples`` k per class (default ``eval_samples``), ``fill``
            (default 0).

        Returns:
          :class:`~genjax_models.completion.Completion` with ``exact`` all False.
        """
        k, fill = self.completion_options(options, num_completions)
        x, _ = self._labels_of(batch)
        num = x.shape[0]
        seen = flat_observed(observed, self.event_shape, num)
        filled = jnp.where(seen, x, fill)
        weight_key, index_key, draw_key = jax.random.split(key, 3)

        def per_class(c: jax.Array, onehot: jax.Array) -> tuple[jax.Array, jax.Array]:
            mean, log_std = self.encode(params, filled, onehot)
            return importance_samples(
                jax.random.fold_in(weight_key, c), mean, log_std,
                lambda z: masked_sum(seen, self.log_likelihood_terms(params, x, z, onehot)),
                functools.partial(self.prior_log_prob, params), k, self.eval_chunk,
            )

        classes = jnp.arange(self.num_classes)
        z, log_w = jax.lax.map(lambda a: per_class(*a),
                               (classes, self.all_classes(num, x.dtype)))  # [C, k, B, (K)]
        log_w = log_w.reshape(self.num_classes * k, num) - math.log(self.num_classes)
        bound = jax.nn.logsumexp(log_w, axis=0) - math.log(k)
        index = resample_indices(index_key, log_w, num_completions)  # [n, B], pair y k + i
        chosen = z.reshape(self.num_classes * k, num, self.latent_dim)[index, jnp.arange(num)]

        def draw(key: jax.Array, z: jax.Array, y: jax.Array) -> jax.Array:
            return self.draw_data(params, key, z, self.one_hot(y, x.dtype))

        drawn = jax.vmap(draw)(jax.random.split(draw_key, num_completions), chosen, index // k)
        samples = jnp.where(seen[None], x[None], drawn)
        return Completion(samples.reshape(num_completions, num, *self.event_shape), bound,
                          jnp.zeros((num,), bool))

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """A lower bound on log p(x): IWAE-k per class, y summed exactly."""
        k, _ = self._k_and_chunk(self.resolve_log_prob_options(options))
        return LogProbInfo(
            "lower-bound",
            f"iwae-{k}-sum-y",
            {"num_samples": k, "sum_over_y": "exact", "proposal": "q(z|x,y)"},
        )

    def diagnostics(
        self, params: Params, batch: Batch | jax.Array, key: jax.Array
    ) -> dict[str, float]:
        """Classifier accuracy on the labelled examples of ``batch``, and the active units.

        Active units are measured with q(z | x, y) at the classifier's predicted y.
        """
        del key
        x, y = self._labels_of(batch)
        predicted = jnp.argmax(self.classify(params, x), axis=-1)
        out = super().diagnostics(params, Batch(x.reshape(-1, *self.event_shape), predicted),
                                  None)
        if y is not None and bool(jnp.any(y >= 0)):
            known = y >= 0
            out["classifier_accuracy"] = float(jnp.sum((predicted == y) & known) / jnp.sum(known))
        return out
