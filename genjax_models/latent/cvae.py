"""Conditional VAE (Sohn et al., 2015): class-conditional encoder and decoder.

With a label y in {0, ..., C-1} and its one-hot vector e_y:

    p(z) = N(0, I),   p(x | z, y) = decoder([z, e_y]),   q(z | x, y) = encoder([x, e_y]),
    ELBO(x | y) = E_q log p(x | z, y) - KL(q(z | x, y) || N(0, I)) <= log p(x | y).

Everything else is the :class:`~genjax_models.latent.vae.VAE`'s: the decoder families, the KL
controls (beta, warm-up, free bits), the IWAE-k ``log_prob``, the active-units diagnostic. The
likelihood is *conditional*: ``log_prob(Batch(x, y))`` bounds log p(x | y), which is not
comparable with the unconditional models' log p(x) (within one joint model,
log p(x | y) - log p(x) = log p(y | x) - log p(y), up to log C nats per example for uniform
labels); ``describe_log_prob`` says so. ``sample(labels=...)``
draws z ~ N(0, I), then x ~ p(x | z, y).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from genjax_models.data.batch import Batch, check_labels
from genjax_models.data.spec import DataSpec
from genjax_models.errors import ConfigError
from genjax_models.latent.vae import VAE
from genjax_models.model import LogProbInfo, RunRecipe


@dataclasses.dataclass(frozen=True)
class CVAE(VAE):
    """A VAE conditioned on class labels in the encoder and the decoder (module docstring).

    Attributes:
      num_classes: C, labels are 0..C-1 (``from_spec`` takes it from the data).
      (all other attributes as :class:`~genjax_models.latent.vae.VAE`)
    """

    num_classes: int | None = None

    name: ClassVar[str] = "cvae"
    labels: ClassVar[str] = "needs"
    default_run: ClassVar[RunRecipe] = dataclasses.replace(
        VAE.default_run,
        expected="about a minute on a 2-core CPU; test NLL given the label ~96 nats (IWAE-1000, "
        "a bound on -log p(x|y))",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_classes is None or self.num_classes < 2:
            raise ConfigError(
                f"cvae needs num_classes >= 2 (the data's number of labels), got "
                f"{self.num_classes!r}"
            )

    @classmethod
    def spec_defaults(cls, spec: DataSpec) -> dict[str, Any]:
        """The VAE's defaults plus ``num_classes`` from the data, which must carry labels."""
        if spec.num_classes is None:
            raise ConfigError(
                "cvae needs labelled data (its encoder and decoder take the class label); "
                "choose a labelled dataset such as digits or mnist5k"
            )
        return {**super().spec_defaults(spec), "num_classes": spec.num_classes}

    def one_hot(self, labels: jax.Array, dtype: Any = None) -> jax.Array:
        """Return e_y, ``[B, C]``, for int labels ``[B]``."""
        return jax.nn.one_hot(labels, self.num_classes, dtype=dtype or jnp.result_type(float))

    def inputs(self, batch: Batch | jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return flat ``x [B, D]`` and the one-hot labels ``[B, C]`` (labels are required)."""
        x, y = self.check_batch(batch)
        check_labels(y, x.shape[0], self.num_classes)
        return x.reshape(x.shape[0], self.num_dims), self.one_hot(y, x.dtype)

    def sample_condition(self, labels: jax.Array | None) -> jax.Array:
        """Return one-hot labels ``[num, C]`` (``check_sample_labels`` already required them)."""
        return self.one_hot(labels)

    def check_sample_labels(self, labels: Any, num: int) -> jax.Array:
        """Require ``labels [num]`` with values in 0..C-1."""
        if labels is None:
            raise ConfigError("cvae is conditional: pass labels=[num] to sample (--label K)")
        return check_labels(labels, num, self.num_classes)

    def describe_log_prob(self, **options: Any) -> LogProbInfo:
        """The VAE's bound, of log p(x | y): ``details["conditional"] = "log p(x|y)"``."""
        info = super().describe_log_prob(**options)
        return LogProbInfo(info.kind, info.estimator, {**info.details, "conditional": "log p(x|y)"})
