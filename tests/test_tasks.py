"""Built-in tasks: the real env's reward and termination equal the task's JAX functions."""

import subprocess
import sys

import numpy as np
import pytest

import bremen.tasks as T
from bremen.errors import UserError
from bremen.tasks.check import agreement, random_transitions

N_TRANSITIONS = 1500


@pytest.mark.parametrize("name", T.names())
def test_env_reward_and_termination_equal_task_functions(name):
    task = T.make(name)
    res = agreement(task, N_TRANSITIONS)
    d = res["data"]
    assert d["obs"].shape == (N_TRANSITIONS, task.obs_dim)
    assert np.max(np.abs(res["reward_fn"] - d["rew"])) <= 1e-4
    np.testing.assert_array_equal(res["termination_fn"], d["term"])
    if name in ("hopper", "walker2d"):
        assert d["term"].sum() >= 10, "random actions should end many episodes"
    else:
        assert not d["term"].any()


def test_reward_functions_batch_over_leading_dims():
    task = T.make("hopper")
    obs = np.zeros((4, 5, task.obs_dim), np.float32)
    act = np.zeros((4, 5, task.act_dim), np.float32)
    assert task.reward_fn(obs, act, obs).shape == (4, 5)
    assert task.termination_fn(obs).shape == (4, 5)


@pytest.mark.parametrize("name,index", [("hopper", slice(1, None)), ("walker2d", slice(1, None)), ("ant", slice(2, None))])
def test_observation_is_qpos_without_x_and_unclipped_qvel(name, index):
    task = T.make(name)
    env = task.make_env(seed=3)
    env.reset(seed=3)
    for _ in range(20):
        obs, *_ = env.step(np.ones(task.act_dim, np.float32))
    qpos, qvel = env.unwrapped.sim_state
    np.testing.assert_allclose(obs, np.concatenate([qpos[index], qvel]).astype(np.float32))


def test_cheetah_run_reward_is_dm_control_run_reward():
    from dm_control.utils import rewards

    speeds = np.array([-3.0, 0.0, 2.5, 9.99, 10.0, 14.0])
    obs = np.zeros((len(speeds), 18), np.float32)
    obs[:, 17] = speeds
    ours = np.asarray(T.make("cheetah_run").reward_fn(obs, np.zeros((6, 6)), obs))
    ref = [rewards.tolerance(s, bounds=(10, float("inf")), margin=10, value_at_margin=0, sigmoid="linear") for s in speeds]
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_same_seed_same_episode():
    task = T.make("half_cheetah")
    a = random_transitions(task, 50, seed=7)
    b = random_transitions(task, 50, seed=7)
    np.testing.assert_array_equal(a["next_obs"], b["next_obs"])


def test_time_limit_truncates_without_terminating():
    env = T.make("half_cheetah").make_env(seed=0)
    env.reset(seed=0)
    for t in range(1000):
        _, _, term, trunc, _ = env.step(np.zeros(6, np.float32))
        assert not term
    assert trunc and t == 999


def test_gymnasium_id_is_a_task_without_known_reward():
    task = T.make("Pendulum-v1")
    assert (task.obs_dim, task.act_dim, task.horizon) == (3, 1, 200)
    assert not task.known_reward and task.reward_fn is None and task.termination_fn is None
    obs, _ = task.make_env(seed=0).reset(seed=0)
    assert obs.dtype == np.float32
    assert T.make("hopper").known_reward


def test_unknown_task_is_a_user_error():
    with pytest.raises(UserError, match="unknown task 'hoper'"):
        T.make("hoper")


def test_cli_tasks_lists_builtin_tasks():
    out = subprocess.run([sys.executable, "-m", "bremen.cli", "tasks"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in T.names():
        assert name in out.stdout
    bad = subprocess.run([sys.executable, "-m", "bremen.cli", "tasks", "--task", "hoper"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "unknown task 'hoper'" in bad.stderr


def test_known_mujoco_deprecation_is_dropped_and_other_warnings_pass(tmp_path):
    import subprocess
    import sys

    code = ("import bremen.tasks as T\n"
            "for name in ('half_cheetah', 'cheetah_run'):\n"
            "    T.make(name).make_env().reset(seed=0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "settotalmass" not in out.stdout + out.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    from bremen.tasks.envs import _forward_mujoco_warning

    with pytest.warns(RuntimeWarning, match="MuJoCo: Nan, Inf or huge value"):
        _forward_mujoco_warning("Nan, Inf or huge value in QACC at DOF 0")
