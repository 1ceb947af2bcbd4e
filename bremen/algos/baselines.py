"""Value baselines for TRPO's advantages (ORIGINAL.md §5.4).

``linear`` (default, the original's LinearFeatureBaseline): V(s_t) = φ(o, t)ᵀ c with

    φ(o, t) = [clip(o, −10, 10), clip(o, −10, 10)², t/100, (t/100)², (t/100)³, 1],

o the observation normalized by the policy's running statistics and t the step index within the path,
refit from scratch on every iteration's paths by ridge regression (ΦᵀΦ + c·I) w = Φᵀy with c = 1e-5, and
c ×10 on a NaN solution (up to 5 attempts). The solve is done as the equivalent least-squares problem
[Φ; √c·I] w ≈ [y; 0] by QR, which keeps float32 accurate where the normal equations would not.

``mlp`` (the original's ``--param_value``): o → 200 → 200 → 1, tanh, normc init, Adam(3e-4, β1 0.5,
β2 0.99, ε 1e-4), 20 full-batch steps per fit on the MSE to the value targets, warm-started across fits.

Every fit takes per-row weights ``w`` (0 for rows outside the batch), so fixed-shape masked batches work.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from bremen.models.nets import mlp_apply, mlp_init

KINDS = ("linear", "mlp")


def linear_features(obs_n, t):
    """φ(o, t) for normalized observations ``obs_n [..., d]`` and step indices ``t [...]``."""
    o = jnp.clip(obs_n, -10.0, 10.0)
    tt = (jnp.asarray(t, jnp.float32) / 100.0)[..., None]
    return jnp.concatenate([o, o**2, tt, tt**2, tt**3, jnp.ones_like(tt)], axis=-1)


def linear_fit(obs_n, t, y, w, reg: float = 1e-5, attempts: int = 5):
    """Weighted ridge coefficients; ``reg`` ×10 while the solution has a NaN (at most ``attempts`` solves)."""
    phi = linear_features(obs_n, t).reshape(-1, 2 * obs_n.shape[-1] + 4)
    sw = jnp.sqrt(jnp.asarray(w, jnp.float32).reshape(-1, 1))
    a, b = phi * sw, y.reshape(-1, 1) * sw
    n_feat = a.shape[1]

    def solve(c):
        q, r = jnp.linalg.qr(jnp.concatenate([a, jnp.sqrt(c) * jnp.eye(n_feat)], 0))
        rhs = q.T @ jnp.concatenate([b, jnp.zeros((n_feat, 1))], 0)
        return jax.scipy.linalg.solve_triangular(r, rhs, lower=False)[:, 0]

    def cond(carry):
        i, coef = carry
        return (i < attempts) & jnp.any(jnp.isnan(coef))

    def body(carry):
        i, _ = carry
        return i + 1, solve(reg * 10.0**i)

    return jax.lax.while_loop(cond, body, (0, jnp.full((n_feat,), jnp.nan)))[1]


class MLPBaseline(NamedTuple):
    """Params and Adam state of the MLP value function."""

    params: list
    opt_state: optax.OptState


def _mlp_opt():
    return optax.adam(3e-4, b1=0.5, b2=0.99, eps=1e-4)


def mlp_baseline_init(key, obs_dim: int, hidden: Sequence[int] = (200, 200)) -> MLPBaseline:
    params = mlp_init(key, [obs_dim, *hidden, 1], "normc")
    return MLPBaseline(params, _mlp_opt().init(params))


def mlp_baseline_fit(b: MLPBaseline, obs_n, y, w, steps: int = 20) -> MLPBaseline:
    """``steps`` full-batch Adam steps on the weighted MSE."""
    w = w / jnp.maximum(jnp.sum(w), 1.0)

    def loss(p):
        return jnp.sum(w * (mlp_apply(p, obs_n, "tanh")[..., 0] - y) ** 2)

    def one(carry, _):
        p, s = carry
        updates, s = _mlp_opt().update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, updates), s), None

    return MLPBaseline(*jax.lax.scan(one, tuple(b), None, length=steps)[0])


def baseline_init(kind: str, key, obs_dim: int):
    """Initial baseline (linear: zero coefficients, so V = 0 at the first iteration as in the original)."""
    if kind == "linear":
        return jnp.zeros((2 * obs_dim + 4,), jnp.float32)
    if kind == "mlp":
        return mlp_baseline_init(key, obs_dim)
    raise ValueError(f"baseline must be one of {KINDS}, not {kind!r}")


def baseline_predict(kind: str, b, obs_n, t):
    """V(o, t) over any leading shape."""
    if kind == "linear":
        return linear_features(obs_n, t) @ b
    return mlp_apply(b.params, obs_n, "tanh")[..., 0]


def baseline_fit(kind: str, b, obs_n, t, y, w, reg: float = 1e-5):
    """Refit on flattened rows ``obs_n [N, d]``, ``t [N]``, targets ``y [N]``, weights ``w [N]``."""
    if kind == "linear":
        return linear_fit(obs_n, t, y, w, reg)
    return mlp_baseline_fit(b, obs_n, y, w)
