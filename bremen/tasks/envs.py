"""Real environments of the built-in tasks.

MuJoCo tasks step the physics of gymnasium's v5 models (the XML files that ship with gymnasium) and build
observation, reward and termination themselves with the task's functions, evaluated in NumPy. The
gymnasium env's own reward, observation clipping and health checks are not used.
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from bremen.tasks.gl import import_dm_control_suite, import_mujoco

# MuJoCo warns on every compile of gymnasium's half_cheetah and dm_control's cheetah models that their
# `settotalmass` attribute is deprecated (printed to stdout and appended to ./MUJOCO_LOG.TXT). It says
# nothing about bremen's use of the model, so that one message is dropped; any other warning still shows.
_KNOWN_MUJOCO_WARNING = "settotalmass"


def _forward_mujoco_warning(message: str) -> None:
    if _KNOWN_MUJOCO_WARNING not in message:
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def quiet_known_mujoco_warnings() -> None:
    """Drop MuJoCo's settotalmass deprecation (only when no one else has set a MuJoCo warning handler)."""
    import logging

    mujoco = import_mujoco()

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_forward_mujoco_warning)
    absl = logging.getLogger("absl")  # dm_control routes MuJoCo's warnings through absl logging
    if not any(getattr(f, "_bremen", False) for f in absl.filters):
        class _Filter(logging.Filter):
            _bremen = True

            def filter(self, record):
                return _KNOWN_MUJOCO_WARNING not in record.getMessage()

        absl.addFilter(_Filter())


class MujocoTaskEnv(gym.Env):
    """A gymnasium MuJoCo model driven with bremen's observation, reward and termination.

    Args:
        gym_id: gymnasium id whose model, frame skip and reset noise are used (e.g. "Hopper-v5").
        obs_fn: ``(qpos, qvel) -> observation``.
        reward_fn / termination_fn: the task's NumPy functions (``xp=numpy`` bound).
        gym_kwargs: extra arguments for ``gymnasium.make``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        gym_id: str,
        obs_fn: Callable,
        reward_fn: Callable,
        termination_fn: Callable,
        obs_dim: int,
        render_mode: Optional[str] = None,
        **gym_kwargs,
    ):
        quiet_known_mujoco_warnings()
        # gymnasium's own renderer is not used (its free camera loses the robot); see camera().
        self._env = gym.make(gym_id, **gym_kwargs).unwrapped
        self._obs_fn, self._reward_fn, self._termination_fn = obs_fn, reward_fn, termination_fn
        act_dim = self._env.action_space.shape[0]
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / self._env.dt)))
        self._obs = None
        self._camera = None

    def _observe(self) -> np.ndarray:
        d = self._env.data
        return self._obs_fn(d.qpos, d.qvel).astype(np.float32)

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        self._env.reset(seed=seed)
        self._obs = self._observe()
        return self._obs.copy(), {}

    def step(self, action):
        act = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        self._env.do_simulation(act.astype(np.float64), self._env.frame_skip)
        obs, next_obs = self._obs, self._observe()
        reward = float(self._reward_fn(obs, act, next_obs))
        terminated = bool(self._termination_fn(next_obs))
        self._obs = next_obs
        return next_obs.copy(), reward, terminated, False, {}

    def camera(self, width: int = 480, height: int = 480, quality: str = "fast"):
        """A renderer that follows the torso (the model's ``track`` camera); see bremen.tasks.rendering."""
        from bremen.tasks.rendering import MujocoTrackingCamera

        return MujocoTrackingCamera(self._env.model, self._env.data, width, height, "track", quality)

    def render(self):
        if self._camera is None:
            self._camera = self.camera()
        return self._camera.frame()

    def close(self):
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        self._env.close()

    @property
    def dt(self) -> float:
        return self._env.dt

    @property
    def sim_state(self):
        """(qpos, qvel) copies, e.g. to replay a start state."""
        return self._env.data.qpos.copy(), self._env.data.qvel.copy()


class DMCCheetahRunEnv(gym.Env):
    """dm_control's ``cheetah``/``run`` as a gymnasium env with an 18-dim observation.

    The observation is dm_control's ``position`` (8) and ``velocity`` (9) plus the torso subtree's linear
    x-velocity (``physics.speed()``), the quantity the run reward is computed from. Without it the reward
    is not a function of the observation, and a learned model could not compute it. The reward returned
    is dm_control's own, unchanged.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, render_mode: Optional[str] = None, width: int = 480, height: int = 480):
        quiet_known_mujoco_warnings()
        suite = import_dm_control_suite()  # optional dependency (extra "dmc")

        self._random = np.random.RandomState(0)
        self._env = suite.load("cheetah", "run", task_kwargs={"random": self._random})
        self.observation_space = spaces.Box(-np.inf, np.inf, (18,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
        self.render_mode, self._size, self._camera = render_mode, (height, width), None
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / self._env.control_timestep())))

    def _observe(self, ts) -> np.ndarray:
        o = ts.observation
        speed = self._env.physics.speed()
        return np.concatenate([o["position"], o["velocity"], [speed]]).astype(np.float32)

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._random.seed(seed)
        return self._observe(self._env.reset()), {}

    def step(self, action):
        act = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        ts = self._env.step(act)
        # dm_control ends its own episode at 1000 steps (a time limit, discount 1); bremen's TimeLimit
        # wrapper reports it as truncation.
        return self._observe(ts), float(ts.reward), False, False, {}

    def camera(self, width: int = 480, height: int = 480, quality: str = "fast"):
        """A renderer from dm_control's ``side`` camera, which follows the cheetah's center of mass."""
        from bremen.tasks.rendering import dm_control_camera

        return dm_control_camera(self._env.physics, width, height, "side", quality)

    def render(self):
        if self._camera is None:
            self._camera = self.camera(self._size[1], self._size[0])
        return self._camera.frame()

    def close(self):
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    @property
    def dt(self) -> float:
        return self._env.control_timestep()


class Float32Obs(gym.ObservationWrapper):
    """Casts observations of an arbitrary gymnasium env to float32 (datasets store float32)."""

    def __init__(self, env):
        super().__init__(env)
        s = env.observation_space
        self.observation_space = spaces.Box(s.low.astype(np.float32), s.high.astype(np.float32), s.shape, np.float32)

    def observation(self, observation):
        return np.asarray(observation, dtype=np.float32)
