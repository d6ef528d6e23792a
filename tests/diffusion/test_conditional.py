"""Class-conditional diffusion models: labels, label dropout, guided sampling, inpainting, CLI.

- the conditional network is D(x, t, y) and, with the null label, the unconditional
  D(x, t, null); the loss uses the batch's labels and drops them with ``label_dropout``;
- ``sample(labels, guidance=w)`` is the sampler run on ``classifier_free(D, w)`` with the same
  key; w = 0 is the conditional model; unconditional models refuse labels and guidance;
- ``complete`` inpaints: observed entries come back exactly, ``log_p_observed`` is NaN;
- conditioning by a vector (``label_embeddings``: fixed class vectors through a linear map) with
  one-hot vectors is exactly the label-table model, null included;
- ``genjax sample --labels --guidance`` and ``genjax complete`` work on a trained workdir.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models import data, get_model
from genjax_models.cli import main
from genjax_models.completion import make_mask
from genjax_models.data import Batch
from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.guidance import classifier_free
from genjax_models.errors import ConfigError, ShapeError

TINY = {"network": "mlp", "hidden": (32, 32), "nfe": 9, "eval_steps": 3}


@pytest.fixture(scope="module")
def digits():
    return data.prepare(data.load_dataset("digits"), dequantize="uniform")


def _perturbed(params, key):
    """Parameters with every leaf moved (the network's output is zero at initialisation)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    moved = [p + 0.3 * jax.random.normal(k, p.shape, p.dtype)
             for p, k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(tree, moved)


def _model_and_params(digits, **overrides):
    model = get_model("edm", digits.spec, conditional=True, **{**TINY, **overrides})
    x = jnp.asarray(digits.split("train")[:16])
    y = jnp.asarray(digits.split_labels("train")[:16])
    params = _perturbed(model.init(jax.random.key(0), Batch(x, y)), jax.random.key(1))
    return model, params, x, y


def test_labels_condition_the_denoiser_and_the_loss(digits):
    model, params, x, y = _model_and_params(digits, label_dropout=0.0)
    assert model.num_classes == 10 and model.samples_by_class
    denoise = model.denoiser(params)
    xt, t = model.to_model_space(x), jnp.full((16,), 0.5)
    with_labels, null = denoise(xt, t, y), denoise(xt, t)
    assert float(jnp.max(jnp.abs(with_labels - null))) > 1e-3
    np.testing.assert_allclose(denoise(xt, t, jnp.full((16,), 10)), null, atol=1e-6)
    key = jax.random.key(2)
    loss_y = model.loss(params, Batch(x, y), key)[0]
    loss_other = model.loss(params, Batch(x, (y + 1) % 10), key)[0]
    assert abs(float(loss_y - loss_other)) > 1e-4
    # label_dropout = 1 - eps: every label dropped, so the labels stop mattering
    dropped = get_model("edm", digits.spec, conditional=True, label_dropout=0.999999, **TINY)
    np.testing.assert_allclose(
        dropped.loss(params, Batch(x, y), key)[0],
        dropped.loss(params, Batch(x, (y + 1) % 10), key)[0], rtol=1e-6,
    )
    with pytest.raises(ShapeError, match="labelled batches"):
        model.loss(params, x, key)
    lp_y = model.log_prob(params, Batch(x[:4], y[:4]), key)
    lp_null = model.log_prob(params, x[:4], key)
    assert bool(jnp.all(jnp.isfinite(lp_y))) and float(jnp.max(jnp.abs(lp_y - lp_null))) > 1e-3
    assert model.describe_log_prob().details["labelled_batches"] == "log p(x | y)"


def test_guided_sampling_is_the_sampler_on_the_guided_denoiser(digits):
    model, params, _, _ = _model_and_params(digits)
    labels = jnp.arange(6) % 10
    key = jax.random.key(3)
    for w in (0.0, 2.0):
        got = model.sample(params, key, 6, labels=labels, guidance=w, sampler="euler", nfe=6)
        denoise = classifier_free(model.denoiser(params), w)
        y = smp.sample("euler", denoise, model.forward_process, key, (6, *model.event_shape), 6,
                       cond=labels)
        np.testing.assert_allclose(got, model.to_data_space(y), atol=1e-4)  # float32
    unconditional = model.sample(params, key, 6, sampler="euler", nfe=6)
    assert float(jnp.max(jnp.abs(unconditional - got))) > 1e-3
    with pytest.raises(ConfigError, match="needs labels"):
        model.sample(params, key, 2, guidance=1.0)
    plain = get_model("edm", digits.spec, **TINY)
    with pytest.raises(ConfigError, match="unconditional"):
        plain.sample(params, key, 2, labels=jnp.zeros(2, jnp.int32))
    with pytest.raises(ConfigError, match="label_dropout"):
        get_model("edm", digits.spec, conditional=True, label_dropout=1.0)
    with pytest.raises(ConfigError, match="labelled data"):
        get_model("edm", event_shape=(2,), conditional=True)


def test_complete_inpaints_with_the_observed_entries_kept(digits):
    model, params, x, y = _model_and_params(digits)
    observed = make_mask("top-half", model.event_shape, 4)
    holed = jnp.where(observed, x[:4], jnp.nan)
    result = model.complete(params, jax.random.key(4), Batch(holed, y[:4]), observed, 3,
                            sampler="ancestral", nfe=6, resample=2)
    assert result.samples.shape == (3, 4, *model.event_shape)
    kept = jnp.where(observed[None], result.samples == x[None, :4], True)
    assert bool(jnp.all(kept)) and bool(jnp.all(jnp.isfinite(result.samples)))
    assert bool(jnp.all(jnp.isnan(result.log_p_observed))) and not bool(result.exact.any())
    with pytest.raises(ConfigError, match="resample"):
        model.complete(params, jax.random.key(4), x[:4], observed, 1, resample=0)


@pytest.mark.slow
def test_cli_trains_samples_with_guidance_and_completes(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    args = ["train", "edm", "--data", "digits", "--steps", "6", "--workdir", workdir,
            "--no-progress"]
    for item in ("model.conditional=true", "model.network=mlp", "model.hidden=[32]",
                 "model.nfe=5", "train.batch_size=32", "train.steps_per_call=3",
                 "train.log_every=3", "train.checkpoint_every=6",
                 "train.num_preview_samples=10"):
        args += ["--set", item]
    assert main(args) == 0
    out = str(tmp_path / "g.npy")
    assert main(["sample", "--workdir", workdir, "--labels", "0,1,2", "--guidance", "1.5",
                 "--num", "6", "--sampler", "euler", "--nfe", "5", "--out", out]) == 0
    assert np.load(out).shape == (6, 8, 8, 1)
    capsys.readouterr()
    assert main(["sample", "--workdir", workdir, "--guidance", "1", "--num", "2"]) == 2
    assert "needs labels" in capsys.readouterr().err
    out = str(tmp_path / "c.npy")
    assert main(["complete", "--workdir", workdir, "--mask", "left-half", "--examples", "2",
                 "--num", "2", "--option", "nfe=5", "--out", out]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:2]]
    assert all(r["kind"] == "not-computed" and r["log_p_observed_nats"] is None for r in lines)
    assert np.load(out).shape == (2, 2, 8, 8, 1)


def test_conditioning_by_vector_equals_the_label_table_with_one_hot_vectors(digits, tmp_path):
    """One-hot class vectors through the linear context map reproduce a label table exactly."""
    model, params, x, y = _model_and_params(digits)
    path = str(tmp_path / "one_hot.npy")
    np.save(path, np.eye(10, dtype=np.float32))
    vector_model = get_model("edm", digits.spec, conditional=True, label_embeddings=path, **TINY)
    vector_params = dict(vector_model.init(jax.random.key(0), Batch(x, y)))
    table = params["LabelEmbedding_0"]["Embed_0"]["embedding"]  # [K + 1, dim], row K: null
    vector_params["ContextEmbedding"] = {"kernel": table[:10] - table[10], "bias": table[10]}
    for name in params:
        if name != "LabelEmbedding_0":
            vector_params[name] = params[name]
    assert set(vector_params) == (set(params) - {"LabelEmbedding_0"}) | {"ContextEmbedding"}
    xt, t = model.to_model_space(x), jnp.full((16,), 0.3)
    for labels in (y, None, jnp.full((16,), 10)):
        np.testing.assert_allclose(vector_model.denoiser(vector_params)(xt, t, labels),
                                   model.denoiser(params)(xt, t, labels), atol=1e-5)
    loss = vector_model.loss(vector_params, Batch(x, y), jax.random.key(5))[0]
    np.testing.assert_allclose(loss, model.loss(params, Batch(x, y), jax.random.key(5))[0],
                               rtol=1e-5)
    bad = str(tmp_path / "bad.npy")
    np.save(bad, np.eye(3, dtype=np.float32))
    with pytest.raises(ConfigError, match="3 class vectors"):
        get_model("edm", digits.spec, conditional=True, label_embeddings=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        get_model("edm", digits.spec, conditional=True, label_embeddings=str(tmp_path / "no"))
    with pytest.raises(ConfigError, match="conditional=True"):
        get_model("edm", digits.spec, label_embeddings=path)
