"""The natural-gradient step of TRPO on weighted rows: conjugate gradient on Fisher products, δ-scaled step,
backtracking line search (§5.5 of ORIGINAL.md).

L(θ) = −mean_i[ π_θ(a_i|s_i)/π_old(a_i|s_i) · Â_i ], g = ∇L at θ_old, F = ∇²_θ mean KL(π_old ‖ π_θ) at θ_old
(computed exactly as Jᵀ M J, J the Jacobian of (μ, log σ) w.r.t. θ and M = diag(1/σ², 2) the Hessian of the
Gaussian KL in those outputs, with ``jax.linearize``/``jax.linear_transpose``), x = CG(F + λI, −g) with 10
iterations, s = x / sqrt(½ xᵀ(F + λI)x / δ) so the damped quadratic KL is δ, then fractions 1, ½, …, ½⁹ of
s; the first with actual improvement > 0 and actual/expected > 0.1 is taken, none → no change. No KL
check (quirk 10; ``line_search_kl`` adds one).

Passes of the policy per step, each once: a forward and backward over all rows at θ_old (in cache-sized
chunks; the old distribution and the gradient), a forward over the Fisher rows to linearize there, a JVP
and its transpose per Fisher product, a forward over all rows per line-search try (the surrogate and the KL
of the accepted try are both read from it). ``config`` is a :class:`bremen.algos.trpo.TRPOConfig`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bremen.models.policy import kl, log_prob


def conjugate_gradient(fvp, b, iters: int = 10, residual_tol: float = 1e-10):
    """Solve A x = b for SPD A given as ``fvp(v) = A v``, from x = 0; stops when rᵀr < residual_tol."""

    def cond(c):
        i, _, _, _, rr = c
        return (i < iters) & (rr >= residual_tol)

    def body(c):
        i, x, r, p, rr = c
        z = fvp(p)
        v = rr / (p @ z)
        x, r = x + v * p, r - v * z
        rr_new = r @ r
        return i + 1, x, r, r + (rr_new / rr) * p, rr_new

    return jax.lax.while_loop(cond, body, (0, jnp.zeros_like(b), b, b, b @ b))[1]


def _chunks(x, chunk: int):
    """``x [N, ...]`` as ``[⌈N/chunk⌉, chunk, ...]``, the last chunk zero-padded."""
    n_chunks = -(-x.shape[0] // chunk)
    pad = [(0, n_chunks * chunk - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return jnp.pad(x, pad).reshape(n_chunks, chunk, *x.shape[1:])


def _row_chunked(outputs, rows, w, chunk: int):
    """``(flat ↦ outputs(flat, rows), w)``, over chunks of ``chunk`` rows (one ``lax.map``; the padding rows get
    weight 0) when there are more rows, so that its linearization runs chunk by chunk (at 50k rows of the
    200-200 policy the 10 Fisher products of the conjugate gradient took 0.87× the time in chunks of 10k)."""
    if rows.shape[0] <= chunk:
        return (lambda flat: outputs(flat, rows)), w
    chunks = _chunks(rows, chunk)

    def chunked(flat):
        return jax.tree.map(lambda y: y.reshape(-1, y.shape[-1]), jax.lax.map(lambda x: outputs(flat, x), chunks))

    return chunked, jnp.pad(w, (0, chunks.shape[0] * chunk - w.shape[0]))


def fisher_rows(key, w, k: int):
    """Indices of the ⌈N/k⌉ rows of a Fisher subsample: a uniformly random subset of the rows with ``w > 0``,
    drawn without replacement (every such row when there are fewer, the rest padded with rows of weight 0)."""
    u = jax.random.uniform(key, w.shape)
    return jax.lax.top_k(-jnp.where(w > 0, u, u + 1.0), -(-w.shape[0] // k))[1]


def fisher_vector_product(outputs, flat0, w, damping: float):
    """``v ↦ (F + damping·I) v`` with F the Hessian at θ_old of Σ_i w_i KL(π_old(·|s_i) ‖ π_θ(·|s_i)).

    ``outputs(flat) -> (μ, log σ)`` on the batch. At θ = θ_old the KL's gradient in (μ, log σ) vanishes, so
    the Hessian is exactly Jᵀ M J with M = diag(w/σ_old², 2w): one linearized forward pass, then a JVP and
    its transpose per product. Returns ``((μ_old, log σ_old), fvp)``.
    """
    (mu0, ls0), f_jvp = jax.linearize(outputs, flat0)
    f_vjp = jax.linear_transpose(f_jvp, flat0)

    def fvp(v):
        dmu, dls = f_jvp(v)
        (fv,) = f_vjp((w[:, None] * dmu * jnp.exp(-2.0 * ls0), w[:, None] * 2.0 * dls))
        return fv + damping * v

    return (mu0, ls0), fvp


def surrogate_gradient(vjp, mu0, ls0, act, c):
    """∇_θ of the loss −Σ_i c_i π_θ(a_i|s_i)/π_old(a_i|s_i) at θ_old, through ``vjp``, the transpose of the
    outputs (μ, log σ) at θ_old: every ratio is 1 there, ∂ log π/∂μ = z/σ and ∂ log π/∂ log σ = z² − 1 with
    z = (a − μ)/σ, so no pass beyond that transpose is needed."""
    z = (act - mu0) * jnp.exp(-ls0)
    c = c[:, None]
    return -vjp((c * z * jnp.exp(-ls0), c * (z**2 - 1.0)))


def old_outputs_and_gradient(outputs, flat0, obs, act, c, chunk: int):
    """``(μ_old, log σ_old, g)`` on all rows: the outputs at θ_old and the gradient of :func:`surrogate_gradient`.

    One forward and one backward pass, fused per chunk of ``chunk`` rows inside a ``lax.scan`` so that a
    chunk's activations stay in cache between the two (at 20k rows of the 200-200 policy this takes ~0.6×
    the time of the whole-batch pass; padded rows carry c = 0). ``outputs(flat, obs) -> (μ, log σ)``.
    """

    def one(o, a, cc):
        (mu, ls), f_vjp = jax.vjp(lambda f: outputs(f, o), flat0)
        return surrogate_gradient(lambda ct: f_vjp(ct)[0], mu, ls, a, cc), (mu, ls)

    n = obs.shape[0]
    if chunk >= n:
        g, (mu, ls) = one(obs, act, c)
        return mu, ls, g

    def body(g, x):
        gc, out = one(*x)
        return g + gc, out

    g, (mu, ls) = jax.lax.scan(body, jnp.zeros_like(flat0), (_chunks(obs, chunk), _chunks(act, chunk), _chunks(c, chunk)))
    return mu.reshape(-1, mu.shape[-1])[:n], ls.reshape(-1, ls.shape[-1])[:n], g


def natural_gradient_step(params, lik, obs, act, adv, w, config, fisher_idx=None):
    """One TRPO step on weighted rows (``w``: 1 for rows in the batch mean, 0 for absent rows).

    ``lik(params, obs) -> (μ, log σ)``; ``fisher_idx``: rows of the Fisher matrix (None: all). Passes of the
    policy: one forward and backward over all rows at θ_old (the old distribution and the gradient), one
    forward over the Fisher rows to linearize there, a JVP and its transpose per Fisher product, and one
    forward over all rows per line-search try, which gives both the surrogate and the KL of the accepted
    step. Returns ``(params, info)``.
    """
    flat0, unravel = ravel_pytree(params)
    wn = w / jnp.sum(w)

    def outputs(flat, rows):
        return lik(unravel(flat), rows)

    mu0, ls0, g = old_outputs_and_gradient(outputs, flat0, obs, act, wn * adv, config.rows_per_chunk)
    rows, wf = (obs, wn) if fisher_idx is None else (obs[fisher_idx], w[fisher_idx] / jnp.sum(w[fisher_idx]))
    fisher_outputs, wf = _row_chunked(outputs, rows, wf, config.fisher_rows_per_chunk)
    _, fvp = fisher_vector_product(fisher_outputs, flat0, wf, config.cg_damping)
    logp0 = log_prob(mu0, ls0, act)
    surr0 = jnp.sum(wn * adv)  # the surrogate mean ratio·Â at θ_old, where every ratio is 1
    x = conjugate_gradient(fvp, -g, config.cg_iters, config.cg_residual_tol)
    step = x / jnp.sqrt(0.5 * (x @ fvp(x)) / config.target_kl)
    expected = -g @ step

    def evaluate(flat):
        """Surrogate and mean KL(π_old ‖ π_θ) at θ: one forward pass."""
        mu, ls = outputs(flat, obs)
        return jnp.sum(wn * jnp.exp(log_prob(mu, ls, act) - logp0) * adv), jnp.sum(wn * kl(mu0, ls0, mu, ls))

    def cond(c):
        return (c[0] < config.backtrack_iters) & ~c[1]

    def body(c):
        i = c[0]
        frac = config.backtrack_ratio ** i.astype(jnp.float32)
        surr, kl_new = evaluate(flat0 + frac * step)
        actual = surr - surr0
        ok = (actual > 0) & (actual / (frac * expected) > config.accept_ratio)
        if config.line_search_kl is not None:
            ok &= kl_new <= config.line_search_kl * config.target_kl
        return i + 1, ok, jnp.where(ok, frac, 0.0), jnp.where(ok, surr, surr0), jnp.where(ok, kl_new, 0.0)

    zero = jnp.zeros((), jnp.float32)
    _, _, frac, surr, kl_after = jax.lax.while_loop(cond, body, (0, jnp.array(False), zero, surr0, zero))
    info = {
        "surrogate_before": surr0,
        "surrogate_after": surr,
        "expected_improvement": expected,
        "kl_after": kl_after,
        "step_fraction": frac,
    }
    return unravel(flat0 + frac * step), info
