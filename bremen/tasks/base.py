"""The task object: a real environment plus the reward and termination functions a learned model needs.

A learned dynamics model cannot call the simulator, so every built-in task writes its reward and
termination as batched functions of observations and actions. The same expressions, evaluated with NumPy,
produce the real environment's reward and termination, so the two agree by construction (and a test checks
it on real transitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np

RewardFn = Callable[[Any, Any, Any], Any]  # (obs, act, next_obs) -> reward, batched over leading dims
TerminationFn = Callable[[Any], Any]  # next_obs -> bool, batched over leading dims


@dataclass(frozen=True)
class Task:
    """A named control task.

    ``reward_fn(obs, act, next_obs)`` and ``termination_fn(next_obs)`` are jittable JAX functions over any
    leading batch shape. ``act`` is the action *after* clipping to ``[act_low, act_high]``. Both are ``None``
    for a task that wraps an arbitrary gymnasium id: its reward and termination are not known in closed form
    and must be learned (``known_reward`` is False).
    """

    name: str
    obs_dim: int
    act_dim: int
    env_factory: Callable[..., gym.Env] = field(repr=False)
    reward_fn: Optional[RewardFn] = field(default=None, repr=False)
    termination_fn: Optional[TerminationFn] = field(default=None, repr=False)
    horizon: int = 1000
    act_low: float = -1.0
    act_high: float = 1.0
    random_return: Optional[float] = None
    """Mean undiscounted return of uniform random actions over full episodes (measured, see docs/tasks.md)."""
    description: str = ""

    @property
    def known_reward(self) -> bool:
        """True when the reward and termination are known functions (built-in tasks)."""
        return self.reward_fn is not None

    def make_env(self, seed: Optional[int] = None, render_mode: Optional[str] = None) -> gym.Env:
        """A fresh gymnasium env with a ``horizon``-step time limit, its RNG seeded with ``seed``.

        Built-in task envs return float32 observations; ``terminated`` is the task's termination and
        ``truncated`` marks the time limit only.
        """
        env = self.env_factory(render_mode=render_mode)
        if seed is not None:
            env.reset(seed=int(seed))
            env.action_space.seed(int(seed))
        return env

    def clip_action(self, act):
        return np.clip(act, self.act_low, self.act_high)
