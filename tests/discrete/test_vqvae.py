"""VQ-VAE: the vector quantiser's updates against their closed forms, the straight-through
gradient, and the model's bound against its exact (enumerated) likelihood.

- EMA update with decay 0 and no smoothing = one k-means (Lloyd) step on the batch: each
  used code moves to the mean of its vectors, an unused one stays;
- EMA with decay gamma and Laplace smoothing: the stated formula, counts' total preserved;
- dead-code restart replaces exactly the codes below the threshold, by rows of the batch;
- straight-through: d f(z + sg(z_q - z)) / dz = f'(z_q), so the decoder's gradient reaches
  the encoder's parameters, and the codebook gets no gradient;
- a 4x4 image with a 1x1 code grid (K = 3, float64): p(x) = sum_k p(k) p(x | k) sums to 1
  over all 2^16 images, and ``log_prob`` is the k(x) term, a lower bound on log p(x).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.data import DataSpec
from genjax_models.discrete import vector_quantizer as vq
from genjax_models.errors import ConfigError
from genjax_models.model import get_model
from tests.x64 import float64

BINARY = DataSpec((4, 4, 1), "binary", 2)
TINY = {"num_codes": 3, "code_dim": 2, "channels": 4, "num_residual": 1,
        "prior_channels": 4, "prior_layers": 1}


def _vectors(seed: int, n: int = 40, d: int = 3) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (n, d))


def test_ema_with_decay_zero_is_one_k_means_step():
    z = _vectors(0)
    embedding = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [-1.0, 0.5, 0.0], [50.0, 50, 50]])
    book = vq.Codebook(embedding, jnp.ones(4), embedding)
    codes = vq.nearest_codes(z, embedding)
    new = vq.ema_update(book, z, codes, decay=0.0, epsilon=0.0)
    d2 = ((np.asarray(z)[:, None, :] - np.asarray(embedding)[None]) ** 2).sum(-1)
    assign = d2.argmin(1)
    assert set(assign) == {0, 1, 2}  # code 3 is far away: unused
    for k in range(3):
        np.testing.assert_allclose(new.embedding[k], np.asarray(z)[assign == k].mean(0),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new.embedding[3], embedding[3])
    np.testing.assert_array_equal(new.ema_count, np.bincount(assign, minlength=4))


def test_ema_with_decay_and_laplace_smoothing_follows_the_formula():
    z = _vectors(1)
    book = vq.init_codebook(jax.random.key(2), z, 5)
    codes = vq.nearest_codes(z, book.embedding)
    gamma, eps = 0.9, 0.5
    new = vq.ema_update(book, z, codes, decay=gamma, epsilon=eps)
    one_hot = np.eye(5)[np.asarray(codes)]
    count = gamma * np.asarray(book.ema_count) + (1 - gamma) * one_hot.sum(0)
    total = count.sum()
    summed = gamma * np.asarray(book.ema_sum) + (1 - gamma) * one_hot.T @ np.asarray(z)
    smoothed = (count + eps) / (total + 5 * eps) * total
    np.testing.assert_allclose(new.ema_count, count, rtol=1e-6)
    np.testing.assert_allclose(new.embedding, summed / smoothed[:, None], rtol=1e-5, atol=1e-6)
    assert smoothed.sum() == pytest.approx(total)


def test_dead_code_restart_replaces_exactly_the_dead_codes():
    z = _vectors(3)
    book = vq.init_codebook(jax.random.key(4), z, 6)
    book = book._replace(ema_count=jnp.array([0.2, 3.0, 0.0, 1.5, 0.99, 7.0]))
    dead = vq.dead_codes(book, threshold=1.0)
    np.testing.assert_array_equal(dead, [True, False, True, False, True, False])
    new = vq.restart_dead_codes(book, jax.random.key(5), z, dead)
    rows = {tuple(np.round(r, 6)) for r in np.asarray(z)}
    for k in range(6):
        if dead[k]:
            assert tuple(np.round(np.asarray(new.embedding[k]), 6)) in rows
            assert float(new.ema_count[k]) == 1.0
            np.testing.assert_array_equal(new.ema_sum[k], new.embedding[k])
        else:
            np.testing.assert_array_equal(new.embedding[k], book.embedding[k])
            np.testing.assert_array_equal(new.ema_count[k], book.ema_count[k])
            np.testing.assert_array_equal(new.ema_sum[k], book.ema_sum[k])


def test_codebook_usage_counts_codes_and_perplexity():
    usage = vq.codebook_usage(jnp.array([0, 0, 1, 1, 2, 2, 3, 3]), 8)
    assert float(usage["codes_used"]) == 4.0
    assert float(usage["perplexity"]) == pytest.approx(4.0, rel=1e-6)
    assert float(vq.codebook_usage(jnp.zeros(5, jnp.int32), 8)["perplexity"]) == 1.0


def test_post_update_restarts_only_when_due():
    model = get_model("vqvae", BINARY, num_downsample=1, restart_threshold=1.0,
                      restart_every=10, ema_decay=0.9, **TINY)
    x = jax.random.bernoulli(jax.random.key(0), 0.4, (6, 4, 4, 1)).astype(jnp.float32)
    params = model.init(jax.random.key(1), x)
    book = params["codebook"]._replace(ema_count=jnp.array([0.0, 0.0, 5.0]))
    params = {**params, "codebook": book}
    not_due = model.post_update(params, x, jax.random.key(2), step=jnp.int32(3))
    due = model.post_update(params, x, jax.random.key(2), step=jnp.int32(9))
    z = np.asarray(model.encode(params, x)).reshape(-1, 2)
    rows = {tuple(np.round(r, 5)) for r in z}
    counts = np.bincount(np.asarray(vq.nearest_codes(jnp.asarray(z), book.embedding)),
                         minlength=3)
    emas = [0.9 * float(book.ema_count[k]) + 0.1 * counts[k] for k in range(3)]
    assert min(emas) < 1.0 <= max(emas)  # both cases occur
    for k, ema in enumerate(emas):
        assert float(not_due["codebook"].ema_count[k]) == pytest.approx(ema)
        if ema < 1.0:  # dead: replaced by an encoder output of the batch, stats reset
            assert tuple(np.round(np.asarray(due["codebook"].embedding[k]), 5)) in rows
            assert float(due["codebook"].ema_count[k]) == 1.0
        else:
            np.testing.assert_array_equal(due["codebook"].embedding[k],
                                          not_due["codebook"].embedding[k])


def test_straight_through_gradient_reaches_the_encoder():
    model = get_model("vqvae", BINARY, num_downsample=1, **TINY)
    x = jax.random.bernoulli(jax.random.key(0), 0.5, (3, 4, 4, 1)).astype(jnp.float32)
    params = model.init(jax.random.key(1), x)
    z_e = model.encode(params, x)
    _, z_q = model.quantize(params, z_e)

    def recon(z):
        return -jnp.sum(model.decode_log_likelihood(params, x, z))

    through = jax.jit(jax.grad(lambda z: recon(vq.straight_through(z, z_q))))(z_e)
    np.testing.assert_allclose(through, jax.jit(jax.grad(recon))(z_q), rtol=1e-6, atol=1e-7)
    assert float(jnp.abs(through).sum()) > 0
    grads = jax.jit(jax.grad(lambda p: model.loss(p, x, jax.random.key(2))[0]))(params)
    assert all(float(jnp.abs(g).sum()) == 0.0 for g in jax.tree.leaves(grads["codebook"]))
    assert float(sum(jnp.abs(g).sum() for g in jax.tree.leaves(grads["encoder"]))) > 0
    assert float(sum(jnp.abs(g).sum() for g in jax.tree.leaves(grads["prior"]))) > 0


def test_bound_is_the_nearest_code_term_of_an_exactly_normalised_mixture():
    with float64():
        # 2x2 binary images, all 16 of them, one stride-2 stage: a 1x1 code grid
        model = get_model("vqvae", DataSpec((2, 2, 1), "binary", 2), num_downsample=1, **TINY)
        images = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=4))).reshape(
            -1, 2, 2, 1
        )
        params = model.init(jax.random.key(0), images)
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        grids = jnp.arange(3).reshape(3, 1, 1)
        log_prior = model.prior_log_prob(params, grids)  # [3]
        np.testing.assert_allclose(jax.nn.logsumexp(log_prior), 0.0, atol=1e-12)
        embedding = params["codebook"].embedding

        @jax.jit
        def log_lik_and_bound(params, images):
            log_lik = jnp.stack([
                model.decode_log_likelihood(
                    params, images, jnp.broadcast_to(embedding[k], (images.shape[0], 1, 1, 2))
                )
                for k in range(3)
            ], axis=1)  # [2^4, 3]
            bound = model.log_prob(params, images, jax.random.key(1))
            return log_lik, bound, model.codes(params, images).reshape(-1)

        log_lik, bound, codes = log_lik_and_bound(params, images)
        exact = jax.nn.logsumexp(log_prior + log_lik, axis=1)
        np.testing.assert_allclose(jax.nn.logsumexp(exact), 0.0, atol=1e-9)
        np.testing.assert_allclose(
            bound, (log_prior + log_lik)[jnp.arange(images.shape[0]), codes], rtol=1e-10
        )
        assert bool(jnp.all(bound <= exact + 1e-12))
        assert model.describe_log_prob().kind == "lower-bound"


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ConfigError, match="not divisible by 2\\^num_downsample"):
        get_model("vqvae", BINARY, num_downsample=3)
    with pytest.raises(ConfigError, match="ema_decay must be in"):
        get_model("vqvae", BINARY, ema_decay=1.0)
    with pytest.raises(ConfigError, match="event_shape must be"):
        get_model("vqvae", DataSpec((8,), "binary", 2))
    with pytest.raises(ConfigError, match="continuous"):
        get_model("vqvae", DataSpec((4, 4, 1), "continuous"))
    with pytest.raises(ConfigError, match="num_codes must be >= 2"):
        get_model("vqvae", BINARY, num_codes=1)


def test_the_trainer_applies_the_ema_update_after_every_step():
    from genjax_models.data import Dataset, prepare
    from genjax_models.train import TrainConfig, fit

    x = np.asarray(jax.random.bernoulli(jax.random.key(0), 0.4, (32, 4, 4, 1)), np.float32)
    data = prepare(Dataset("tiny", x, x[:8], num_levels=2))  # grey, L = 2
    model = get_model("vqvae", data.spec, num_downsample=1, restart_threshold=0.0, **TINY)
    assert model.likelihood == "discretized-logistic"
    steps, batch = 3, 8
    result = fit(model, data, TrainConfig(steps=steps, batch_size=batch, log_every=1),
                 progress=False)
    book = result.state.params["codebook"]
    # every step assigns all B h w vectors: total EMA count gamma^t K + (1 - gamma^t) B h w
    gamma = model.ema_decay
    expected = gamma**steps * 3 + (1 - gamma**steps) * batch * 2 * 2
    assert float(book.ema_count.sum()) == pytest.approx(expected, rel=1e-5)
    assert {"codes_used", "perplexity", "recon", "prior_nll"} <= set(result.history[-1])
