"""The registry of discrete-latent gradient estimators (names for ``--set model.estimator=``).

Each entry says what kind of estimator it is; the functions themselves live in
:mod:`~genjax_models.discrete.score_function`, :mod:`~genjax_models.discrete.vimco` and
:mod:`~genjax_models.discrete.relaxed`.
"""

from __future__ import annotations

from typing import NamedTuple

from genjax_models.errors import unknown_name


class EstimatorInfo(NamedTuple):
    """What a gradient estimator of d/dphi E_q[f(z)] is.

    Attributes:
      description: one line.
      score_function: uses grad log q (REINFORCE family), else a pathwise/relaxed gradient.
      multi_sample: needs k >= 2 samples per example (leave-one-out, VIMCO).
      relaxed: uses a temperature tau (Gumbel-softmax, ST-Gumbel).
      unbiased: unbiased for the gradient of its discrete objective.
    """

    description: str
    score_function: bool
    multi_sample: bool
    relaxed: bool
    unbiased: bool


ESTIMATORS: dict[str, EstimatorInfo] = {
    "reinforce": EstimatorInfo("score function, no baseline", True, False, False, True),
    "reinforce-moving-average": EstimatorInfo(
        "score function minus a running-mean baseline", True, False, False, True
    ),
    "reinforce-learned": EstimatorInfo(
        "score function minus a learned input-dependent baseline b(x)", True, False, False, True
    ),
    "reinforce-loo": EstimatorInfo(
        "k-sample score function, leave-one-out baselines", True, True, False, True
    ),
    "vimco": EstimatorInfo(
        "IWAE-k objective, leave-one-out geometric-mean control variates", True, True, False, True
    ),
    "gumbel-softmax": EstimatorInfo(
        "Gumbel-softmax / Concrete relaxation at temperature tau", False, False, True, False
    ),
    "straight-through": EstimatorInfo(
        "hard sample forward, softmax-probability gradient backward", False, False, False, False
    ),
    "st-gumbel": EstimatorInfo(
        "hard sample forward, Gumbel-softmax gradient backward", False, False, True, False
    ),
}


def check_estimator(name: str) -> EstimatorInfo:
    """Return the registry entry of estimator ``name``.

    Raises:
      UnknownNameError: ``name`` is not registered (the message lists the choices).
    """
    if name not in ESTIMATORS:
        raise unknown_name("estimator", name, ESTIMATORS)
    return ESTIMATORS[name]
