"""Gaussian MLP policy of the original, shared by the target (TRPO) and BC policies.

Network: normalized obs → 200 → 200 → 2·act_dim (ReLU), last layer linear, normc init (hidden scale 1,
output scale 0.01), zero biases. The output splits into (m, l):

    μ(s)     = a_mid + a_half · tanh(m)          (= tanh(m) for actions in [−1, 1])
    log σ(s) = −5 + 2.5 · (tanh(l) + 1)          ∈ (−5, 0); ≈ −2.5 at init

The distribution used for likelihoods and KL is 𝒩(μ(s), diag σ(s)²). Observations are normalized with a
:class:`~bremen.models.normalizer.RunningStats` pytree passed next to the params (never trained).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bremen.models.nets import mlp_apply, mlp_init
from bremen.models.normalizer import RunningStats, normalize

LOG_STD_MIN, LOG_STD_MAX = -5.0, 0.0
NORMC_SEED = 1234


def policy_init(
    key,
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int] = (200, 200),
    init_seed: Optional[int] = NORMC_SEED,
    out_scale: float = 0.01,
):
    """Policy MLP params.

    ``init_seed=1234`` (default, original): the normc weights come from a fixed NumPy seed, so every
    policy of these sizes starts identical, whatever the experiment seed, for the target and the BC
    policy, and at every BC re-initialization (quirk 8). ``init_seed=None``: normc drawn from ``key``.
    """
    sizes = [obs_dim, *hidden, 2 * act_dim]
    if init_seed is None:
        return mlp_init(key, sizes, "normc", out_scale)
    rng = np.random.RandomState(init_seed)
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.randn(n_in, n_out).astype(np.float32)
        w *= (out_scale if i == len(sizes) - 2 else 1.0) / np.sqrt(np.square(w).sum(axis=0, keepdims=True))
        params.append({"w": jnp.asarray(w), "b": jnp.zeros((n_out,), jnp.float32)})
    return params


def dist(params, stats: RunningStats, obs, activation: str = "relu", act_low: float = -1.0, act_high: float = 1.0):
    """``(μ, log σ)`` of 𝒩(μ(s), σ(s)²) for observations ``obs [..., obs_dim]`` (unnormalized)."""
    out = mlp_apply(params, normalize(stats, obs), activation)
    m, l = jnp.split(out, 2, axis=-1)
    act_low, act_high = jnp.asarray(act_low, jnp.float32), jnp.asarray(act_high, jnp.float32)
    a_mid, a_half = (act_high + act_low) / 2.0, (act_high - act_low) / 2.0
    mu = a_mid + a_half * jnp.tanh(m)
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(l) + 1.0)
    return mu, log_std


def sampling_log_std(log_std, sampling_std: float, const_sampling: bool):
    """log-std of the distribution actions are actually drawn from (§4.2.3).

    const_sampling: a = μ + 𝒩(0, σ_g²) → log σ_g, state-independent.
    otherwise:      a = μ + σ_g · σ(s) · 𝒩(0, 1) → log σ_g + log σ(s).
    """
    if const_sampling:
        return jnp.full_like(log_std, jnp.log(sampling_std))
    return log_std + jnp.log(sampling_std)


def sample(
    params,
    stats: RunningStats,
    obs,
    key,
    sampling_std: float = 0.1,
    const_sampling: bool = True,
    deterministic: bool = False,
    activation: str = "relu",
    act_low: float = -1.0,
    act_high: float = 1.0,
):
    """An action (not clipped) from the original's sampling modes.

    Defaults are the published runs' ``--gaussian 0.1 --const_sampling`` (the CLI default was σ_g = 1 without
    const sampling). ``deterministic=True`` returns μ(s), the mode used for every real-env evaluation.
    """
    mu, log_std = dist(params, stats, obs, activation, act_low, act_high)
    if deterministic:
        return mu
    std = jnp.exp(sampling_log_std(log_std, sampling_std, const_sampling))
    return mu + std * jax.random.normal(key, mu.shape, mu.dtype)


def log_prob(mu, log_std, act):
    """log 𝒩(act; μ, diag σ²), summed over the last (action) axis."""
    z = (act - mu) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def kl(mu0, log_std0, mu1, log_std1):
    """KL(𝒩(μ0, σ0²) ‖ 𝒩(μ1, σ1²)) for diagonal Gaussians, summed over the last axis:

    Σ_j [ log σ1 − log σ0 + (σ0² + (μ0 − μ1)²) / (2 σ1²) − ½ ].
    """
    var0, var1 = jnp.exp(2.0 * log_std0), jnp.exp(2.0 * log_std1)
    return jnp.sum(log_std1 - log_std0 + (var0 + (mu0 - mu1) ** 2) / (2.0 * var1) - 0.5, axis=-1)
