"""Reward and termination functions of the built-in tasks.

Each function takes an array namespace ``xp`` (``numpy`` or ``jax.numpy``) so that one expression serves
both the real environment (NumPy, per step) and the learned model (JAX, batched, jittable). All functions
broadcast over leading batch dimensions. ``act`` is the action after clipping to [-1, 1].

Definitions follow the original BREMEN tasks (observations without the x position, rewards read from
velocities that are part of the observation), except ``cheetah_run``, which returns dm_control's own run
reward (see :mod:`bremen.tasks.dmc`).
"""

from __future__ import annotations


def _sq(xp, act):
    return xp.sum(act * act, axis=-1)


# --- half_cheetah: obs = qpos[1:] (8) ++ qvel (9); qvel[0] = obs[8] -------------------------------------
def half_cheetah_reward(obs, act, next_obs, xp):
    """r = v_x(s) - 0.1 ||a||^2, with v_x read from the state *before* the step (original §7.3)."""
    return obs[..., 8] - 0.1 * _sq(xp, act)


# --- hopper: obs = qpos[1:] (5) ++ qvel (6), velocities not clipped; qvel[0] = obs[5] -------------------
def hopper_reward(obs, act, next_obs, xp):
    """r = v_x(s') + 1 - 0.001 ||a||^2 (velocity of the next state)."""
    return next_obs[..., 5] + 1.0 - 0.001 * _sq(xp, act)


def hopper_termination(next_obs, xp):
    """Done unless s' is finite, |s'[1:]| < 100, height s'[0] > 0.7 and |angle s'[1]| < 0.2."""
    healthy = (
        xp.all(xp.isfinite(next_obs), axis=-1)
        & xp.all(xp.abs(next_obs[..., 1:]) < 100.0, axis=-1)
        & (next_obs[..., 0] > 0.7)
        & (xp.abs(next_obs[..., 1]) < 0.2)
    )
    return ~healthy


# --- walker2d: obs = qpos[1:] (8) ++ qvel (9), velocities not clipped; qvel[0] = obs[8] -----------------
def walker2d_reward(obs, act, next_obs, xp):
    """r = v_x(s') + 1 - 0.001 ||a||^2."""
    return next_obs[..., 8] + 1.0 - 0.001 * _sq(xp, act)


def walker2d_termination(next_obs, xp):
    """Done unless 0.8 < height < 2.0 and -1 < angle < 1."""
    h, ang = next_obs[..., 0], next_obs[..., 1]
    return ~((h > 0.8) & (h < 2.0) & (ang > -1.0) & (ang < 1.0))


# --- ant: obs = qpos[2:] (13: z, quaternion, 8 joints) ++ qvel (14) = 27; qvel[0] = obs[13] ------------
def ant_reward(obs, act, next_obs, xp):
    """r = v_x(s) + 1 - 0.1 ||a||^2 - 3 (z(s) - 0.57)^2, read from the state before the step."""
    return obs[..., 13] + 1.0 - 0.1 * _sq(xp, act) - 3.0 * (obs[..., 0] - 0.57) ** 2


# --- cheetah_run (dm_control): obs = position (8) ++ velocity (9) ++ torso subtree x-velocity (1) -------
RUN_SPEED = 10.0


def cheetah_run_reward(obs, act, next_obs, xp):
    """dm_control's run reward: tolerance(speed, bounds=(10, inf), margin=10, linear, value_at_margin=0).

    That equals clip(speed / 10, 0, 1), with speed the torso subtree's linear x-velocity after the step,
    which bremen appends to the observation (index 17).
    """
    return xp.clip(next_obs[..., 17] / RUN_SPEED, 0.0, 1.0)


def never_terminates(next_obs, xp):
    """Tasks without early termination (episodes end at the 1000-step time limit only)."""
    return xp.zeros(next_obs.shape[:-1], dtype=bool)
