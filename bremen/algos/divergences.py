"""Divergences between the learned policy π and the behavior policy π_b, estimated from samples.

MMD with two kernel conventions (x, y: action samples [n, d] for one state; batched over leading axes):

* BEAR's (Kumar et al. 2019; the original repository, also rlkit and d3rlpy):
  k_lap(x, y) = exp(−‖x − y‖₁ / (2σ)),  k_gauss(x, y) = exp(−‖x − y‖₂² / (2σ))   (2σ, not 2σ²)
  MMD = sqrt( mean k(x, x') + mean k(y, y') − 2·mean k(x, y) + 1e-6 )  (V-statistics, diagonal included)
* BRAC's (Wu et al. 2019, ``divergences.py``): the *squared* MMD, no square root, with
  k_lap(x, y) = exp(−‖x − y‖₁ / σ)  and  k_gauss(x, y) = exp(−‖x − y‖₂² / σ).

Sampled KL (BRAC primal): D̂ = mean_i [log π(a_i|s) − log π_b(a_i|s)], a_i ~ π.

Dual forms (BRAC dual) with a critic c(s, a):

* kl: D̂ = −softplus(c(s, a_b)) + log(softplus(c(s, a_π)) + 1e-8) + 1
* w (Wasserstein): D̂ = c(s, a_π) − c(s, a_b)

The critic maximises D̂ minus a one-sided gradient penalty 5·mean(max(‖∇_a c(s, ã)‖₂ − 1, 0)²) at
ã = a_b + u·(a_π − a_b), u ~ U(0, 1) per row.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

KERNELS = ("laplacian", "gaussian")


def _pairwise(x, y, kernel: str):
    """Distances between every sample of x [..., n, d] and of y [..., m, d]: [..., n, m]."""
    diff = x[..., :, None, :] - y[..., None, :, :]
    if kernel == "laplacian":
        return jnp.sum(jnp.abs(diff), axis=-1)
    if kernel == "gaussian":
        return jnp.sum(diff**2, axis=-1)
    raise ValueError(f"unknown kernel {kernel!r}; known: {', '.join(KERNELS)}")


def mmd_bear(x, y, kernel: str = "laplacian", sigma: float = 20.0):
    """BEAR's MMD between samples x [..., n, d] and y [..., m, d] (see the module docstring): [...]."""
    k = lambda a, b: jnp.mean(jnp.exp(-_pairwise(a, b, kernel) / (2.0 * sigma)), axis=(-2, -1))
    return jnp.sqrt(k(x, x) + k(y, y) - 2.0 * k(x, y) + 1e-6)


def mmd_squared_brac(x, y, kernel: str = "laplacian", sigma: float = 20.0):
    """BRAC's squared MMD between samples x [..., n, d] and y [..., m, d] (no square root): [...]."""
    k = lambda a, b: jnp.mean(jnp.exp(-_pairwise(a, b, kernel) / sigma), axis=(-2, -1))
    return k(x, x) + k(y, y) - 2.0 * k(x, y)


def sampled_kl(log_p, log_q):
    """mean over the sample axis (the first) of log π(a_i) − log π_b(a_i), a_i ~ π."""
    return jnp.mean(log_p - log_q, axis=0)


def dual_kl(c_behavior, c_policy):
    """BRAC's dual estimate of KL from critic values at behavior and policy actions."""
    return -jax.nn.softplus(c_behavior) + jnp.log(jax.nn.softplus(c_policy) + 1e-8) + 1.0


def dual_w(c_behavior, c_policy):
    """The Wasserstein dual estimate c(s, a_π) − c(s, a_b)."""
    return c_policy - c_behavior


DUAL_FORMS = {"kl": dual_kl, "w": dual_w}


def gradient_penalty(critic_fn, obs, a_behavior, a_policy, key, coef: float = 5.0):
    """coef · mean(max(‖∇_a c(s, ã)‖₂ − 1, 0)²), ã a uniform interpolation between the two actions.
    ``critic_fn(obs, act) -> [B]``."""
    u = jax.random.uniform(key, a_behavior.shape[:-1] + (1,))
    a_mix = a_behavior + u * (a_policy - a_behavior)
    grads = jax.grad(lambda a: jnp.sum(critic_fn(obs, a)))(a_mix)
    norm = jnp.sqrt(jnp.sum(grads**2, axis=-1) + 1e-12)
    return coef * jnp.mean(jnp.maximum(norm - 1.0, 0.0) ** 2)
