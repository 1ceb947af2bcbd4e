"""Checks that a task's real env and its reward/termination functions agree on real transitions."""

from __future__ import annotations

import jax
import numpy as np

from bremen.tasks.base import Task


def random_transitions(task: Task, n: int, seed: int = 0) -> dict:
    """``n`` transitions of uniform random actions on the real env (resetting at episode ends)."""
    env = task.make_env(seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = {k: [] for k in ("obs", "act", "next_obs", "rew", "term")}
    while len(rows["rew"]) < n:
        act = rng.uniform(task.act_low, task.act_high, task.act_dim).astype(np.float32)
        nxt, r, term, trunc, _ = env.step(act)
        for k, v in zip(rows, (obs, act, nxt, r, term)):
            rows[k].append(v)
        obs = env.reset()[0] if (term or trunc) else nxt
    env.close()
    return {k: np.asarray(v) for k, v in rows.items()}


def agreement(task: Task, n: int = 1000, seed: int = 0) -> dict:
    """Max |env reward - reward_fn| and termination agreement over ``n`` random transitions."""
    d = random_transitions(task, n, seed)
    rew = np.asarray(jax.jit(task.reward_fn)(d["obs"], d["act"], d["next_obs"]))
    term = np.asarray(jax.jit(task.termination_fn)(d["next_obs"]))
    return {
        "transitions": n,
        "max_abs_reward_error": float(np.max(np.abs(rew - d["rew"]))),
        "termination_agreement": float(np.mean(term == d["term"])),
        "terminations": int(d["term"].sum()),
        "data": d,
        "reward_fn": rew,
        "termination_fn": term,
    }
