"""Value baselines for TRPO's advantages.

``linear`` (default, the original's LinearFeatureBaseline): V(s_t) = φ(o, t)ᵀ c with

    φ(o, t) = [clip(o, −10, 10), clip(o, −10, 10)², t/100, (t/100)², (t/100)³, 1],

o the observation normalized by the policy's running statistics and t the step index within the path,
refit from scratch on every iteration's paths by ridge regression (ΦᵀΦ + c·I) w = Φᵀy with c = 1e-5, and
c ×10 on a NaN solution (up to 5 attempts). The original solved it in float64; here float32 with column
equilibration and iterative refinement (see :func:`linear_fit`).

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


def linear_fit(obs_n, t, y, w, reg: float = 1e-5, attempts: int = 5, refine: int = 2):
    """Weighted ridge coefficients; ``reg`` ×10 while the solution has a NaN (at most ``attempts`` solves).

    float32 without a float64 fallback: the columns are equilibrated (Φ = Ψ·D, D their RMS, which turns
    the ridge into (ΨᵀΨ + c·D⁻²) u = Ψᵀy with w = D⁻¹u, the same solution), solved by Cholesky, then
    improved by ``refine`` steps of iterative refinement with residuals taken from the data
    (corrected semi-normal equations), which recovers near-QR accuracy at the cost of a few mat-vecs.
    """
    sw = jnp.sqrt(jnp.asarray(w, jnp.float32).reshape(-1, 1))
    phi = linear_features(obs_n, t).reshape(-1, 2 * obs_n.shape[-1] + 4) * sw
    b = y.reshape(-1) * sw[:, 0]
    scale = jnp.sqrt(jnp.sum(phi**2, 0) / jnp.maximum(jnp.sum(w), 1.0))
    scale = jnp.where(scale > 0, scale, 1.0)
    psi = phi / scale
    gram, rhs = psi.T @ psi, psi.T @ b

    def solve(c):
        ridge = c / scale**2
        chol = jax.scipy.linalg.cho_factor(gram + jnp.diag(ridge))
        u = jax.scipy.linalg.cho_solve(chol, rhs)
        for _ in range(refine):
            u = u + jax.scipy.linalg.cho_solve(chol, psi.T @ (b - psi @ u) - ridge * u)
        return u / scale

    def cond(carry):
        i, coef = carry
        return (i < attempts) & jnp.any(jnp.isnan(coef))

    def body(carry):
        i, _ = carry
        return i + 1, solve(reg * 10.0**i)

    return jax.lax.while_loop(cond, body, (0, jnp.full((gram.shape[0],), jnp.nan)))[1]


class MLPBaseline(NamedTuple):
    """Params and Adam state of the MLP value function."""

    params: list
    opt_state: optax.OptState


def _mlp_opt():
    return optax.adam(3e-4, b1=0.5, b2=0.99, eps=1e-4)


def mlp_baseline_init(key, obs_dim: int, hidden: Sequence[int] = (200, 200)) -> MLPBaseline:
    """o → 200 → 200 → 1 (tanh hidden), normc init from ``key``, fresh Adam state."""
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
