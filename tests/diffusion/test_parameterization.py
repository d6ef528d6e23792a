"""Prediction-target conversions, EDM preconditioning and the denoiser against the mixture oracle.

For every forward process, in float64 (../shared/ORACLES.md, diffusion item 1):
- conversions between eps / x0 / v / score round-trip for every pair;
- the oracle's E[eps | x], E[x0 | x], E[v | x] and score, converted, give each other;
- the analytic score equals jax.grad of the oracle's log p_t;
- EDM preconditioning with F = the exact inverse of the oracle denoiser reproduces the denoiser,
  and ``make_denoiser`` recovers the oracle denoiser from a network predicting any target.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import oracle
from genjax_models.diffusion.parameterization import (
    PREDICTIONS,
    convert,
    edm_preconditioning,
    from_denoised,
    make_denoiser,
    make_predictor,
    noise_feature,
    regression_target,
    to_denoised,
)
from genjax_models.diffusion.processes import PROCESSES, get_process
from genjax_models.errors import ConfigError, ShapeError, UnknownNameError
from tests.x64 import float64

ORACLE = {"eps": oracle.eps, "x0": oracle.denoiser, "v": oracle.velocity, "score": oracle.score}


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    with float64():
        yield


def _setup(name: str, num_times: int = 6):
    """Mixture, process, times spread in log-SNR over [t_min, t_max] and noisy points x_t."""
    process = get_process(name)
    mix = oracle.example_mixture(2, 3, dtype=jnp.float64)
    t = process.time_grid(num_times - 1, "log-snr")
    x0 = mix.sample(jax.random.key(1), num_times)
    x_t, _ = process.perturb(jax.random.key(2), x0, t)
    return process, mix, t, x_t


def _close(actual, expected, rtol=1e-8):
    scale = float(jnp.max(jnp.abs(expected)))
    np.testing.assert_allclose(
        np.asarray(actual), np.asarray(expected), rtol=rtol, atol=rtol * scale
    )


@pytest.mark.parametrize("name", PROCESSES)
def test_conversions_round_trip_for_all_pairs(name):
    process, _, t, x_t = _setup(name)
    pred = jax.random.normal(jax.random.key(3), x_t.shape, jnp.float64)
    for source, target in itertools.product(PREDICTIONS, PREDICTIONS):
        there = convert(pred, x_t, process, t, source, target)
        back = convert(there, x_t, process, t, target, source)
        # eps/score -> x0 -> eps/score at t_min (s ~ 1e-4 for sub-VP) cancels x - a x0 = O(s):
        # relative error up to eps_machine |x| / s^2 ~ 1e-8.
        _close(back, pred, rtol=1e-6)
    # to_denoised / from_denoised are the x0 special cases, also with a scalar time.
    for kind in PREDICTIONS:
        x0 = to_denoised(kind, pred, x_t, process, 0.5 * (process.t_min + process.t_max))
        again = from_denoised(kind, x0, x_t, process, 0.5 * (process.t_min + process.t_max))
        _close(again, pred, rtol=1e-9)


@pytest.mark.parametrize("name", PROCESSES)
def test_oracle_predictions_convert_into_each_other(name):
    process, mix, t, x_t = _setup(name)
    exact = {kind: fn(mix, process, x_t, t) for kind, fn in ORACLE.items()}
    for source, target in itertools.product(PREDICTIONS, PREDICTIONS):
        _close(convert(exact[source], x_t, process, t, source, target), exact[target])
    denoise = lambda x, s: oracle.denoiser(mix, process, x, s)  # noqa: E731
    for kind in PREDICTIONS:
        _close(make_predictor(denoise, process, kind)(x_t, t), exact[kind])


@pytest.mark.parametrize("name", PROCESSES)
def test_analytic_score_is_grad_of_log_prob(name):
    process, mix, t, x_t = _setup(name)
    grad = jax.grad(lambda x: jnp.sum(oracle.log_prob(mix, process, x, t)))(x_t)
    _close(oracle.score(mix, process, x_t, t), grad)
    # ... and so is the score implied by the exact denoiser (Tweedie).
    _close(from_denoised("score", oracle.denoiser(mix, process, x_t, t), x_t, process, t), grad)


def test_regression_targets_have_the_oracle_as_conditional_mean():
    """E[target | x_t] is the oracle prediction: check the exact linear relations pointwise."""
    process = get_process("subvp")  # a^2 + s^2 != 1
    x0, eps = jax.random.normal(jax.random.key(0), (2, 5, 3), jnp.float64)
    t = jnp.linspace(0.1, 0.9, 5)
    x_t = process.alpha(t)[:, None] * x0 + process.sigma(t)[:, None] * eps
    for kind in PREDICTIONS:
        target = regression_target(kind, x0, eps, process, t)
        # With the true (x0, eps) as "prediction", every kind converts into every other.
        _close(convert(target, x_t, process, t, kind, "x0"), x0, rtol=1e-9)
        _close(convert(target, x_t, process, t, kind, "eps"), eps, rtol=1e-9)


def test_edm_coefficients_give_unit_variances():
    """For x0 ~ N(0, sd^2): Var[c_in x] = 1 and Var[(x0 - c_skip x) / c_out] = 1 (Karras B.6)."""
    sd = 0.7
    sigma = jnp.geomspace(1e-3, 1e2, 11)
    c_skip, c_out, c_in, c_noise = edm_preconditioning(sigma, sd)
    _close(c_in**2 * (sd**2 + sigma**2), jnp.ones_like(sigma), rtol=1e-12)
    target_var = ((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2
    _close(target_var, jnp.ones_like(sigma), rtol=1e-12)
    _close(c_noise, jnp.log(sigma) / 4, rtol=1e-12)


def _t_from_feature(process, feature, c):
    """Invert the noise feature back to t (exactly for "time", by bisection for "log-sigma")."""
    return c if feature == "time" else process.t_from_log_snr(-8.0 * c)


@pytest.mark.parametrize("name", PROCESSES)
def test_edm_preconditioning_with_inverse_network_reproduces_oracle(name):
    process, mix, t, x_t = _setup(name)
    sd = 0.5

    def inverse_network(x_in, c_noise):
        """F with c_skip x / a + c_out F(c_in x / a, c_noise) = the oracle denoiser (t is read
        back from c_noise, so a wrong c_noise would show)."""
        s_t = _t_from_feature(process, "log-sigma", c_noise)
        a, s = process.alpha(s_t)[:, None], process.sigma(s_t)[:, None]
        c_skip, c_out, c_in, _ = edm_preconditioning(s / a, sd)
        x_scaled = x_in / c_in
        return (oracle.denoiser(mix, process, a * x_scaled, s_t) - c_skip * x_scaled) / c_out

    denoise = make_denoiser(inverse_network, process, "x0", preconditioning=True, sigma_data=sd)
    _close(denoise(x_t, t), oracle.denoiser(mix, process, x_t, t))
    _close(jax.jit(denoise)(x_t, t), oracle.denoiser(mix, process, x_t, t))


@pytest.mark.parametrize("name", PROCESSES)
def test_make_denoiser_recovers_oracle_from_every_prediction(name):
    process, mix, t, x_t = _setup(name)
    expected = oracle.denoiser(mix, process, x_t, t)
    auto = "time" if name in ("ddpm", "vp", "subvp") else "log-sigma"
    for kind, feature in itertools.product(PREDICTIONS, ("auto", "time", "log-sigma")):
        used = auto if feature == "auto" else feature

        def network(x, c, kind=kind, used=used):
            return ORACLE[kind](mix, process, x, _t_from_feature(process, used, c))

        denoise = make_denoiser(network, process, kind, feature=feature)
        _close(denoise(x_t, t), expected)


def test_noise_feature_values():
    vp, edm = get_process("vp"), get_process("edm")
    t = jnp.array([0.1, 0.5])
    _close(noise_feature(vp, t, "time"), t)
    sigma = jnp.array([0.5, 2.0])
    _close(noise_feature(edm, sigma, "log-sigma"), jnp.log(sigma) / 4)
    sigma_over_alpha = vp.sigma(t) / vp.alpha(t)
    _close(noise_feature(vp, t), jnp.log(sigma_over_alpha) / 4)
    assert noise_feature(vp, 0.3, "time", batch=4).shape == (4,)


def test_image_batches_and_scalar_times():
    process = get_process("vp")
    x = jax.random.normal(jax.random.key(0), (3, 4, 4, 2), jnp.float64)
    pred = jax.random.normal(jax.random.key(1), x.shape, jnp.float64)
    for t in (jnp.float64(0.4), jnp.array([0.2, 0.5, 0.9])):
        for source, target in itertools.product(PREDICTIONS, PREDICTIONS):
            out = convert(pred, x, process, t, source, target)
            assert out.shape == x.shape
            _close(convert(out, x, process, t, target, source), pred, rtol=1e-9)
    denoise = make_denoiser(lambda x_in, c: 0.0 * x_in, process, "eps", preconditioning=False)
    t = jnp.array([0.2, 0.5, 0.9])
    _close(denoise(x, t), x / process.alpha(t)[:, None, None, None])


def test_errors_name_the_fix():
    process = get_process("vp")
    x = jnp.zeros((3, 2))
    with pytest.raises(UnknownNameError, match="eps, score, v, x0"):
        convert(x, x, process, 0.5, "noise", "x0")
    with pytest.raises(ShapeError, match=r"\[3\]"):
        convert(x, x, process, jnp.zeros(4), "eps", "x0")
    with pytest.raises(ShapeError, match="B, \\*event"):
        to_denoised("eps", jnp.zeros(3), jnp.zeros(3), process, 0.5)
    with pytest.raises(ShapeError):
        convert(jnp.zeros((3, 3)), x, process, 0.5, "eps", "x0")
    with pytest.raises(ConfigError, match="prediction='x0'"):
        make_denoiser(lambda a, c: a, process, "eps", preconditioning=True)
    with pytest.raises(UnknownNameError, match="log-sigma"):
        make_denoiser(lambda a, c: a, process, "eps", feature="sigma")


def test_make_denoiser_passes_cond_to_the_network():
    """``denoise_fn(x, t, cond)`` calls ``apply_fn(x_in, c, cond)``; without cond, ``(x_in, c)``."""
    for name in PROCESSES:
        process = get_process(name)
        x = jnp.ones((3, 2))
        t = jnp.full((3,), 0.5 * (process.t_min + process.t_max))

        def net(x_in, c, cond=None):
            return x_in * 0.0 + (0.0 if cond is None else cond)

        for pre in (False, True):
            denoise = make_denoiser(net, process, "x0", preconditioning=pre)
            plain, shifted = denoise(x, t), denoise(x, t, 2.0)
            assert not np.allclose(np.asarray(plain), np.asarray(shifted))
            if not pre:
                _close(shifted, jnp.full_like(x, 2.0))
