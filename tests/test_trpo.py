"""TRPO math (CG, GAE, Fisher products, the δ-scaled step, the linear baseline) and a learning test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from bremen.algos import trpo_value as BL
from bremen.algos.natural_gradient import (conjugate_gradient, fisher_rows, fisher_vector_product,
                                           natural_gradient_step, old_outputs_and_gradient)
from bremen.algos.trpo import TRPOConfig, gae, trpo_init, trpo_iteration, trpo_run
from bremen.models import normalizer as N
from bremen.models import policy as P
from bremen.models.model_env import ModelEnv, rollout


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    a = jnp.asarray(q @ np.diag(np.linspace(0.5, 5.0, 12)) @ q.T, jnp.float32)
    b = jnp.asarray(rng.normal(size=12), jnp.float32)
    x = conjugate_gradient(lambda v: a @ v, b, iters=30)
    np.testing.assert_allclose(a @ x, b, atol=1e-4)
    x10 = conjugate_gradient(lambda v: a @ v, b, iters=10)  # 10 iterations: close, not necessarily exact
    assert float(jnp.linalg.norm(a @ x10 - b)) < 0.05 * float(jnp.linalg.norm(b))


def test_gae_matches_hand_computation():
    # one row, two paths: steps 0-1 end in a termination, steps 2-3 end at the time limit
    rew, v = jnp.array([[1.0], [2.0], [3.0], [4.0]]), jnp.array([[0.5], [0.6], [0.7], [0.8]])
    v_next, kl_t = jnp.array([[0.6], [0.7], [0.9], [1.0]]), jnp.array([[0.1], [0.2], [0.3], [0.4]])
    term, last = jnp.array([[0], [1], [0], [0]], bool), jnp.array([[0], [1], [0], [1]], bool)
    kw = dict(gamma=0.9, lam=0.8, kl_penalty=0.5)
    adv, targets = gae(rew, v, v_next, kl_t, term, last, **kw)
    # δ = r + γ V' − V − α KL with V' = 0 after a termination and (by default) after the time limit
    d = [1 + 0.9 * 0.6 - 0.5 - 0.05, 2 - 0.6 - 0.1, 3 + 0.9 * 0.9 - 0.7 - 0.15, 4 - 0.8 - 0.2]
    expected = [d[0] + 0.72 * d[1], d[1], d[2] + 0.72 * d[3], d[3]]
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(targets[:, 0], np.array(expected) + [0.5, 0.6, 0.7, 0.8], rtol=1e-6)
    boot, _ = gae(rew, v, v_next, kl_t, term, last, bootstrap_truncation=True, **kw)
    d3 = 4 + 0.9 * 1.0 - 0.8 - 0.2
    np.testing.assert_allclose(boot[:, 0], [expected[0], expected[1], d[2] + 0.72 * d3, d3], rtol=1e-6)


def _tiny_policy_problem(n=9):
    params = P.policy_init(jax.random.PRNGKey(0), 2, 2, (3,), init_seed=None, out_scale=1.0)
    stats = N.running_stats_init(2)
    obs = jax.random.normal(jax.random.PRNGKey(1), (n, 2))
    return params, stats, obs


def test_fisher_vector_product_equals_kl_hessian():
    params, stats, obs = _tiny_policy_problem()
    flat0, unravel = ravel_pytree(params)
    w = jax.random.uniform(jax.random.PRNGKey(2), (obs.shape[0],))
    w = w / w.sum()

    def outputs(flat):
        return P.dist(unravel(flat), stats, obs)

    mu0, ls0 = outputs(flat0)
    hess = jax.jit(jax.hessian(lambda f: jnp.sum(w * P.kl(mu0, ls0, *outputs(f)))))(flat0)
    fvp = jax.jit(jax.vmap(lambda v: fisher_vector_product(outputs, flat0, w, damping=0.1)[1](v)))
    vs = jax.random.normal(jax.random.PRNGKey(10), (3,) + flat0.shape)
    np.testing.assert_allclose(fvp(vs), vs @ hess.T + 0.1 * vs, rtol=2e-4, atol=1e-5)


def _at_sigma_floor(params):  # log σ(s) ≈ −5 everywhere, as BC leaves it (quirk 1)
    last = params[-1]
    return params[:-1] + [dict(last, b=last["b"].at[2:].set(-4.0))]


@pytest.mark.parametrize("chunk", [4, 100])
def test_gradient_pass_and_fisher_products_equal_autodiff_at_the_sigma_floor(chunk):
    # the iteration's passes (the gradient from the outputs' transpose, in chunks with the last one padded)
    # against jax.grad of the surrogate and jax.hessian of the mean KL, where σ(s) ≈ e⁻⁵ scales both badly
    params, stats, obs = _tiny_policy_problem()
    params = _at_sigma_floor(params)
    flat0, unravel = ravel_pytree(params)
    w = jax.random.uniform(jax.random.PRNGKey(2), (obs.shape[0],))
    w = w / w.sum()

    def outputs(flat, o=obs):
        return P.dist(unravel(flat), stats, o)

    mu0, ls0 = outputs(flat0)
    assert float(ls0.max()) < -4.9
    act = mu0 + 0.1 * jax.random.normal(jax.random.PRNGKey(4), mu0.shape)  # sampled with σ_g = 0.1 ≫ σ(s)
    adv = jax.random.normal(jax.random.PRNGKey(5), (obs.shape[0],))
    logp0 = P.log_prob(mu0, ls0, act)
    mu1, ls1, g = jax.jit(lambda: old_outputs_and_gradient(outputs, flat0, obs, act, w * adv, chunk))()
    np.testing.assert_allclose(mu1, mu0, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ls1, ls0, rtol=1e-6)
    g_ref = jax.grad(lambda f: -jnp.sum(w * adv * jnp.exp(P.log_prob(*outputs(f), act) - logp0)))(flat0)
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5 * float(jnp.abs(g_ref).max()))
    hess = jax.jit(jax.hessian(lambda f: jnp.sum(w * P.kl(mu0, ls0, *outputs(f)))))(flat0)
    fvp = jax.jit(jax.vmap(lambda v: fisher_vector_product(outputs, flat0, w, damping=0.1)[1](v)))
    vs = jax.random.normal(jax.random.PRNGKey(10), (3,) + flat0.shape)
    ref = vs @ hess.T + 0.1 * vs
    np.testing.assert_allclose(fvp(vs), ref, rtol=2e-4, atol=1e-5 * float(jnp.abs(ref).max()))


def test_fisher_rows_cover_every_rollout_and_skip_invalid_rows():
    # time-major rows of 250 steps × 80 rollouts with the tails of some rollouts invalid, k = 5
    n_steps, n_envs, k = 250, 80, 5
    valid = np.ones((n_steps, n_envs), bool)
    valid[200:, ::3] = False
    w = jnp.asarray(valid.reshape(-1), jnp.float32)
    rows = jax.jit(fisher_rows, static_argnums=2)
    seen = np.zeros(n_steps * n_envs, bool)
    for i in range(8):
        idx = np.asarray(rows(jax.random.fold_in(jax.random.PRNGKey(0), i), w, k))
        assert idx.shape == (n_steps * n_envs // k,) and len(np.unique(idx)) == idx.size  # without replacement
        assert valid.reshape(-1)[idx].all()  # more valid rows than the subsample: only valid rows taken
        envs = idx % n_envs
        assert len(np.unique(envs)) == n_envs  # every rollout in every iteration (obs[::5] took 16 of the 80)
        seen[idx] = True
        if i == 0:
            first = idx
    assert not np.array_equal(np.asarray(rows(jax.random.PRNGKey(1), w, k)), first)  # fresh rows per key
    assert seen[valid.reshape(-1)].mean() > 0.8  # 8 draws of a fifth: 1 − 0.8⁸ ≈ 83 % of the valid rows
    few = jnp.zeros(100).at[:7].set(1.0)  # fewer valid rows than the subsample: all of them, then weight-0 rows
    idx = np.asarray(rows(jax.random.PRNGKey(2), few, 5))
    assert set(range(7)) <= set(idx.tolist()) and idx.size == 20


def test_step_has_quadratic_kl_delta():
    params, stats, obs = _tiny_policy_problem(200)
    act = P.sample(params, stats, obs, jax.random.PRNGKey(3), sampling_std=1.0, const_sampling=False)
    adv = act[:, 0] - act[:, 1]
    adv = (adv - adv.mean()) / adv.std()
    cfg = TRPOConfig(target_kl=1e-3)
    lik = lambda p, o: P.dist(p, stats, o)  # noqa: E731
    w = jnp.ones(obs.shape[0])
    new, info = jax.jit(natural_gradient_step, static_argnums=(1, 6))(params, lik, obs, act, adv, w, cfg)
    assert float(info["step_fraction"]) == 1.0
    flat0, unravel = ravel_pytree(params)
    step = ravel_pytree(new)[0] - flat0
    quad = jax.jit(lambda s: s @ fisher_vector_product(lambda f: lik(unravel(f), obs), flat0, w / w.sum(),
                                                       cfg.cg_damping)[1](s))
    assert float(0.5 * quad(step)) == pytest.approx(1e-3, rel=1e-3)  # ½ sᵀ(F + λI)s = δ
    assert float(info["kl_after"]) == pytest.approx(1e-3, rel=0.3)  # the true KL is close to the quadratic model
    assert float(info["surrogate_after"]) > float(info["surrogate_before"])


def test_linear_baseline_fits_linear_target_exactly():
    rng = np.random.default_rng(0)
    obs_n = jnp.asarray(rng.uniform(-3, 3, (400, 3)), jnp.float32)
    t = jnp.asarray(rng.integers(0, 250, 400))
    coef = jnp.asarray(rng.normal(size=10), jnp.float32)
    y = BL.linear_features(obs_n, t) @ coef
    w = jnp.asarray(rng.uniform(size=400) > 0.2, jnp.float32)
    y_dirty = jnp.where(w > 0, y, 1e3)  # rows with weight 0 must not matter
    fit = BL.baseline_fit("linear", BL.baseline_init("linear", None, 3), obs_n, t, y_dirty, w)
    np.testing.assert_allclose(BL.baseline_predict("linear", fit, obs_n, t), y, atol=2e-3 * float(jnp.abs(y).max()))
    np.testing.assert_allclose(fit, coef, atol=0.02)


def test_linear_baseline_matches_float64_ridge():
    rng = np.random.default_rng(1)
    n, d = 20000, 11
    obs_n = rng.normal(0, 1.5, (n, d)).astype(np.float32)
    t = (np.arange(n) % 1000).astype(np.float32)  # H = 1000: (t/100)³ up to 1000, badly scaled columns
    y = (np.sin(t / 50) * 30 + obs_n[:, 0] ** 3 + rng.normal(0, 1, n)).astype(np.float32)
    w = (rng.uniform(size=n) > 0.1).astype(np.float32)
    phi = np.asarray(BL.linear_features(obs_n, t), np.float64)
    ref = np.linalg.solve((phi * w[:, None]).T @ phi + 1e-5 * np.eye(phi.shape[1]), (phi * w[:, None]).T @ y)
    coef = np.asarray(jax.jit(BL.linear_fit)(obs_n, t, y, w))
    np.testing.assert_allclose(phi @ coef, phi @ ref, rtol=0, atol=1e-4 * np.abs(phi @ ref).max())


def test_mlp_baseline_fit_reduces_error():
    obs_n = jax.random.normal(jax.random.PRNGKey(0), (256, 3))
    y = jnp.tanh(obs_n[:, 0])
    b = BL.baseline_init("mlp", jax.random.PRNGKey(1), 3)
    err = lambda b: float(jnp.mean((BL.baseline_predict("mlp", b, obs_n, None) - y) ** 2))  # noqa: E731
    before = err(b)
    fit = jax.jit(lambda b: BL.baseline_fit("mlp", b, obs_n, None, y, jnp.ones(256)))
    for _ in range(5):
        b = fit(b)
    assert err(b) < 0.5 * before


# A 1-D point mass x' = x + 0.1·a as an exactly linear "ensemble", reward −|x' − 1|.
def _linear_ensemble(b, n_members=2):
    """ReLU MLP computing exactly delta = z @ b for z = [obs, act]: h1 = relu([z, −z]), h2 = h1, out = h2 @ [b; −b]."""
    n_in = b.shape[0]
    layers = [
        {"w": jnp.concatenate([jnp.eye(n_in), -jnp.eye(n_in)], 1), "b": jnp.zeros(2 * n_in)},
        {"w": jnp.eye(2 * n_in), "b": jnp.zeros(2 * n_in)},
        {"w": jnp.concatenate([b, -b], 0), "b": jnp.zeros(b.shape[1])},
    ]
    return jax.tree.map(lambda p: jnp.stack([p] * n_members), layers)


ENS = _linear_ensemble(jnp.array([[0.0], [0.1]]))
NORM = N.identity_normalization(1, 1)
ENV = ModelEnv(lambda s, a, s2: -jnp.abs(s2[..., 0] - 1.0))
START = jnp.linspace(-1.0, 0.5, 64)[:, None]
STATS = N.update(N.running_stats_init(1), START)
# fixed sampling std 0.3 used for the likelihood too (quirk 1 off): a well-posed problem whose optimum is known
CFG = TRPOConfig(batch_size=640, horizon=20, target_kl=0.1, sampling_std=0.3, const_sampling=True,
                 consistent_likelihood=True)


def _return(policy):
    roll = rollout(policy, STATS, ENS, NORM, START, jax.random.PRNGKey(1), env=ENV, n_envs=64, horizon=20,
                   deterministic=True)
    return float(roll.rewards.sum(0).mean())


def test_trpo_improves_point_mass_return():
    policy = P.policy_init(jax.random.PRNGKey(0), 1, 1, (32, 32), init_seed=None)
    state = trpo_init(policy, STATS, policy, STATS, ENS, NORM, START, jax.random.PRNGKey(0), CFG)
    init_return = _return(state.policy)
    for k in jax.random.split(jax.random.PRNGKey(1), 20):
        state, info = trpo_iteration(state, k, config=CFG, env=ENV)
    final_return = _return(state.policy)
    assert init_return < -24.0  # standing still: ≈ −25
    assert final_return > -10.0, (init_return, final_return)  # full speed to the goal, then stay: ≈ −8.3
    assert int(state.iteration) == 20
    assert float(info["behavior_policy_kl_mean"]) > 0.0  # moved away from the (here: initial) behavior policy


def test_trpo_learns_in_bremens_default_setting_from_a_bc_like_start():
    # BREMEN's default (quirk 1): a = μ(s) + 0.1·𝒩(0, 1), while the ratios, the Fisher matrix and the KL use the
    # network's σ(s), which BC leaves at its floor e⁻⁵. A one-step problem, r = −(a − 0.05)², from μ ≈ 0: the
    # ratios of actions drawn ~15 σ(s) away from μ blow up, the line search takes ~⅛ of the natural step and μ
    # moves by ~3e-4 per iteration (measured), so 150 iterations close most of the gap.
    env = ModelEnv(lambda s, a, s2: -jnp.sum((a - 0.05) ** 2, -1))
    cfg = TRPOConfig(batch_size=640, horizon=1, target_kl=0.1)
    assert cfg.const_sampling and cfg.sampling_std == 0.1 and not cfg.consistent_likelihood
    policy = P.policy_init(jax.random.PRNGKey(0), 1, 1, (32, 32), init_seed=None)
    policy = policy[:-1] + [dict(policy[-1], b=policy[-1]["b"].at[1:].set(-4.0))]
    assert float(P.dist(policy, STATS, START)[1].max()) < -4.9  # σ(s) at its floor

    def mu(p):
        return P.dist(p, STATS, START)[0][:, 0]

    state = trpo_init(policy, STATS, policy, STATS, ENS, NORM, START, jax.random.PRNGKey(0), cfg)
    state, info = jax.jit(lambda s, k: trpo_run(s, k, config=cfg, env=env, n_iters=150))(state, jax.random.PRNGKey(1))
    before, after = float(jnp.mean((mu(policy) - 0.05) ** 2)), float(jnp.mean((mu(state.policy) - 0.05) ** 2))
    assert before > 2e-3, before
    assert after < 0.2 * before, (before, after)  # 80 % of the way to the best action (measured: 86 %)
    assert bool(jnp.all(jnp.abs(mu(state.policy) - 0.05) < jnp.abs(mu(policy) - 0.05)))  # closer at every state
    assert float(np.min(np.asarray(info["step_fraction"]))) > 0  # every step accepted
    assert float(np.max(np.asarray(info["kl_after"]))) < 2 * cfg.target_kl


def test_iteration_is_one_compiled_call():
    policy = P.policy_init(jax.random.PRNGKey(0), 1, 1, (32, 32), init_seed=None)
    state = trpo_init(policy, STATS, policy, STATS, ENS, NORM, START, jax.random.PRNGKey(0), CFG)
    jaxpr = str(jax.make_jaxpr(lambda s, k: trpo_iteration(s, k, config=CFG, env=ENV))(state, jax.random.PRNGKey(0)))
    assert "callback" not in jaxpr
    before = trpo_iteration._cache_size()
    for k in range(2):
        state, _ = trpo_iteration(state, jax.random.PRNGKey(k), config=CFG, env=ENV)
    assert trpo_iteration._cache_size() - before <= 1  # at most one compilation (none if already compiled)
