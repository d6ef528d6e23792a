"""Guidance wrappers against a class-conditional Gaussian-mixture oracle (ORACLES.md item 4).

Classes own components (class 0: components 0 and 1, class 1: component 2), so the oracle gives
the exact class-conditional denoiser E[x0 | x_t, y] and the exact noisy classifier
p(y | x_t) = sum of the class's responsibilities (float64):

- classifier-free guidance with w = 0 is the conditional denoiser, and for w > 0 the stated
  line D(c) + w (D(c) - D(null)); called without labels it is the unconditional model;
- classifier guidance with the exact classifier and scale 1 is exactly the conditional denoiser
  (grad log p_t(x | y) = grad log p_t(x) + grad log p(y | x_t)); scale 0 is the unconditional one;
- a sampler driven by either guided denoiser (scale 1 / w = 0) draws the class's mixture: its
  MMD^2 to exact class samples is at the exact-vs-exact noise floor.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax_models.diffusion import guidance, oracle
from genjax_models.diffusion import samplers as smp
from genjax_models.diffusion.processes import VP
from genjax_models.errors import ConfigError
from genjax_models.eval.sample_metrics import mmd2
from tests.x64 import float64

CLASSES = (0, 0, 1)  # component -> class


def _pieces():
    process = VP()
    mix = oracle.example_mixture(2, 3, dtype=jnp.float64)

    def denoise(x, t, cond=None):
        if cond is None:
            return oracle.denoiser(mix, process, x, t)
        return oracle.conditional_denoiser(mix, CLASSES, process, x, t, cond)

    def log_classifier(x, t, y):
        log_post = oracle.class_log_posterior(mix, CLASSES, 2, process, x, t)
        return jnp.take_along_axis(log_post, y[:, None], axis=1)[:, 0]

    return process, mix, denoise, log_classifier


def test_the_oracle_classifier_and_class_mixtures_are_consistent():
    with float64():
        process, mix, _, _ = _pieces()
        x = mix.sample(jax.random.key(0), 64) * 1.3
        t = jnp.linspace(0.05, 0.9, 64)
        post = jnp.exp(jax.jit(oracle.class_log_posterior, static_argnums=(1, 2, 3))(
            mix, CLASSES, 2, process, x, t))
        np.testing.assert_allclose(post.sum(-1), 1.0, atol=1e-12)
        # Bayes at t: p(y | x_t) = p(y) p_t(x | y) / p_t(x), each from its own mixture
        prior = np.array([float(mix.weights[:2].sum()), float(mix.weights[2])])
        log_p = jax.jit(lambda m: oracle.log_prob(m, process, x, t))
        for y in (0, 1):
            class_t = log_p(oracle.class_mixture(mix, CLASSES, y))
            bayes = np.log(prior[y]) + class_t - log_p(mix)
            np.testing.assert_allclose(jnp.log(post[:, y]), bayes, atol=1e-9)


def test_cfg_line_and_classifier_guidance_give_the_exact_conditional_denoiser():
    with float64():
        process, mix, denoise, log_classifier = _pieces()
        x = mix.sample(jax.random.key(1), 32) * 1.2
        t = jnp.linspace(0.02, 0.95, 32)
        y = jnp.arange(32) % 2
        conditional = jax.jit(denoise)(x, t, y)
        unconditional = jax.jit(denoise)(x, t)
        cfg0, cfg = (jax.jit(guidance.classifier_free(denoise, w)) for w in (0.0, 2.5))
        np.testing.assert_allclose(cfg0(x, t, y), conditional, atol=1e-12)
        np.testing.assert_allclose(cfg(x, t, y),
                                   conditional + 2.5 * (conditional - unconditional), atol=1e-12)
        np.testing.assert_allclose(cfg(x, t), unconditional, atol=1e-12)
        guided, zero = (jax.jit(guidance.classifier_guidance(denoise, log_classifier, process, s))
                        for s in (1.0, 0.0))
        np.testing.assert_allclose(guided(x, t, y), conditional, atol=1e-9)
        np.testing.assert_allclose(zero(x, t, y), unconditional, atol=1e-12)
        assert not np.allclose(conditional, unconditional, atol=1e-3)


@functools.lru_cache
def _class_floor(num: int):
    _, mix, _, _ = _pieces()
    target = oracle.class_mixture(mix, CLASSES, 0)
    ref = target.sample(jax.random.key(100), num)
    floor = max(abs(float(mmd2(target.sample(jax.random.key(200 + i), num), ref, (0.5, 1.0))))
                for i in range(3))
    return ref, floor


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cfg", "classifier"])
def test_guided_samplers_draw_the_class_mixture(kind):
    with float64():
        process, mix, denoise, log_classifier = _pieces()
        guided = (guidance.classifier_free(denoise, 0.0) if kind == "cfg" else
                  guidance.classifier_guidance(denoise, log_classifier, process, 1.0))
        num = 600
        labels = jnp.zeros(num, jnp.int32)
        x = jax.jit(lambda key: smp.sample("dpm-solver++", guided, process, key, (num, 2), 40,
                                           cond=labels))(jax.random.key(5))
        ref, floor = _class_floor(num)
        distance = float(mmd2(x, ref, (0.5, 1.0)))
        unguided = float(mmd2(smp.sample("dpm-solver++", denoise, process, jax.random.key(5),
                                         (num, 2), 40), ref, (0.5, 1.0)))
        print(f"{kind}: MMD^2 to class 0 {distance:.2e} (floor {floor:.2e}); unguided "
              f"{unguided:.2e}")
        assert distance < 2 * floor + 1e-4 and unguided > 10 * distance


def test_bad_scales_are_clear_errors():
    def denoise(x, t, cond=None):
        return x

    def log_classifier(x, t, y):
        return jnp.zeros(x.shape[0])

    with pytest.raises(ConfigError, match="guidance weight must be a number >= 0"):
        guidance.classifier_free(denoise, -1.0)
    with pytest.raises(ConfigError, match="guidance scale must be a number >= 0"):
        guidance.classifier_guidance(denoise, log_classifier, VP(), float("nan"))
