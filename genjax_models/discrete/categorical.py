"""Factorised categorical distributions over one-hot latents, and their exact enumeration.

A latent z is N independent categorical variables with K classes each, stored one-hot as
``[..., N, K]``; q is given by unnormalised ``logits [..., N, K]``,

    q(z) = prod_n softmax(logits_n)[z_n],   log q(z) = sum_n sum_k z_nk log_softmax(logits_n)_k.

A Bernoulli latent is the case K = 2 with logits ``[0, l]`` (:func:`bernoulli_logits`), so that
q(z_n = 1) = sigmoid(l_n). For small spaces the K^N configurations can be listed
(:func:`enumerate_one_hot`) and every expectation E_q[f(z)] computed exactly
(:func:`exact_expectation`): the reference every gradient estimator is tested against.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from genjax_models.errors import ConfigError

MAX_ENUMERATION = 2**16


def sample_one_hot(key: jax.Array, logits: Float[Array, "... n k"]) -> Float[Array, "... n k"]:
    """Draw z ~ q one-hot by the Gumbel-max trick: z = one_hot(argmax(logits + g)).

    g_nk ~ Gumbel(0, 1) i.i.d. (``jax.random.gumbel(key, logits.shape)``), so the same key gives
    the same hard sample as :func:`~genjax_models.discrete.relaxed.gumbel_softmax_sample`'s
    argmax. The result carries no gradient.

    Args:
      key: PRNG key.
      logits: ``[..., N, K]``.

    Returns:
      ``[..., N, K]`` one-hot, the dtype of ``logits``.
    """
    g = jax.random.gumbel(key, logits.shape, logits.dtype)
    idx = jnp.argmax(jax.lax.stop_gradient(logits) + g, axis=-1)
    return jax.nn.one_hot(idx, logits.shape[-1], dtype=logits.dtype)


def categorical_log_prob(
    logits: Float[Array, "... n k"], z: Float[Array, "... n k"]
) -> Float[Array, "..."]:
    """Compute log q(z) = sum_n sum_k z_nk log_softmax(logits_n)_k, summed over the N variables.

    Differentiable in ``logits`` (``grad log q`` is the score function); ``z`` is one-hot
    (a relaxed z gives the cross-entropy form, not a density). Leading axes broadcast.

    Returns:
      ``[...]``, nats.
    """
    return jnp.sum(z * jax.nn.log_softmax(logits, axis=-1), axis=(-2, -1))


def categorical_kl_uniform(logits: Float[Array, "... n k"]) -> Float[Array, "..."]:
    """Compute KL(q || Uniform) = sum_n [sum_k q_nk log q_nk + log K] analytically.

    Returns:
      ``[...]``, nats, in [0, N log K].
    """
    log_q = jax.nn.log_softmax(logits, axis=-1)
    k = logits.shape[-1]
    return jnp.sum(jnp.exp(log_q) * log_q, axis=(-2, -1)) + logits.shape[-2] * math.log(k)


def bernoulli_logits(logits: Float[Array, "... n"]) -> Float[Array, "... n 2"]:
    """Turn Bernoulli logits l ``[..., N]`` into categorical logits ``[0, l]``, ``[..., N, 2]``.

    softmax([0, l])[1] = sigmoid(l): class 1 is z_n = 1.
    """
    return jnp.stack([jnp.zeros_like(logits), logits], axis=-1)


def enumerate_one_hot(num_vars: int, num_classes: int) -> Float[Array, "s n k"]:
    """List every configuration of N categorical variables with K classes, one-hot.

    Configuration s has classes ``itertools.product(range(K), repeat=N)[s]`` (the last
    variable varies fastest).

    Returns:
      ``[K^N, N, K]`` float one-hots (the default float dtype).

    Raises:
      ConfigError: K^N above ``MAX_ENUMERATION`` (2^16).
    """
    size = num_classes**num_vars
    if size > MAX_ENUMERATION:
        raise ConfigError(
            f"enumerating {num_classes}^{num_vars} = {size} configurations is too many "
            f"(at most {MAX_ENUMERATION}); use a Monte Carlo estimate instead"
        )
    idx = jnp.asarray(list(itertools.product(range(num_classes), repeat=num_vars)), jnp.int32)
    return jax.nn.one_hot(idx.reshape(size, num_vars), num_classes, dtype=jnp.result_type(float))


def exact_expectation(
    logits: Float[Array, "... n k"], values: Float[Array, "... s"]
) -> Float[Array, "..."]:
    """Compute E_q[f(z)] = sum_s q(z_s) f(z_s) exactly over the K^N configurations.

    ``values[..., s]`` is f at configuration s of :func:`enumerate_one_hot`. Differentiable in
    ``logits``: ``jax.grad`` of this is the exact gradient d/dphi E_q[f(z)] (with f fixed).

    Args:
      logits: ``[..., N, K]``.
      values: ``[..., K^N]`` (broadcast against the leading axes of ``logits``).

    Returns:
      ``[...]``.
    """
    num_vars, num_classes = logits.shape[-2:]
    configs = enumerate_one_hot(num_vars, num_classes).astype(logits.dtype)  # [S, N, K]
    log_q = categorical_log_prob(logits[..., None, :, :], configs)  # [..., S]
    return jnp.sum(jnp.exp(log_q) * values, axis=-1)
