"""genjax_models: a JAX toolkit for deep generative models.

Every model implements one protocol (``init``, ``loss``, ``sample``, ``log_prob``; see
:mod:`genjax_models.model`), so one trainer, one evaluator and one CLI serve them all::

    import jax
    from genjax_models import data, get_model, train

    prepared = data.prepare(data.load_dataset("digits"), binarize="threshold(8)")
    model = get_model("vae", prepared.spec, latent_dim=16)
    result = train.fit(model, prepared, train.TrainConfig(steps=500))
    samples = model.sample(result.state.params, jax.random.key(0), 16)
"""

from genjax_models.errors import GenjaxError
from genjax_models.model import GenerativeModel, get_model, list_models

__version__ = "0.1.0"

__all__ = ["GenerativeModel", "GenjaxError", "__version__", "get_model", "list_models"]
