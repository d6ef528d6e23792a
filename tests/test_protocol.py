"""One protocol-conformance test for every registered model (tiny sizes, one compile each).

Every model in the registry must: build from a data spec, initialise, give a finite scalar loss
with finite gradients, sample ``[num, *event_shape]``, give ``[B]`` log-probabilities, describe
its ``log_prob`` with a kind the evaluator knows, run under ``jit`` (it is hashable, so it can be
static), accept a ``Batch`` and a plain array alike, declare its options (unknown or badly typed
ones are one clear error) and its fields (``genjax describe``).
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import Batch, DataSpec, list_datasets
from genjax_models.errors import ConfigError, UnknownNameError
from genjax_models.model import (
    GenerativeModel,
    LogProbInfo,
    RunRecipe,
    describe_fields,
    get_model,
    list_models,
    model_class,
)

BINARY = DataSpec((4, 4, 1), "binary", 2)
TOY = DataSpec((2,), "continuous")
IMAGES = DataSpec((8, 8, 1), "continuous", 17, -64 * math.log(17))
LABELLED = DataSpec((4, 4, 1), "binary", 2, num_classes=3)
# Each registered model at a tiny size, with data it accepts.
TINY: dict[str, tuple[DataSpec, dict]] = {
    "vae": (BINARY, {"hidden": (8,), "latent_dim": 2, "eval_samples": 3, "eval_chunk": 3}),
    "iwae": (BINARY, {"hidden": (8,), "latent_dim": 2, "eval_samples": 3, "eval_chunk": 3}),
    "cvae": (LABELLED, {"hidden": (8,), "latent_dim": 2, "eval_samples": 3, "eval_chunk": 3}),
    "m2": (LABELLED, {"hidden": (8,), "latent_dim": 2, "classifier_hidden": (8,),
                      "eval_samples": 3, "eval_chunk": 3}),
    "gmvae": (BINARY, {"hidden": (8,), "latent_dim": 2, "num_components": 3,
                       "eval_samples": 3, "eval_chunk": 3}),
    "gmm": (TOY, {"num_components": 2, "em_iterations": 3}),
    "mob": (BINARY, {"num_components": 3, "em_iterations": 3}),
    "realnvp": (TOY, {"num_layers": 2, "hidden": (8,)}),
    "maf": (TOY, {"num_layers": 2, "hidden": (8,)}),
    "nsf": (TOY, {"num_layers": 2, "hidden": (8,), "num_bins": 4}),
    "planar": (TOY, {"num_layers": 2}),
    "glow": (IMAGES, {"steps_per_scale": 1, "hidden_channels": 4, "num_scales": 1}),
    "ffjord": (TOY, {"hidden": (8,), "num_steps": 2}),
    "ddpm": (TOY, {"hidden": (8,), "nfe": 4, "eval_steps": 2}),
    "score-sde": (TOY, {"hidden": (8,), "nfe": 4, "eval_steps": 2}),
    "edm": (TOY, {"hidden": (8,), "nfe": 5, "eval_steps": 2}),
    "fvsbn": (BINARY, {}),
    "nade": (BINARY, {"hidden": 4}),
    "made": (BINARY, {"hidden": (16,), "num_masks": 2}),
    "pixelcnn": (
        BINARY, {"channels": 4, "num_layers": 2, "kernel_size": 3, "first_kernel_size": 3}
    ),
    "ar-transformer": (BINARY, {"width": 8, "num_layers": 1, "num_heads": 2, "mlp_ratio": 2}),
    "rnn": (BINARY, {"hidden": 8, "embed_dim": 4}),
    "categorical-vae": (BINARY, {"hidden": (8,), "num_latents": 2, "num_classes": 3,
                                 "baseline_hidden": (4,), "eval_samples": 3, "eval_chunk": 3}),
    "vqvae": (BINARY, {"num_codes": 3, "code_dim": 2, "channels": 4, "num_downsample": 1,
                       "prior_channels": 4, "prior_layers": 1}),
    "bernoulli-vae": (BINARY, {"hidden": (8,), "num_latents": 3, "baseline_hidden": (4,),
                               "eval_samples": 3, "eval_chunk": 3}),
}


def test_every_registered_model_has_a_tiny_configuration_here():
    assert set(TINY) == set(list_models())


def _batch(spec: DataSpec, num: int = 5) -> jax.Array:
    key = jax.random.key(0)
    if spec.data_type == "binary":
        return jax.random.bernoulli(key, 0.4, (num, *spec.event_shape)).astype(jnp.float32)
    if spec.num_levels is not None:
        return jax.random.uniform(key, (num, *spec.event_shape))
    return jax.random.normal(key, (num, *spec.event_shape))


@pytest.mark.smoke
@pytest.mark.parametrize("name", sorted(TINY))
def test_model_conforms_to_the_protocol(name):
    spec, overrides = TINY[name]
    model = get_model(name, spec, **overrides)
    assert isinstance(model, GenerativeModel) and model.name == name
    assert model.labels in ("needs", "accepts", "ignores")
    hash(model)  # static under jit
    x = _batch(spec)
    needs = model.labels == "needs"  # then batches carry labels, and so does sample
    if needs:
        x = Batch(x, jnp.arange(x.shape[0]) % spec.num_classes)
    sample_labels = jnp.arange(3) % spec.num_classes if needs else None

    @jax.jit
    def run(params, x):
        (loss, metrics), grads = jax.value_and_grad(model.loss, has_aux=True)(
            params, x, jax.random.key(1)
        )
        log_p = model.log_prob(params, x, jax.random.key(2))
        samples = model.sample(params, jax.random.key(3), 3, labels=sample_labels)
        return loss, metrics, grads, log_p, samples

    params = model.init(jax.random.key(0), x)
    loss, metrics, grads, log_p, samples = run(params, x)
    assert loss.shape == () and bool(jnp.isfinite(loss))
    assert metrics and all(v.shape == () and bool(jnp.isfinite(v)) for v in metrics.values())
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    assert log_p.shape == (_batch(spec).shape[0],) and bool(jnp.all(jnp.isfinite(log_p)))
    assert samples.shape == (3, *spec.event_shape) and bool(jnp.all(jnp.isfinite(samples)))
    if needs:  # without labels: one clear error, in log_prob and in sample
        with pytest.raises(Exception, match="needs class labels"):
            model.log_prob(params, x.x, jax.random.key(2))
        with pytest.raises(ConfigError, match="conditional"):
            model.sample(params, jax.random.key(3), 3)
    else:  # a Batch is accepted as the plain array is, with the same result
        np.testing.assert_allclose(
            jax.jit(model.log_prob)(params, Batch(x), jax.random.key(2)), log_p,
            rtol=1e-5, atol=1e-5,
        )

    if model.has_post_update:  # the trainer's non-gradient update keeps the params' structure
        after = jax.jit(model.post_update)(params, x, jax.random.key(4), step=jnp.int32(0))
        assert jax.tree.structure(after) == jax.tree.structure(params)
        assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(after))

    info = model.describe_log_prob()
    assert isinstance(info, LogProbInfo)
    assert info.kind in ("exact", "lower-bound", "estimate") and info.estimator
    json.dumps(info.details)  # stored with eval records
    if "nll" in metrics:  # a likelihood loss: nll is -mean log_prob (or a bound on it)
        assert bool(jnp.isfinite(metrics["nll"]))


@pytest.mark.parametrize("name", sorted(TINY))
def test_options_are_declared_and_checked(name):
    spec, overrides = TINY[name]
    model = get_model(name, spec, **overrides)
    sample_names = [o.name for o in model.sample_options]
    log_prob_names = [o.name for o in model.log_prob_options]
    assert len(set(sample_names)) == len(sample_names)
    assert model.resolve_sample_options({}) == {o.name: o.default for o in model.sample_options}
    with pytest.raises(UnknownNameError, match="unknown .* sample option 'bogus'; valid: "):
        model.resolve_sample_options({"bogus": 1})
    with pytest.raises(UnknownNameError, match="unknown .* log_prob option 'bogus'; valid: "):
        model.describe_log_prob(bogus=1)
    if model.labels == "needs":
        with pytest.raises(ConfigError, match="conditional: pass labels"):
            model.sample(None, jax.random.key(0), 2)
    elif model.labels == "ignores" or getattr(model, "num_classes", None) is None:
        with pytest.raises(ConfigError, match="unconditional"):
            model.sample(None, jax.random.key(0), 2, labels=jnp.zeros(2, jnp.int32))
    for option in model.sample_options + model.log_prob_options:
        assert option.help, f"{name}: option {option.name} has no help text"
    if "num_samples" in log_prob_names:  # the CLI's --k
        assert model.describe_log_prob(num_samples="7").details["num_samples"] == 7


@pytest.mark.parametrize("name", sorted(TINY))
def test_fields_and_default_run_are_described(name):
    cls = model_class(name)
    fields = {f.name: f for f in describe_fields(name)}
    init_fields = [f.name for f in dataclasses.fields(cls) if f.init]
    assert list(fields) == init_fields
    for field in fields.values():
        assert field.help, f"{name}.{field.name} has no one-line meaning in the docstring"
    assert isinstance(cls.default_run, RunRecipe) and cls.default_run.data in list_datasets()


def test_typed_option_values():
    vae = get_model("vae", BINARY, hidden=(8,), latent_dim=2)
    assert vae.resolve_sample_options({"mean": "FALSE"}) == {"mean": False}
    assert vae.resolve_sample_options({"mean": "1"}) == {"mean": True}
    with pytest.raises(ConfigError, match="mean must be a boolean"):
        vae.resolve_sample_options({"mean": "maybe"})
    with pytest.raises(ConfigError, match="num_samples must be an int, got '1.5'"):
        vae.describe_log_prob(num_samples="1.5")
    nsf = get_model("nsf", TOY, use_scan="false", hidden="16,16")
    assert nsf.use_scan is False and nsf.hidden == (16, 16)
    with pytest.raises(ConfigError, match="hidden must be a tuple"):
        get_model("nsf", TOY, hidden="abc")


def test_label_needing_model_refuses_unlabelled_data():
    from genjax_models.data import load_dataset, prepare
    from genjax_models.train import TrainConfig, fit

    @dataclasses.dataclass(frozen=True)
    class NeedsLabels(model_class("vae")):
        labels = "needs"

    model = NeedsLabels.from_spec(TOY, hidden=(4,), latent_dim=2)
    with pytest.raises(Exception, match="needs class labels"):
        model.loss(None, jnp.zeros((2, 2)), jax.random.key(0))
    raw = load_dataset("eight-gaussians")  # its labels are the mixture components; drop them
    toy = prepare(dataclasses.replace(raw, name="unlabelled", train_labels=None, test_labels=None))
    with pytest.raises(ConfigError, match="needs class labels, but dataset 'unlabelled'"):
        fit(model, toy, TrainConfig(steps=1, batch_size=4), progress=False)
    # With labels, they reach the loss batch by batch (the same rows as the examples).
    labelled = prepare(raw)
    result = fit(model, labelled, TrainConfig(steps=2, batch_size=4, log_every=1),
                 progress=False)
    assert [r["step"] for r in result.history] == [1, 2]


def test_labels_travel_with_their_examples_through_the_trainer():
    """The trainer gathers labels with the same indices as the examples (x[:, 0] == y here)."""
    from genjax_models.data import Dataset, prepare
    from genjax_models.model import ModelBase
    from genjax_models.train import TrainConfig, fit

    @dataclasses.dataclass(frozen=True)
    class LabelEcho(ModelBase):
        labels = "needs"

        def init(self, key, batch):
            return {"w": jnp.ones(())}

        def loss(self, params, batch, key):
            x, y = self.check_batch(batch)
            err = jnp.mean(jnp.abs(x[:, 0] - y))
            return params["w"] ** 2 + err, {"err": err}

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 64).astype(np.int32)
    x = np.stack([labels.astype(np.float32), rng.normal(size=64).astype(np.float32)], -1)
    dataset = Dataset("echo", x, x[:16], labels, labels[:16])
    result = fit(LabelEcho((2,)), prepare(dataset), TrainConfig(steps=6, batch_size=8,
                                                                 log_every=1), progress=False)
    assert [r["err"] for r in result.history] == [0.0] * 6
