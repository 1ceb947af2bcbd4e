"""Gaussian ensemble members: the probabilistic dynamics model of MOPO (Yu et al., 2020; after PETS).

A member is an MLP whose last layer gives a mean and a raw log-variance for every target dimension (the
normalized state delta, and the normalized reward with ``learn_reward``), plus its learned log-variance
bounds. The raw output is bounded smoothly:

    v = hi − softplus(hi − raw),   log σ² = lo + softplus(v − lo)        (lo, hi learned, init −10 and 0.5)

and the member is trained on the Gaussian negative log-likelihood (constants dropped) with a small pull on the
bounds, so they tighten to the data:

    L = mean_{batch,dims} [(μ − y)²·e^{−log σ²} + log σ²]  +  0.01·(Σ hi − Σ lo)

MOPO's code gives every member the same (hi, lo); here each member has its own, so members train
independently under ``vmap`` as the deterministic ones do. Weight decay is the caller's (bremen.models.dynamics).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bremen.models.nets import mlp_apply, mlp_init

LOGVAR_MAX_INIT, LOGVAR_MIN_INIT = 0.5, -10.0
BOUND_COEF = 0.01


def init_member(key, sizes: tuple) -> dict:
    """One member: ``sizes = (in, hidden..., out)``; the MLP's last layer has 2·out units (mean, raw log σ²)."""
    out = sizes[-1]
    return {"mlp": mlp_init(key, tuple(sizes[:-1]) + (2 * out,), "glorot"),
            "logvar_max": jnp.full((out,), LOGVAR_MAX_INIT, jnp.float32),
            "logvar_min": jnp.full((out,), LOGVAR_MIN_INIT, jnp.float32)}


def is_probabilistic(params) -> bool:
    """Whether ensemble (or member) params are Gaussian members (a dict) rather than plain MLPs (a list)."""
    return isinstance(params, dict)


def mean_logvar(member: dict, x, activation: str = "relu"):
    """(μ, log σ²) of one member on normalized inputs ``x``, each ``[..., out]``."""
    mean, raw = jnp.split(mlp_apply(member["mlp"], x, activation), 2, axis=-1)
    hi, lo = member["logvar_max"], member["logvar_min"]
    v = hi - jax.nn.softplus(hi - raw)
    return mean, lo + jax.nn.softplus(v - lo)


def nll_loss(member: dict, x, y, activation: str = "relu"):
    """(the member's training loss of the module docstring, its plain MSE of the mean)."""
    mean, logvar = mean_logvar(member, x, activation)
    err2 = (mean - y) ** 2
    loss = jnp.mean(err2 * jnp.exp(-logvar) + logvar)
    loss = loss + BOUND_COEF * (jnp.sum(member["logvar_max"]) - jnp.sum(member["logvar_min"]))
    return loss, jnp.mean(err2)


def apply_all(params: dict, x, activation: str = "relu"):
    """(μ, log σ²) of every member: each ``[K, ..., out]``."""
    return jax.vmap(lambda m: mean_logvar(m, x, activation))(params)
