"""Task registry: ``bremen.tasks.make(name)`` and ``bremen.tasks.names()``.

Built-in tasks (``half_cheetah``, ``hopper``, ``walker2d``, ``ant``, ``cheetah_run``) have known reward and
termination functions that a learned model can evaluate. Any other registered gymnasium id (for example
``Hopper-v5``) can be named too; it then has no known reward function (``task.known_reward`` is False).
"""

from __future__ import annotations

import functools

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
from gymnasium.wrappers import TimeLimit

from bremen.errors import UserError
from bremen.tasks import functions as F
from bremen.tasks.base import Task
from bremen.tasks.envs import DMCCheetahRunEnv, Float32Obs, MujocoTaskEnv

__all__ = ["Task", "make", "names", "BUILTIN"]

HORIZON = 1000

# Mean return of uniform random actions (full episodes, 1000-step limit), measured with
# `python bench/random_returns.py` (200 episodes per task, seeds 0..199); see docs/tasks.md.
RANDOM_RETURNS = {
    "half_cheetah": -286.9,
    "hopper": 18.2,
    "walker2d": 2.2,
    "ant": 492.9,
    "cheetah_run": 3.8,
}


def _qpos1(qpos, qvel):
    return np.concatenate([qpos[1:], qvel])


def _qpos2(qpos, qvel):
    return np.concatenate([qpos[2:], qvel])


# name: (gymnasium model id, gym kwargs, obs_fn, obs_dim, act_dim, reward, termination, description)
_MUJOCO = {
    "half_cheetah": ("HalfCheetah-v5", {}, _qpos1, 17, 6, F.half_cheetah_reward, F.never_terminates,
                     "HalfCheetah; r = v_x(s) - 0.1|a|^2; no termination"),
    "hopper": ("Hopper-v5", {}, _qpos1, 11, 3, F.hopper_reward, F.hopper_termination,
               "Hopper; r = v_x(s') + 1 - 1e-3|a|^2; terminates when unhealthy"),
    "walker2d": ("Walker2d-v5", {}, _qpos1, 17, 6, F.walker2d_reward, F.walker2d_termination,
                 "Walker2d; r = v_x(s') + 1 - 1e-3|a|^2; terminates when unhealthy"),
    "ant": ("Ant-v5", {"include_cfrc_ext_in_observation": False}, _qpos2, 27, 8, F.ant_reward,
            F.never_terminates, "Ant, 27-dim obs (no contact forces); r = v_x + 1 - 0.1|a|^2 - 3(z-0.57)^2"),
}

BUILTIN = (*_MUJOCO, "cheetah_run")


def _jax(fn):
    return functools.partial(fn, xp=jnp)


def _np(fn):
    return functools.partial(fn, xp=np)


def _mujoco_factory(name):
    gym_id, kwargs, obs_fn, obs_dim, _, rew, term, _ = _MUJOCO[name]

    def factory(render_mode=None):
        env = MujocoTaskEnv(gym_id, obs_fn, _np(rew), _np(term), obs_dim, render_mode=render_mode, **kwargs)
        return TimeLimit(env, max_episode_steps=HORIZON)

    return factory


def _cheetah_run_factory(render_mode=None):
    try:
        env = DMCCheetahRunEnv(render_mode=render_mode)
    except ImportError as e:
        raise UserError(
            f"task cheetah_run needs dm_control ({e}); install it with: pip install 'bremen[dmc]'"
        ) from None
    return TimeLimit(env, max_episode_steps=HORIZON)


@functools.lru_cache(maxsize=None)
def _builtin(name: str) -> Task:
    if name == "cheetah_run":
        return Task(
            name=name, obs_dim=18, act_dim=6, env_factory=_cheetah_run_factory,
            reward_fn=_jax(F.cheetah_run_reward), termination_fn=_jax(F.never_terminates), horizon=HORIZON,
            random_return=RANDOM_RETURNS[name],
            description="dm_control cheetah/run; obs 17 + torso speed; dm_control's run reward; no termination",
        )
    _, _, _, obs_dim, act_dim, rew, term, desc = _MUJOCO[name]
    return Task(
        name=name, obs_dim=obs_dim, act_dim=act_dim, env_factory=_mujoco_factory(name),
        reward_fn=_jax(rew), termination_fn=_jax(term), horizon=HORIZON,
        random_return=RANDOM_RETURNS[name], description=desc,
    )


def _gymnasium_task(gym_id: str) -> Task:
    """Wrap any registered gymnasium id with a Box observation and action space (reward unknown)."""
    env = gym.make(gym_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        horizon = env.spec.max_episode_steps or HORIZON
    finally:
        env.close()
    if not (isinstance(obs_space, gym.spaces.Box) and isinstance(act_space, gym.spaces.Box)):
        raise UserError(f"task {gym_id!r}: only Box observation and action spaces are supported")
    if len(obs_space.shape) != 1 or len(act_space.shape) != 1:
        raise UserError(f"task {gym_id!r}: observations and actions must be flat vectors")

    def factory(render_mode=None):
        e = gym.make(gym_id, render_mode=render_mode)
        if e.spec.max_episode_steps is None:
            e = TimeLimit(e, max_episode_steps=horizon)
        return Float32Obs(e)

    return Task(
        name=gym_id, obs_dim=obs_space.shape[0], act_dim=act_space.shape[0], env_factory=factory,
        horizon=horizon, act_low=np.asarray(act_space.low, np.float32), act_high=np.asarray(act_space.high, np.float32),
        description=f"gymnasium {gym_id}; reward and termination unknown (must be learned)",
    )


def names() -> list[str]:
    """Names of the built-in tasks."""
    return list(BUILTIN)


def make(name: str) -> Task:
    """The task called ``name``: a built-in task or any registered gymnasium id."""
    if isinstance(name, Task):
        return name
    if name in BUILTIN:
        return _builtin(name)
    if name in gym.registry:
        return _gymnasium_task(name)
    raise UserError(
        f"unknown task {name!r}; built-in tasks are {', '.join(BUILTIN)} "
        f"(any registered gymnasium id such as 'Hopper-v5' also works); see `bremen tasks`"
    )
