"""FVSBN against the autoregressive oracles (shared/ORACLES.md) and a short fit on digits.

- normalisation: exp(log_prob) sums to 1 over all 2^9 binary vectors / all 3^4 grey images;
- autoregressive property: the Jacobian of the logits w.r.t. x vanishes for every j >= i;
- sampling: empirical frequencies of 20 000 draws match exp(log_prob) (total variation);
- continuous data are refused; a short fit beats the independent-Bernoulli baseline.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.autoregressive import FVSBN
from genjax_models.data import DataSpec, load_dataset, prepare
from genjax_models.errors import ConfigError
from genjax_models.eval import evaluate
from genjax_models.model import get_model
from genjax_models.train.config import TrainConfig
from genjax_models.train.fit import fit
from tests.x64 import float64


def _perturbed(model: FVSBN, seed: int = 0, scale: float = 1.0):
    """Random params of order one (the upper triangle of W is random too: it must not matter)."""
    x = jnp.zeros((1, *model.event_shape))
    params = model.init(jax.random.key(seed), x)
    keys = jax.random.split(jax.random.key(seed + 1), 2)
    return {
        "b": scale * jax.random.normal(keys[0], params["b"].shape, params["b"].dtype),
        "W": scale * jax.random.normal(keys[1], params["W"].shape, params["W"].dtype),
    }


def _all_images(model: FVSBN, levels: int) -> jax.Array:
    grid = np.array(list(itertools.product(range(levels), repeat=model.num_dims)))
    return jnp.asarray(grid / (levels - 1)).reshape(-1, *model.event_shape)


def test_binary_log_prob_is_normalised():
    with float64():
        model = FVSBN((3, 3, 1))
        params = _perturbed(model)
        log_p = model.log_prob(params, _all_images(model, 2), jax.random.key(0))
        assert log_p.dtype == jnp.float64 and log_p.shape == (2**9,)
        np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-6)


def test_categorical_log_prob_is_normalised():
    with float64():
        model = FVSBN.from_spec(DataSpec((2, 2, 1), "grey", 3))
        assert model.likelihood == "categorical" and model.num_levels == 3
        params = _perturbed(model, seed=3)
        assert params["W"].shape == (4, 4, 3) and params["b"].shape == (4, 3)
        log_p = model.log_prob(params, _all_images(model, 3), jax.random.key(0))
        assert log_p.shape == (3**4,)
        np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-6)


@pytest.mark.parametrize("spec", [DataSpec((3, 3, 1), "binary", 2), DataSpec((2, 3), "grey", 4)])
def test_logits_depend_only_on_earlier_pixels(spec):
    model = FVSBN.from_spec(spec)
    params = _perturbed(model, seed=5)
    x = jax.random.uniform(jax.random.key(7), (model.num_dims,))
    jac = jax.jacfwd(lambda v: model.logits(params, v[None])[0])(x)  # [D, (L,) D]
    jac = jac if jac.ndim == 2 else jnp.moveaxis(jac, 1, -1)  # -> [D, D, (L)]
    upper = np.triu(np.ones((model.num_dims, model.num_dims), bool))  # j >= i
    assert np.all(np.asarray(jac)[upper] == 0.0)
    below = np.asarray(jac)[~upper]
    assert np.all(below != 0.0)  # and every earlier pixel does feed in


def test_sample_frequencies_match_log_prob():
    model = FVSBN((4,))
    params = _perturbed(model, seed=11)
    num = 20_000
    samples = jax.jit(model.sample, static_argnums=2)(params, jax.random.key(0), num)
    assert samples.shape == (num, 4) and set(np.unique(samples)) <= {0.0, 1.0}
    codes = np.asarray(samples).astype(int) @ (2 ** np.arange(4))
    empirical = np.bincount(codes, minlength=16) / num
    everything = _all_images(model, 2)
    exact = np.exp(np.asarray(model.log_prob(params, everything, jax.random.key(0))))
    exact_codes = np.asarray(everything).astype(int) @ (2 ** np.arange(4))
    tv = 0.5 * np.abs(empirical[exact_codes] - exact).sum()
    assert tv < 0.02, tv
    # Temperature sharpens: a low temperature concentrates mass on the modal pixel values.
    cold = model.sample(params, jax.random.key(1), 2000, temperature=0.05)
    assert cold.shape == (2000, 4)
    assert np.unique(np.asarray(cold), axis=0).shape[0] < 16


def test_grey_samples_are_on_the_level_grid():
    model = FVSBN.from_spec(DataSpec((2, 2, 1), "grey", 5))
    samples = model.sample(_perturbed(model), jax.random.key(0), 50, temperature="0.5")
    assert samples.shape == (50, 2, 2, 1)
    np.testing.assert_allclose(np.asarray(samples) * 4, np.round(np.asarray(samples) * 4))


def test_temperature_is_validated():
    model = FVSBN((4,))
    params = _perturbed(model)
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(params, jax.random.key(0), 2, temperature="warm")
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        model.sample(params, jax.random.key(0), 2, temperature=0.0)


def test_continuous_data_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"data.binarize=threshold\(8\)"):
        get_model("fvsbn", DataSpec((8, 8, 1), "continuous", 17))
    with pytest.raises(ConfigError, match="num_levels"):
        FVSBN((4,), likelihood="categorical")
    with pytest.raises(Exception, match="likelihood"):
        FVSBN((4,), likelihood="gaussian")


def test_short_fit_beats_the_independent_bernoulli_baseline():
    data = prepare(load_dataset("digits"), binarize="threshold(8)")
    model = get_model("fvsbn", data.spec)
    config = TrainConfig(steps=400, batch_size=128, lr=1e-2, steps_per_call=100, log_every=400,
                         checkpoint_every=400)
    result = fit(model, data, config, progress=False)
    report = evaluate(model, result.state.params, data, split="test", key=jax.random.key(0))
    assert report["log_prob_kind"] == "exact" and report["estimator"] == "exact"
    # Independent Bernoulli: 25.2 nats per image on this split (shared/REFERENCE.md).
    assert report["nll_nats"] < 25.2 - 3.0, report["nll_nats"]  # measured: 18.6


def test_fit_matches_independent_logistic_regressions_from_scikit_learn():
    """FVSBN = D logistic regressions: a full-batch fit equals scikit-learn's, pixel by pixel.

    Objective per pixel (scikit-learn's, bias unpenalised): mean log-loss + |w|^2 / (2 C N).
    Pixels constant in the training split (their MLE bias is infinite) are left out of both.
    """
    from sklearn.linear_model import LogisticRegression

    data = prepare(load_dataset("digits"), binarize="threshold(8)")
    train = np.asarray(data.train, np.float64).reshape(len(data.train), -1)
    test = np.asarray(data.test, np.float64).reshape(len(data.test), -1)
    n, d = train.shape
    c_inverse = 1.0  # sklearn's C
    varying = np.array([0 < train[:, i].mean() < 1 for i in range(d)])
    sk_nll = np.zeros(len(test))
    for i in np.flatnonzero(varying):
        if i == 0 or not varying[:i].any():
            p = train[:, i].mean()
            prob = np.full(len(test), p)
        else:
            lr = LogisticRegression(C=c_inverse, max_iter=2000, tol=1e-8)
            lr.fit(train[:, :i], train[:, i])
            prob = lr.predict_proba(test[:, :i])[:, 1]
        sk_nll -= test[:, i] * np.log(prob) + (1 - test[:, i]) * np.log1p(-prob)

    with float64():
        model = FVSBN((d,))
        keep = jnp.asarray(varying, jnp.float64)
        x_train, x_test = jnp.asarray(train), jnp.asarray(test)

        def objective(params):
            per_dim = model.conditional.log_prob(
                model.conditional_outputs(params, x_train, None), x_train
            )
            w = model.masked_weights(params)
            return -(per_dim * keep).sum(1).mean() + (keep @ (w**2).sum(1)) / (2 * c_inverse * n)

        import optax

        params = model.init(jax.random.key(0), x_train)
        solver = optax.lbfgs()
        state = solver.init(params)
        value_and_grad = optax.value_and_grad_from_state(objective)

        @jax.jit
        def step(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(
                grad, state, params, value=value, grad=grad, value_fn=objective
            )
            return (optax.apply_updates(params, updates), state), value

        (params, _), _ = jax.lax.scan(step, (params, state), None, length=300)
        per_dim = model.conditional.log_prob(
            model.conditional_outputs(params, x_test, None), x_test
        )
        ours = -float(((per_dim * keep).sum(1)).mean())
    # Measured: 18.0341 vs 18.0341 nats; the issue asks for 0.3, the optimum allows far less.
    assert abs(ours - sk_nll.mean()) < 0.01, (ours, sk_nll.mean())
