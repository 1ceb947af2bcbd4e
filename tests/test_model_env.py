"""Model env: member choice, action clipping, termination masks, auto-reset, the original's padded batch."""

import jax
import jax.numpy as jnp
import numpy as np

from bremen.models import normalizer as N
from bremen.models import policy as P
from bremen.models.dynamics import DynamicsConfig, ensemble_init
from bremen.models.model_env import ModelEnv, Rollout, padded_rows, rollout

OBS, ACT = 2, 1
NORM = N.identity_normalization(OBS, ACT)
POLICY = P.policy_init(None, OBS, ACT, (8,))
STATS = N.running_stats_init(OBS)
START = jnp.zeros((4, OBS))


def const_ensemble(deltas, learn_reward=False, reward=0.0):
    """Member k predicts the constant delta ``deltas[k]`` (and the constant reward ``reward``)."""
    cfg = DynamicsConfig(ensemble_size=len(deltas), hidden=4, learn_reward=learn_reward)
    params = jax.tree.map(jnp.zeros_like, ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg).params)
    bias = jnp.repeat(jnp.asarray(deltas, jnp.float32)[:, None], OBS, 1)
    if learn_reward:
        bias = jnp.concatenate([bias, jnp.full((len(deltas), 1), reward)], 1)
    params[-1]["b"] = bias
    return params


def _roll(ens, env, n_envs=3, horizon=10, n_steps=None, **kw):
    return rollout(POLICY, STATS, ens, NORM, START, jax.random.PRNGKey(0), env=env, n_envs=n_envs, horizon=horizon,
                   n_steps=n_steps, **kw)


def test_one_member_per_step_for_the_whole_batch():
    ens = const_ensemble([1.0, 2.0, 3.0, 4.0])
    roll = _roll(ens, ModelEnv(lambda s, a, s2: s2[..., 0]), n_envs=16, horizon=200)
    members = np.asarray(roll.next_observations - roll.observations)[..., 0]  # [T, n]: the member's delta
    assert np.all(members == members[:, :1])  # one member for all rollouts at each step
    counts = np.bincount(members[:, 0].astype(int), minlength=5)[1:]
    assert np.all(counts > 25)  # uniform over the 4 members (50 expected each)


def test_per_rollout_member_choice():
    ens = const_ensemble([1.0, 2.0, 3.0, 4.0])
    roll = _roll(ens, ModelEnv(lambda s, a, s2: s2[..., 0], member_mode="rollout"), n_envs=16, horizon=50)
    members = np.asarray(roll.next_observations - roll.observations)[..., 0]
    assert np.mean(members != members[:, :1]) > 0.5
    assert set(np.unique(members)) == {1.0, 2.0, 3.0, 4.0}


def test_actions_clipped_before_model_and_reward():
    env = ModelEnv(lambda s, a, s2: a[..., 0], act_low=-1.0, act_high=1.0)
    roll = _roll(const_ensemble([0.0]), env, n_envs=50, horizon=10, sampling_std=5.0)
    assert float(jnp.abs(roll.actions).max()) > 2.0  # the stored sample is not clipped (its likelihood is used)
    np.testing.assert_allclose(roll.rewards, jnp.clip(roll.actions[..., 0], -1, 1))
    # a model that reads the action sees the clipped one
    cfg = DynamicsConfig(ensemble_size=1, hidden=4)
    lin = jax.tree.map(jnp.zeros_like, ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg).params)
    lin[0]["w"] = lin[0]["w"].at[0, OBS, 0].set(1.0)  # h = relu(a)
    lin[1]["w"] = lin[1]["w"].at[0, 0, 0].set(1.0)
    lin[2]["w"] = lin[2]["w"].at[0, 0, :].set(1.0)
    s2, _, _ = jax.jit(env.step)(lin, NORM, jnp.zeros((2, OBS)), jnp.array([[5.0], [0.5]]), jax.random.PRNGKey(0))
    np.testing.assert_allclose(s2[:, 0], [1.0, 0.5])


def test_next_state_clipped():
    step = jax.jit(ModelEnv(lambda s, a, s2: s2[..., 0]).step)
    s2, _, _ = step(const_ensemble([1e7]), NORM, jnp.zeros((2, OBS)), jnp.zeros((2, ACT)), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(s2, 1e5)


def test_termination_masks_and_auto_reset():
    env = ModelEnv(lambda s, a, s2: jnp.ones(s.shape[:-1]), lambda s2: s2[..., 0] >= 3.0)
    roll = _roll(const_ensemble([1.0]), env, n_envs=2, horizon=10)  # s' = t + 1: terminates at t = 2
    np.testing.assert_array_equal(roll.t[:, 0], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(np.nonzero(roll.terminals[:, 0])[0], [2, 5, 8])
    np.testing.assert_array_equal(np.nonzero(roll.last[:, 0])[0], [2, 5, 8, 9])  # + the scan's end
    assert not roll.timeouts.any()
    np.testing.assert_array_equal(roll.valid[:, 0], [1] * 9 + [0])  # the unfinished episode is dropped
    np.testing.assert_array_equal(roll.observations[3, 0], START[0])  # restarted from a start state
    kept = _roll(const_ensemble([1.0]), env, n_envs=2, horizon=10, keep_unfinished=True)
    assert kept.valid.all()
    single = _roll(const_ensemble([1.0]), env, n_envs=2, horizon=10, auto_reset=False)
    np.testing.assert_array_equal(single.valid[:, 0], [1, 1, 1] + [0] * 7)  # the row is masked after it ends


def test_time_limit_truncation():
    env = ModelEnv(lambda s, a, s2: jnp.ones(s.shape[:-1]))
    roll = _roll(const_ensemble([1.0]), env, n_envs=2, horizon=4, n_steps=10)
    np.testing.assert_array_equal(np.nonzero(roll.timeouts[:, 0])[0], [3, 7])
    np.testing.assert_array_equal(roll.valid[:, 0], [1] * 8 + [0, 0])
    assert not roll.terminals.any()
    full = _roll(const_ensemble([1.0]), env, n_envs=2, horizon=4)  # no terminations, n_steps = H: all valid
    assert full.valid.all() and full.timeouts[-1].all()


def test_learned_reward_head_used_without_reward_fn():
    ens = const_ensemble([1.0, 1.0], learn_reward=True, reward=2.5)
    roll = _roll(ens, ModelEnv(None), n_envs=3, horizon=5)
    np.testing.assert_allclose(roll.rewards, 2.5)
    roll = _roll(ens, ModelEnv(None, member_mode="rollout"), n_envs=3, horizon=5)
    np.testing.assert_allclose(roll.rewards, 2.5)


def _reference_padded(lengths_by_row, n_steps, batch):
    """The original's assembly by hand: completed paths in completion order, zero-padded, flattened, cut."""
    paths = []  # (end_t, row, [ids])
    for i, lengths in enumerate(lengths_by_row):
        t0 = 0
        for length in lengths:
            if t0 + length <= n_steps:
                paths.append((t0 + length - 1, i, [(t0 + k) * len(lengths_by_row) + i + 1 for k in range(length)]))
            t0 += length
    paths.sort(key=lambda p: (p[0], p[1]))
    longest = max(len(p[2]) for p in paths)
    flat = np.concatenate([p[2] + [0] * (longest - len(p[2])) for p in paths])
    return flat[:batch], min(batch, len(flat))


def test_padded_rows_match_original_assembly():
    rng = np.random.default_rng(0)
    n_steps, n_envs, horizon = 30, 5, 12
    lengths_by_row = []
    for _ in range(n_envs):
        lengths, total = [], 0
        while total < n_steps:
            lengths.append(int(rng.integers(1, horizon + 1)))
            total += lengths[-1]
        lengths_by_row.append(lengths)
    t = np.zeros((n_steps, n_envs), np.int32)
    ends = np.zeros((n_steps, n_envs), bool)
    for i, lengths in enumerate(lengths_by_row):
        pos = 0
        for length in lengths:
            for k in range(length):
                if pos + k < n_steps:
                    t[pos + k, i] = k
            if pos + length <= n_steps:
                ends[pos + length - 1, i] = True
            pos += length
    trunc = ends & (t + 1 == horizon)
    term = ends & ~trunc
    valid = np.flip(np.cumsum(np.flip(ends, 0), 0), 0) > 0
    ids = (np.arange(n_steps)[:, None] * n_envs + np.arange(n_envs) + 1).astype(np.float32)
    roll = Rollout(jnp.asarray(ids)[..., None], None, None, None, jnp.asarray(term), jnp.asarray(trunc), None,
                   jnp.asarray(t), jnp.asarray(valid), None, None)
    rows = jax.jit(padded_rows, static_argnums=1)
    for batch in (40, 97, 400):
        t_idx, e_idx, real, weight = rows(roll, batch)
        got = np.where(real, ids[t_idx, e_idx], 0)
        expected, n_rows = _reference_padded(lengths_by_row, n_steps, batch)
        np.testing.assert_array_equal(got[: len(expected)], expected)
        np.testing.assert_array_equal(weight, np.arange(batch) < n_rows)


def test_per_dimension_action_bounds_are_static_and_clip_each_dimension():
    from bremen.models.model_env import static_bound

    assert static_bound(np.array([-2.0, -2.0], np.float32)) == -2.0
    assert static_bound(np.array([-1.0, -0.5])) == (-1.0, -0.5)
    env = ModelEnv(lambda s, a, s2: a[..., 1], None, act_low=(-1.0, -0.5), act_high=(1.0, 0.5))
    hash(env)  # a jit static argument
    cfg = DynamicsConfig(ensemble_size=1, hidden=4)
    ens = jax.tree.map(jnp.zeros_like, ensemble_init(jax.random.PRNGKey(0), OBS, 2, cfg).params)
    _, rew, _ = env.step(ens, N.identity_normalization(OBS, 2), jnp.zeros((2, OBS)),
                         jnp.array([[3.0, 3.0], [-3.0, -3.0]]), jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(rew), [0.5, -0.5])
