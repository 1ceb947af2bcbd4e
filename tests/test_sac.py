"""SAC: the tanh-Gaussian density, the TD target, the device replay buffer, K-step updates, and learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typing import NamedTuple

from bremen.algos.agent import Batch, Spec, actor_head, q_apply, log_std_from_raw, tanh_gaussian_log_prob, update_many
from bremen.algos.replay import ReplayBuffer
from bremen.algos.sac import SAC, SACConfig, td_target


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
    sac = SAC(Spec.of(3, 2, [-1.0, -2.0], [1.0, 2.0]), SACConfig(q_hidden=(8,), actor_hidden=(8,)))
    st = sac.init(jax.random.PRNGKey(0))
    obs = jnp.ones((5, 3))
    a, logp = sac.sample(st.actor, obs, jax.random.PRNGKey(1))
    mu, log_std = actor_head(st.actor, obs)
    u = jnp.arctanh((a - sac.spec.mid) / sac.spec.half)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(tanh_gaussian_log_prob(u, mu, log_std, sac.spec.half)),
                               rtol=1e-4, atol=1e-4)
    assert np.all(np.abs(np.asarray(a)) <= np.asarray(sac.spec.act_high))


def test_td_target_terminal_vs_truncation_by_hand():
    # y = r + γ(1 − terminal)(min_k Q̄_k(s', a') − α log π(a'|s'))
    r = jnp.array([1.0, 1.0, -0.5])
    terminal = jnp.array([0.0, 1.0, 0.0])  # row 0: ordinary, row 1: true termination, row 2: time-limit cut
    next_q_min = jnp.array([10.0, 10.0, 4.0])
    next_logp = jnp.array([-2.0, -2.0, 1.0])
    y = td_target(r, terminal, next_q_min, next_logp, alpha=0.5, discount=0.99)
    expected = [1.0 + 0.99 * (10.0 + 1.0), 1.0, -0.5 + 0.99 * (4.0 - 0.5)]
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6)


def _rows(lo, hi):
    i = np.arange(lo, hi, dtype=np.float32)
    return np.stack([i, i], 1), 0.1 * i[:, None], i, np.stack([i + 1, i + 1], 1), (i == 2).astype(np.float32)


def test_replay_buffer_wraps_keeps_sizes_and_round_trips_through_its_state():
    rb = ReplayBuffer(2, 1, capacity=4)
    assert rb.add(*_rows(0, 3)) == [1, 2, 3]
    assert rb.add(*_rows(3, 6)) == [4, 4, 4]  # rows 4, 5 overwrite slots 0, 1
    assert len(rb) == 4 and rb.ptr == 2
    np.testing.assert_array_equal(np.asarray(rb.data.rewards), [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(rb.data.terminals), [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(np.asarray(rb.data.next_observations)[:, 0], [5.0, 6.0, 3.0, 4.0])
    rb2 = ReplayBuffer(2, 1, capacity=4)
    rb2.load_state_dict(rb.state_dict())
    for a, b in zip(rb2.data, rb.data):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (rb2.ptr, rb2.size) == (rb.ptr, rb.size)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(2, 1, capacity=8).load_state_dict(rb.state_dict())


class _Recorder:
    """A stand-in agent whose update records the rewards of its minibatch (to see which rows it may draw)."""

    def update(self, state, batch):
        return state._replace(step=state.step + 1), {"max_reward": jnp.max(batch.rewards),
                                                     "min_reward": jnp.min(batch.rewards)}


class _RecState(NamedTuple):
    step: jax.Array
    key: jax.Array


def test_update_many_with_sizes_draws_update_j_only_from_the_first_sizes_j_rows():
    rb = ReplayBuffer(2, 1, capacity=16)
    rb.add(*_rows(0, 10))
    state = _RecState(jnp.asarray(0), jax.random.PRNGKey(0))
    for high in (1, 3, 10):
        _, info = update_many(_Recorder(), state, rb.data, 4, 256, jnp.full((4,), high, jnp.int32))
        assert float(info["max_reward"]) == high - 1 and float(info["min_reward"]) == 0.0


def _random_batches(k, b, obs_dim, act_dim, seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    return Batch(f(k, b, obs_dim), rng.uniform(-1, 1, (k, b, act_dim)).astype(np.float32), f(k, b), f(k, b, obs_dim),
                 (rng.random((k, b)) < 0.2).astype(np.float32), np.zeros((k, b, act_dim), np.float32))


def test_update_many_equals_k_single_updates_on_the_same_draws():
    sac = SAC(Spec.of(4, 2, -1.0, 1.0), SACConfig(q_hidden=(16, 16), actor_hidden=(16, 16), batch_size=8))
    st0 = sac.init(jax.random.PRNGKey(3))
    data = jax.tree.map(lambda x: x[0], _random_batches(1, 40, 4, 2))
    st_many, info_many = update_many(sac, st0, data, 5, 8)
    st, infos = st0, []
    update = jax.jit(sac.update)
    for _ in range(5):  # the same key splits as update_many's scan body
        key, k = jax.random.split(st.key)
        idx = jax.random.randint(k, (8,), 0, 40)
        st, info = update(st._replace(key=key), jax.tree.map(lambda a: a[idx], data))
        infos.append(info)
    for a, b in zip(jax.tree.leaves(st_many), jax.tree.leaves(st)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(st_many.step) == 5
    assert float(info_many["q_loss"]) == pytest.approx(np.mean([float(i["q_loss"]) for i in infos]), rel=1e-5)


def test_target_update_happens_before_the_gradient_step():
    tau = 0.1
    sac = SAC(Spec.of(3, 1, -1.0, 1.0), SACConfig(q_hidden=(8,), actor_hidden=(8,), tau=tau))
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
    sac = SAC(Spec.of(obs_dim, act_dim, -1.0, 1.0), SACConfig(q_hidden=(64, 64), actor_hidden=(64, 64),
                                                              batch_size=128, q_lr=1e-3, actor_lr=1e-3, alpha_lr=1e-3))
    obs = rng.uniform(-1, 1, (n, obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)
    rew = -np.sum((act - 0.6 * obs) ** 2, axis=-1).astype(np.float32)
    data = Batch(obs, act, rew, obs, np.ones(n, np.float32), np.zeros_like(act))
    st = sac.init(jax.random.PRNGKey(0))
    test_obs = rng.uniform(-1, 1, (256, obs_dim)).astype(np.float32)
    before = np.abs(np.asarray(sac.act(st, test_obs)) - 0.6 * test_obs).mean()
    st, _ = update_many(sac, st, data, 1500, 128)
    after = np.abs(np.asarray(sac.act(st, test_obs)) - 0.6 * test_obs).mean()
    q = np.asarray(q_apply(st.q, obs[:512], act[:512]))
    q_err = np.abs(q - rew[:512]).mean()
    assert q_err < 0.1, q_err
    assert after < 0.1 and after < before / 3, (before, after)
