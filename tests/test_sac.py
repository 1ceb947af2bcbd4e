"""SAC: the tanh-Gaussian density, the TD target, the replay buffer, K-step updates, and learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos.sac import SAC, SACConfig, log_std_from_raw, tanh_gaussian_log_prob, td_target
from bremen.data.replay import ReplayBuffer


def test_log_std_squash_covers_minus5_to_0():
    raw = jnp.array([-50.0, -1.0, 0.0, 1.0, 50.0])
    ls = np.asarray(log_std_from_raw(raw, -5.0, 0.0))
    assert ls[0] == pytest.approx(-5.0) and ls[-1] == pytest.approx(0.0)
    assert ls[2] == pytest.approx(-2.5)
    assert np.all(np.diff(ls) > 0)


def test_tanh_gaussian_log_prob_matches_change_of_variables_numerically():
    """p_A(a) = p_U(u(a))·|du/da| with u(a) = atanh((a − m)/h); du/da by central differences."""
    mu, log_std, low, high = 0.3, -0.7, -2.0, 3.0
    m, h = (high + low) / 2, (high - low) / 2
    a = np.linspace(low + 0.05, high - 0.05, 41)
    u_of = lambda x: np.arctanh((x - m) / h)  # noqa: E731
    eps = 1e-5
    du_da = (u_of(a + eps) - u_of(a - eps)) / (2 * eps)
    sigma = np.exp(log_std)
    u = u_of(a)
    p_u = np.exp(-0.5 * ((u - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    expected = np.log(p_u * du_da)
    got = tanh_gaussian_log_prob(jnp.asarray(u[:, None], jnp.float64 if jax.config.x64_enabled else jnp.float32),
                                 jnp.full((41, 1), mu), jnp.full((41, 1), log_std), jnp.array([h]))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)


def test_tanh_gaussian_density_integrates_to_one_and_sums_over_dims():
    mu, log_std, h = -0.4, -1.2, 1.0
    a = np.linspace(-1 + 1e-6, 1 - 1e-6, 400_001)
    u = np.arctanh(a)
    lp = tanh_gaussian_log_prob(jnp.asarray(u[:, None]), jnp.full((len(a), 1), mu), jnp.full((len(a), 1), log_std),
                                jnp.array([h]))
    assert np.trapezoid(np.exp(np.asarray(lp, np.float64)), a) == pytest.approx(1.0, abs=2e-3)
    # independent dimensions: the joint log-density is the sum of the per-dimension ones
    u2 = jnp.array([[0.1, -0.5]])
    mu2, ls2, h2 = jnp.array([[0.0, 0.2]]), jnp.array([[-1.0, -2.0]]), jnp.array([1.0, 2.0])
    joint = tanh_gaussian_log_prob(u2, mu2, ls2, h2)
    parts = sum(tanh_gaussian_log_prob(u2[:, i:i + 1], mu2[:, i:i + 1], ls2[:, i:i + 1], h2[i:i + 1]) for i in range(2))
    np.testing.assert_allclose(np.asarray(joint), np.asarray(parts), rtol=1e-6)


def test_sampled_log_prob_is_the_density_of_the_sample():
    sac = SAC(3, 2, [-1.0, -2.0], [1.0, 2.0], SACConfig(q_hidden=(8,), actor_hidden=(8,)))
    st = sac.init(jax.random.PRNGKey(0))
    obs = jnp.ones((5, 3))
    a, logp = sac.sample_action(st.actor, obs, jax.random.PRNGKey(1))
    mu, log_std = sac.actor_head(st.actor, obs)
    u = jnp.arctanh((a - sac.act_mid) / sac.act_half)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(tanh_gaussian_log_prob(u, mu, log_std, sac.act_half)),
                               rtol=1e-4, atol=1e-4)
    assert np.all(np.abs(np.asarray(a)) <= sac.act_high)


def test_td_target_terminal_vs_truncation_by_hand():
    # y = r + γ(1 − terminal)(min_k Q̄_k(s', a') − α log π(a'|s'))
    r = jnp.array([1.0, 1.0, -0.5])
    terminal = jnp.array([0.0, 1.0, 0.0])  # row 0: ordinary, row 1: true termination, row 2: time-limit cut
    next_q_min = jnp.array([10.0, 10.0, 4.0])
    next_logp = jnp.array([-2.0, -2.0, 1.0])
    y = td_target(r, terminal, next_q_min, next_logp, alpha=0.5, discount=0.99)
    expected = [1.0 + 0.99 * (10.0 + 1.0), 1.0, -0.5 + 0.99 * (4.0 - 0.5)]
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6)


def test_replay_buffer_keeps_terminals_and_timeouts_apart_and_only_terminals_reach_the_batch():
    rb = ReplayBuffer(2, 1, capacity=4)
    for i in range(6):  # wraps around: rows 4, 5 overwrite slots 0, 1
        rb.add([i, i], [0.1 * i], float(i), [i + 1, i + 1], terminal=(i == 2), timeout=(i == 3))
    assert len(rb) == 4 and rb.ptr == 2
    np.testing.assert_array_equal(rb.rew, [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(rb.terminal, [False, False, True, False])
    np.testing.assert_array_equal(rb.timeout, [False, False, False, True])
    batch = rb.sample(np.random.default_rng(0), 64)
    assert set(batch) == {"obs", "act", "rew", "next_obs", "terminal"}
    np.testing.assert_array_equal(batch["terminal"], batch["rew"] == 2.0)
    stacked = rb.sample(np.random.default_rng(0), 8, k=3, sizes=[1, 2, 4])
    assert stacked["obs"].shape == (3, 8, 2)
    assert np.all(stacked["rew"][0] == 4.0) and set(stacked["rew"][1]) <= {4.0, 5.0}
    rb2 = ReplayBuffer(2, 1, capacity=4)
    rb2.load_state_dict(rb.state_dict())
    for f in ReplayBuffer.FIELDS:
        np.testing.assert_array_equal(getattr(rb2, f), getattr(rb, f))
    assert (rb2.ptr, rb2.size) == (rb.ptr, rb.size)


def _random_batches(k, b, obs_dim, act_dim, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(size=(k, b, obs_dim)).astype(np.float32),
        "act": rng.uniform(-1, 1, (k, b, act_dim)).astype(np.float32),
        "rew": rng.normal(size=(k, b)).astype(np.float32),
        "next_obs": rng.normal(size=(k, b, obs_dim)).astype(np.float32),
        "terminal": rng.random((k, b)) < 0.2,
    }


def test_update_many_equals_k_single_updates():
    sac = SAC(4, 2, -1.0, 1.0, SACConfig(q_hidden=(16, 16), actor_hidden=(16, 16), batch_size=8))
    st0 = sac.init(jax.random.PRNGKey(3))
    batches = _random_batches(5, 8, 4, 2)
    st_many, info_many = sac.update_many(st0, batches)
    st, infos = st0, []
    for j in range(5):
        st, info = sac.update(st, jax.tree.map(lambda x: x[j], batches))
        infos.append(info)
    for a, b in zip(jax.tree.leaves(st_many), jax.tree.leaves(st)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(st_many.step) == 5
    assert float(info_many["q_loss"]) == pytest.approx(np.mean([float(i["q_loss"]) for i in infos]), rel=1e-5)


def test_target_update_happens_before_the_gradient_step():
    tau = 0.1
    sac = SAC(3, 1, -1.0, 1.0, SACConfig(q_hidden=(8,), actor_hidden=(8,), tau=tau))
    st = sac.init(jax.random.PRNGKey(0))
    st = st._replace(q_target=jax.tree.map(jnp.zeros_like, st.q))
    new, _ = sac.update(st, jax.tree.map(lambda x: x[0], _random_batches(1, 8, 3, 1)))
    for t_new, q_old in zip(jax.tree.leaves(new.q_target), jax.tree.leaves(st.q)):
        np.testing.assert_allclose(np.asarray(t_new), tau * np.asarray(q_old), rtol=1e-6, atol=1e-7)


def test_learns_a_one_step_bandit_fast():
    """Contextual bandit (every transition terminal): Q must fit r(s, a) = −Σ(a − a*(s))², the actor's
    deterministic action must move to a*(s) = 0.6·s."""
    obs_dim, act_dim, n = 2, 2, 4096
    rng = np.random.default_rng(0)
    sac = SAC(obs_dim, act_dim, -1.0, 1.0, SACConfig(q_hidden=(64, 64), actor_hidden=(64, 64), batch_size=128,
                                                      q_lr=1e-3, actor_lr=1e-3, alpha_lr=1e-3))
    obs = rng.uniform(-1, 1, (n, obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)
    rew = -np.sum((act - 0.6 * obs) ** 2, axis=-1).astype(np.float32)
    st = sac.init(jax.random.PRNGKey(0))
    test_obs = rng.uniform(-1, 1, (256, obs_dim)).astype(np.float32)
    before = np.abs(np.asarray(sac.deterministic_action(st.actor, test_obs)) - 0.6 * test_obs).mean()
    for _ in range(15):
        idx = rng.integers(0, n, (100, 128))
        batches = {"obs": obs[idx], "act": act[idx], "rew": rew[idx], "next_obs": obs[idx],
                   "terminal": np.ones((100, 128), bool)}
        st, info = sac.update_many(st, batches)
    after = np.abs(np.asarray(sac.deterministic_action(st.actor, test_obs)) - 0.6 * test_obs).mean()
    q = np.asarray(sac.q_values(st.q, obs[:512], act[:512]))
    q_err = np.abs(q - rew[:512]).mean()
    assert q_err < 0.1, q_err
    assert after < 0.1 and after < before / 3, (before, after)
