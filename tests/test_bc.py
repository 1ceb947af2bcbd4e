"""Behavior cloning: learns a known policy, pushes σ to its floor (quirk 2), statistics from the BC data."""

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos.bc import BCConfig, bc_init, fit_bc
from bremen.models import normalizer as N
from bremen.models.policy import dist


def _data(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal([1.0, -2.0, 0.0, 5.0], [1.0, 0.5, 2.0, 3.0], (n, 4)).astype(np.float32)
    w = np.random.default_rng(123).normal(0, 0.6, (4, 2)).astype(np.float32)  # the same policy for every seed
    act = np.tanh(((obs - [1.0, -2.0, 0.0, 5.0]) / [1.0, 0.5, 2.0, 3.0]) @ w + [0.2, -0.1]).astype(np.float32)
    return obs, act


def test_bc_learns_linear_tanh_policy_and_sigma_floor():
    obs, act = _data()
    cfg = BCConfig(steps=3000, batch_size=256, lr=1e-3, hidden=(64, 64), steps_per_call=1000)
    calls = []
    state, losses = fit_bc(jax.random.PRNGKey(0), obs, act, cfg, callback=lambda s, l, st: calls.append((s, l)))
    assert [c[0] for c in calls] == [1000, 2000, 3000] and len(losses) == 3
    assert losses[-1] < losses[0]
    test_obs, test_act = _data(1000, seed=1)
    mu, log_std = dist(state.params, state.stats, jnp.asarray(test_obs))
    mse = float(jnp.mean((mu - test_act) ** 2))
    assert mse < 1e-3, mse  # the data's action variance is ≈ 0.3
    assert float(jnp.mean(log_std)) < -4.0  # the sampled-action MSE drives σ toward e⁻⁵


def test_bc_stats_from_bc_data_and_accumulate():
    obs, _ = _data(500)
    s1 = bc_init(jax.random.PRNGKey(0), obs, 2, BCConfig(hidden=(8,))).stats
    mean, _ = N.mean_std(s1)
    np.testing.assert_allclose(mean, obs.mean(0), rtol=1e-4, atol=1e-4)
    obs2 = obs + 10.0
    s2 = bc_init(jax.random.PRNGKey(0), obs2, 2, BCConfig(hidden=(8,)), stats=s1).stats
    both = np.concatenate([obs, obs2])
    np.testing.assert_allclose(N.mean_std(s2)[0], both.mean(0), rtol=1e-4, atol=1e-4)
    assert float(s2.count) == 1000


def test_bc_reinit_is_identical_and_adam_state_continues():
    obs, act = _data(600)
    cfg = BCConfig(steps=20, batch_size=32, hidden=(8,), steps_per_call=10)
    s1, _ = fit_bc(jax.random.PRNGKey(0), obs, act, cfg)
    fresh = bc_init(jax.random.PRNGKey(5), obs, 2, cfg)
    ref = bc_init(jax.random.PRNGKey(0), obs, 2, cfg)
    for a, b in zip(jax.tree.leaves(fresh.params), jax.tree.leaves(ref.params)):
        np.testing.assert_array_equal(a, b)  # normc seed 1234: same start at every fit
    s2, _ = fit_bc(jax.random.PRNGKey(1), obs, act, cfg, opt_state=s1.opt_state)
    assert int(s2.opt_state[0].count) == 40


def test_bc_clones_actions_of_a_task_with_wider_bounds():
    # a gymnasium task such as Pendulum-v1 acts in [-2, 2]: the policy's tanh mean spans the task's bounds
    obs, act = _data()
    act = 2.0 * act
    cfg = BCConfig(steps=3000, batch_size=256, lr=1e-3, hidden=(64, 64), steps_per_call=3000, act_low=-2.0,
                   act_high=2.0)
    state, _ = fit_bc(jax.random.PRNGKey(0), obs, act, cfg)
    test_obs, test_act = _data(1000, seed=1)
    mu, _ = dist(state.params, state.stats, jnp.asarray(test_obs), act_low=-2.0, act_high=2.0)
    mse = float(jnp.mean((mu - 2.0 * test_act) ** 2))
    assert mse < 4e-3, mse
    assert float(jnp.max(jnp.abs(mu))) > 1.2  # beyond what a [-1, 1] policy could reach
