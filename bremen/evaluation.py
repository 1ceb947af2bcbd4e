"""Real-environment evaluation: the run driver's, `bremen evaluate`'s and the tables' (and the derived seeds).

The original's protocol: run the deterministic policy (the Gaussian's mean) for whole
episodes until at least ``min_steps`` real steps were taken (``num_path_onpol`` × 1000), so tasks that
terminate early average over more episodes. Reset seeds are a fixed function of (run seed, evaluation
index, episode index), so an evaluation is reproducible and independent of what ran before it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

EVAL_STREAM = 2  # stream id that separates evaluation seeds from other derived seeds
START_STREAM = 3


def derived_seed(*ints: int) -> int:
    """A 31-bit seed that is a fixed function of ``ints`` (NumPy SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(i) & 0xFFFFFFFF for i in ints]).generate_state(1)[0] >> 1)


def run_episode(policy, env, seed: int, deterministic: bool = True, rng=None, record: bool = False):
    """One episode from ``env.reset(seed=seed)``: returns (return, length, transitions or None)."""
    obs, _ = env.reset(seed=int(seed))
    total, n, done = 0.0, 0, False
    rows = [] if record else None
    while not done:
        act = policy.act(obs, deterministic=deterministic, rng=rng)
        nxt, r, term, trunc, _ = env.step(act)
        if record:
            rows.append((obs, np.clip(act, -1, 1), nxt))
        total, n, done, obs = total + float(r), n + 1, term or trunc, nxt
    return total, n, rows


class EnvPool:
    """Envs made on demand and kept for the next evaluation (making a MuJoCo env costs tens of ms)."""

    def __init__(self, make_env):
        self.make_env, self.envs = make_env, []

    def get(self, n: int) -> list:
        while len(self.envs) < n:
            self.envs.append(self.make_env())
        return self.envs[:n]

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


MAX_SIDE_BY_SIDE = 64


def side_by_side(policy, envs, seeds, deterministic: bool = True):
    """Returns and lengths of one episode per reset seed, all run at once on ``envs`` (one each), the policy
    acting on the batch of the running episodes' observations (one call per step instead of one per episode
    and step). For policies whose rows act independently (``batched_evaluation``): the same episodes as one
    at a time."""
    obs = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)]
    returns, lengths = np.zeros(len(seeds)), np.zeros(len(seeds), int)
    running = list(range(len(seeds)))
    while running:
        acts = policy.act(np.stack([obs[i] for i in running]), deterministic=deterministic)
        still = []
        for i, a in zip(running, acts):
            obs[i], r, term, trunc, _ = envs[i].step(a)
            returns[i] += float(r)
            lengths[i] += 1
            if not (term or trunc):
                still.append(i)
        running = still
    return returns, lengths


def batched(policy, rng) -> bool:
    return bool(getattr(policy, "batched_evaluation", False)) and rng is None


def evaluate(policy, env, seeds, deterministic: bool = True, rng: Optional[np.random.Generator] = None,
             pool: Optional[EnvPool] = None):
    """Undiscounted returns and lengths of one episode per reset seed, acting with ``policy.act``.

    Each episode runs until termination or the env's time limit. Same policy, env and seeds ⇒ same returns.
    With an env ``pool``, a policy that acts on batches row by row (``batched_evaluation``) runs them side by
    side, up to MAX_SIDE_BY_SIDE at a time.
    """
    if pool is not None and batched(policy, rng) and len(seeds) > 1:
        parts = [side_by_side(policy, pool.get(len(chunk)), chunk, deterministic)
                 for chunk in (seeds[i:i + MAX_SIDE_BY_SIDE] for i in range(0, len(seeds), MAX_SIDE_BY_SIDE))]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    runs = [run_episode(policy, env, s, deterministic, rng)[:2] for s in seeds]
    returns, lengths = zip(*runs) if runs else ((), ())
    return np.asarray(returns), np.asarray(lengths)


def evaluate_steps(policy, env, min_steps: int, seed: int, index: int, record: bool = False,
                   pool: Optional[EnvPool] = None, horizon: int = 1000) -> dict:
    """Deterministic episodes until ≥ ``min_steps`` steps: mean/min/max/std return, episodes, steps.

    ``index`` numbers the evaluations of a run (−1 for the BC policy). With ``record`` the transitions
    are returned too (``obs``, ``act``, ``next_obs`` arrays), e.g. for model-accuracy diagnostics.
    With an env ``pool`` and a batch-acting policy the episodes run side by side in waves (at least the
    ⌈steps still needed / horizon⌉ episodes the one-at-a-time rule must run, more once the episode lengths
    seen so far say more are needed, at most MAX_SIDE_BY_SIDE); they are counted in order until
    ``min_steps`` and the rest of a wave is dropped, so the episodes are the same as one at a time.
    """
    returns, steps, k, rows, lengths = [], 0, 0, [], []
    while steps < min_steps and pool is not None and batched(policy, None) and not record:
        need = min_steps - steps
        wave = min(MAX_SIDE_BY_SIDE, -(-need // horizon))
        if lengths:
            wave = max(wave, min(MAX_SIDE_BY_SIDE, -(-need // max(1, int(np.mean(lengths))))))
        r, n = side_by_side(policy, pool.get(wave), [derived_seed(seed, EVAL_STREAM, index, k + i) for i in range(wave)])
        for ret, length in zip(r, n):
            if steps >= min_steps:
                break
            returns.append(float(ret))
            lengths.append(int(length))
            steps, k = steps + int(length), k + 1
    while steps < min_steps:
        ret, n, tr = run_episode(policy, env, derived_seed(seed, EVAL_STREAM, index, k), record=record)
        returns.append(ret)
        steps, k = steps + n, k + 1
        if record:
            rows.extend(tr)
    r = np.asarray(returns)
    out = {"episode_mean": float(r.mean()), "episode_min": float(r.min()), "episode_max": float(r.max()),
           "episode_std": float(r.std()), "episodes": len(r), "eval_steps": steps}
    if record:
        out["transitions"] = tuple(np.asarray(x, np.float32) for x in zip(*rows))
    return out


def evaluate_episodes(policy, env, episodes: int, seed: int, index: int, pool: Optional[EnvPool] = None) -> dict:
    """Exactly ``episodes`` deterministic episodes: the first ones :func:`evaluate_steps` would run for the same
    ``index``; the same dict, with the episodes' reset seeds."""
    seeds = [derived_seed(seed, EVAL_STREAM, index, k) for k in range(episodes)]
    r, lengths = evaluate(policy, env, seeds, pool=pool)
    return {"episode_mean": float(r.mean()), "episode_min": float(r.min()), "episode_max": float(r.max()),
            "episode_std": float(r.std()), "episodes": len(r), "eval_steps": int(np.sum(lengths)), "env_seeds": seeds}


def start_states(task, n: int, seed: int, env=None) -> np.ndarray:
    """``n`` observations from the real env's reset distribution (the original's imaginary start states)."""
    own = env is None
    env = task.make_env() if own else env
    env.reset(seed=derived_seed(seed, START_STREAM))
    out = np.stack([env.reset()[0] for _ in range(n)]).astype(np.float32)
    if own:
        env.close()
    return out


def dataset_return(ds, horizon: Optional[int] = None) -> dict:
    """Mean/min/max return of the dataset's complete episodes (ended by a terminal or at the horizon)."""
    sl = ds.episodes()
    rets = ds.episode_returns()
    lengths = np.array([s.stop - s.start for s in sl])
    complete = ds.terminals[[s.stop - 1 for s in sl]] | (lengths == (horizon or lengths.max()))
    r = rets[complete] if complete.any() else rets
    return {"mean": float(r.mean()), "min": float(r.min()), "max": float(r.max()), "episodes": int(len(r))}


EVALUATE_STREAM = 4  # separates `bremen evaluate`'s env seeds from a run's own evaluation seeds


def evaluate_policy(policy, task, episodes: int, seed: int = 0, deterministic: bool = True) -> dict:
    """Undiscounted return over ``episodes`` full episodes: mean, std, min, max, mean length, env seeds."""
    env = task.make_env()
    rng = np.random.default_rng(seed)
    seeds = [derived_seed(seed, EVALUATE_STREAM, i) for i in range(episodes)]
    pool = EnvPool(task.make_env)
    r, lengths = evaluate(policy, env, seeds, deterministic, None if batched(policy, None) else rng, pool)
    pool.close()
    env.close()
    return {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "max": float(r.max()),
            "stderr": float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else None,
            "episodes": episodes, "mean_length": float(np.mean(lengths)), "deterministic": deterministic,
            "env_seeds": seeds}
