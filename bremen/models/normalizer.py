"""Observation and dynamics normalizers as immutable pytrees.

Two kinds, as in the original:

* :class:`RunningStats` — the policies' running observation statistics. Every array passed to
  :func:`update` is accumulated; ``mean = Σx/n``, ``var = max(Σx²/n − mean², 0.01)``,
  ``std = sqrt(var + 1e-6)`` (so ``std ≥ ≈0.1``). With no data yet, mean 0 and std 1 (what a policy keeps
  when it is never initialized from BC, quirk 9).
* :class:`Normalization` — the dynamics model's fixed statistics of observations, actions and deltas
  ``s' − s`` (and rewards, for a learned reward head): per-dimension mean and population std of the
  training split, no floor; ``1e-10`` is added only when dividing.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

VAR_FLOOR = 0.01
STD_EPS = 1e-6
DIV_EPS = 1e-10


class RunningStats(NamedTuple):
    """Running per-dimension statistics.

    Stored as (count, mean, m2 = Σ(x − mean)²) and merged with Chan's parallel update: in exact arithmetic
    ``m2/n = Σx²/n − mean²``, the original's formula, without its float32 cancellation.
    """

    count: jnp.ndarray  # [] float32
    mean: jnp.ndarray  # [d]
    m2: jnp.ndarray  # [d]


def running_stats_init(dim: int) -> RunningStats:
    """Empty statistics (mean 0, std 1 until the first :func:`update`)."""
    return RunningStats(jnp.zeros((), jnp.float32), jnp.zeros((dim,), jnp.float32), jnp.zeros((dim,), jnp.float32))


def update(stats: RunningStats, x) -> RunningStats:
    """Accumulate a batch ``x [..., d]`` (every row counts once, as the original's running sums)."""
    x = jnp.asarray(x, jnp.float32).reshape(-1, stats.mean.shape[-1])
    n_b = jnp.float32(x.shape[0])
    mean_b = jnp.mean(x, axis=0)
    m2_b = jnp.sum((x - mean_b) ** 2, axis=0)
    n = stats.count + n_b
    delta = mean_b - stats.mean
    mean = stats.mean + delta * (n_b / n)
    m2 = stats.m2 + m2_b + delta**2 * (stats.count * n_b / n)
    return RunningStats(n, mean, m2)


def mean_std(stats: RunningStats):
    """``(mean, std)`` with ``std = sqrt(max(var, 0.01) + 1e-6)``; ``(0, 1)`` before any data."""
    empty = stats.count <= 0
    var = jnp.maximum(stats.m2 / jnp.maximum(stats.count, 1.0), VAR_FLOOR)
    std = jnp.sqrt(var + STD_EPS)
    return jnp.where(empty, 0.0, stats.mean), jnp.where(empty, 1.0, std)


def normalize(stats: RunningStats, x):
    """``(x − mean) / std``."""
    mean, std = mean_std(stats)
    return (x - mean) / std


class Normalization(NamedTuple):
    """Fixed statistics of the dynamics training data (population std, no floor)."""

    obs_mean: jnp.ndarray
    obs_std: jnp.ndarray
    act_mean: jnp.ndarray
    act_std: jnp.ndarray
    delta_mean: jnp.ndarray
    delta_std: jnp.ndarray
    rew_mean: jnp.ndarray  # [] (0 without a reward head)
    rew_std: jnp.ndarray  # [] (1 without a reward head)


def fit_normalization(obs, act, next_obs, rew: Optional[np.ndarray] = None) -> Normalization:
    """Statistics of a training split, computed in float64 and stored as float32.

    The original recomputes them over the whole accumulated training set before every dynamics fit.
    """
    obs, act, next_obs = (np.asarray(a, np.float64) for a in (obs, act, next_obs))
    delta = next_obs - obs
    r = np.zeros(1) if rew is None else np.asarray(rew, np.float64).reshape(-1)
    r_std = 1.0 if rew is None else r.std()
    stats = (obs.mean(0), obs.std(0), act.mean(0), act.std(0), delta.mean(0), delta.std(0), r.mean(), r_std)
    return Normalization(*(jnp.asarray(a, jnp.float32) for a in stats))


def identity_normalization(obs_dim: int, act_dim: int) -> Normalization:
    """Mean 0, std 1 everywhere: the model's output is the raw delta."""
    z, o = jnp.zeros, jnp.ones
    return Normalization(z(obs_dim), o(obs_dim), z(act_dim), o(act_dim), z(obs_dim), o(obs_dim), z(()), o(()))


def normalize_inputs(norm: Normalization, obs, act):
    """Model input ``[(s − μ_s)/(σ_s + 1e-10), (a − μ_a)/(σ_a + 1e-10)]``."""
    return jnp.concatenate(
        [(obs - norm.obs_mean) / (norm.obs_std + DIV_EPS), (act - norm.act_mean) / (norm.act_std + DIV_EPS)], -1
    )
