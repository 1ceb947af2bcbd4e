"""One compiled TRPO iteration vs the same math in the original's per-time-step structure.

Compiled: ``bremen.algos.trpo.trpo_iteration`` (rollout scan → KL/GAE → CG step with line search →
baseline fit in one call). Loop: what the original code does: a Python loop over
time steps with one jitted call for the target policy's sample, one for the BC policy and one for the
dynamics member (chosen with Python's ``random``) per step, paths assembled in lists, GAE per path with
``scipy.signal.lfilter``, the linear baseline in float64 NumPy, and a Python CG loop / line search that
calls a jitted Fisher-vector product / surrogate once per iteration. Both run the same sizes in the same
process. A consistency check feeds the compiled rollout to the loop's processing and compares the two
policy updates. Writes bench/results/trpo_vs_loop.json. Run: ``python bench/trpo_vs_loop.py``
(``--size paper`` for hidden-1024 dynamics).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.signal import lfilter

from bremen import __version__
from bremen.algos.natural_gradient import fisher_vector_product
from bremen.algos.trpo import TRPOConfig, trpo_init, trpo_iteration
from bremen.models import normalizer as N
from bremen.models.dynamics import DynamicsConfig, ensemble_init, predict
from bremen.models.model_env import ModelEnv, rollout
from bremen.models.policy import dist, kl, log_prob, policy_init, sample

OBS, ACT = 17, 6
TARGET_RATIO = 20.0


def reward_jax(s, a, s2):
    return s[..., 8] - 0.1 * jnp.sum(a**2, -1)


def reward_np(s, a, s2):
    return s[..., 8] - 0.1 * np.sum(a**2, -1)


def setup(hidden: int, cfg: TRPOConfig):
    ens = ensemble_init(jax.random.PRNGKey(0), OBS, ACT, DynamicsConfig(hidden=hidden)).params
    norm = N.identity_normalization(OBS, ACT)._replace(delta_std=jnp.full(OBS, 0.05))
    start = np.random.default_rng(0).normal(0, 0.1, (1000, OBS)).astype(np.float32)
    stats = N.update(N.running_stats_init(OBS), start * 10)
    policy = policy_init(None, OBS, ACT)
    behavior = policy_init(jax.random.PRNGKey(1), OBS, ACT, init_seed=None)
    return trpo_init(policy, stats, behavior, stats, ens, norm, jnp.asarray(start), jax.random.PRNGKey(2), cfg)


class LoopTRPO:
    """The original's structure: per-step jitted calls, NumPy path processing, Python CG and line search."""

    def __init__(self, cfg: TRPOConfig, policy_template):
        self.cfg = c = cfg
        self.unravel = ravel_pytree(policy_template)[1]
        self.target = jax.jit(
            lambda p, s, o, k: (sample(p, s, o, k, c.sampling_std, c.const_sampling),) + dist(p, s, o))
        self.behavior = jax.jit(dist)
        self.model = jax.jit(lambda e, n, o, a, k: predict(e, n, o, jnp.clip(a, -1, 1), k))

        def surr(flat, stats, obs, act, adv, logp0):
            mu, ls = dist(self.unravel(flat), stats, obs)
            return -jnp.mean(jnp.exp(log_prob(mu, ls, act) - logp0) * adv)

        self.surr = jax.jit(surr)
        self.surr_grad = jax.jit(jax.value_and_grad(surr))

        def fvp(flat, v, stats, obs):
            obs = obs[:: c.fisher_subsample]
            w = jnp.full(obs.shape[0], 1.0 / obs.shape[0])
            return fisher_vector_product(lambda f: dist(self.unravel(f), stats, obs), flat, w, c.cg_damping)[1](v)

        self.fvp = jax.jit(fvp)
        self.dist = jax.jit(dist)

    def collect(self, state, seed: int):
        """Lock-step model rollouts, one Python iteration per time step; returns completed paths."""
        cfg, rng = self.cfg, random.Random(seed)
        n = cfg.n_envs
        n_members = jax.tree.leaves(state.ens_params)[0].shape[0]
        pool = np.asarray(state.start_obs)
        nprng = np.random.default_rng(seed)
        obs = pool[nprng.integers(0, len(pool), n)]
        paths = []
        cur = [dict(obs=[], act=[], rew=[], mu=[], ls=[], mu_b=[], ls_b=[]) for _ in range(n)]
        key = jax.random.PRNGKey(seed)
        for _ in range(cfg.horizon):
            key, k = jax.random.split(key)
            act, mu, ls = (np.asarray(x) for x in self.target(state.policy, state.stats, obs, k))
            mu_b, ls_b = (np.asarray(x) for x in self.behavior(state.behavior, state.behavior_stats, obs))
            nxt = np.clip(np.asarray(self.model(state.ens_params, state.norm, obs, act, rng.randrange(n_members))),
                          -1e5, 1e5)
            rew = reward_np(obs, np.clip(act, -1, 1), nxt)
            for i in range(n):
                for name, val in (("obs", obs), ("act", act), ("rew", rew), ("mu", mu), ("ls", ls),
                                  ("mu_b", mu_b), ("ls_b", ls_b)):
                    cur[i][name].append(val[i])
            obs = nxt
            for i in range(n):
                if len(cur[i]["obs"]) == cfg.horizon:
                    paths.append({k2: np.asarray(v) for k2, v in cur[i].items()})
                    cur[i] = {k2: [] for k2 in cur[i]}
                    obs[i] = pool[nprng.integers(len(pool))]
        return paths

    def update(self, state, paths, coef):
        """process_samples + optimize_policy + fit_baseline, as the original."""
        cfg = self.cfg
        mean, std = (np.asarray(x, np.float64) for x in N.mean_std(state.stats))

        def feats(o, t):
            o = np.clip((o - mean) / std, -10, 10)
            tt = (t / 100.0)[:, None]
            return np.concatenate([o, o**2, tt, tt**2, tt**3, np.ones_like(tt)], 1)

        all_adv, all_targets, all_feats = [], [], []
        for p in paths:
            length = len(p["rew"])
            f = feats(p["obs"].astype(np.float64), np.arange(length, dtype=np.float64))
            v = np.append(f @ coef, 0.0)  # V = 0 after the last step of the path
            kl_t = np.asarray(kl(p["mu"], p["ls"], p["mu_b"], p["ls_b"]), np.float64)
            delta = p["rew"] + cfg.gamma * v[1:] - v[:-1] - cfg.alpha * kl_t
            adv = lfilter([1], [1, -cfg.gamma * cfg.gae_lambda], delta[::-1])[::-1]
            all_adv.append(adv)
            all_targets.append(adv + v[:-1])
            all_feats.append(f)
        adv = np.concatenate(all_adv)
        adv_n = ((adv - adv.mean()) / (adv.std() + 1e-8)).astype(np.float32)
        obs = np.concatenate([p["obs"] for p in paths]).astype(np.float32)
        act = np.concatenate([p["act"] for p in paths]).astype(np.float32)

        flat0 = ravel_pytree(state.policy)[0]
        mu0, ls0 = self.dist(state.policy, state.stats, obs)
        logp0 = log_prob(mu0, ls0, act)
        loss0, g = self.surr_grad(flat0, state.stats, obs, act, adv_n, logp0)
        g = np.asarray(g, np.float64)
        # conjugate gradient, one jitted Fisher-vector product per iteration
        x, r, p_, rr = np.zeros_like(g), -g.copy(), -g.copy(), g @ g
        for _ in range(cfg.cg_iters):
            z = np.asarray(self.fvp(flat0, jnp.asarray(p_, jnp.float32), state.stats, obs), np.float64)
            v = rr / (p_ @ z)
            x += v * p_
            r -= v * z
            rr_new = r @ r
            p_ = r + rr_new / rr * p_
            rr = rr_new
            if rr < cfg.cg_residual_tol:
                break
        shs = 0.5 * x @ np.asarray(self.fvp(flat0, jnp.asarray(x, jnp.float32), state.stats, obs), np.float64)
        step = x / np.sqrt(shs / cfg.target_kl)
        expected = -g @ step
        flat = np.asarray(flat0)
        for i in range(cfg.backtrack_iters):
            frac = cfg.backtrack_ratio**i
            new = np.asarray(flat0) + frac * step
            actual = float(loss0) - float(self.surr(jnp.asarray(new, jnp.float32), state.stats, obs, act, adv_n, logp0))
            if actual > 0 and actual / (frac * expected) > cfg.accept_ratio:
                flat = new
                break
        phi = np.concatenate(all_feats)
        y = np.concatenate(all_targets)
        reg = cfg.baseline_reg
        for _ in range(5):
            coef = np.linalg.lstsq(phi.T @ phi + reg * np.eye(phi.shape[1]), phi.T @ y, rcond=-1)[0]
            if not np.any(np.isnan(coef)):
                break
            reg *= 10
        return self.unravel(jnp.asarray(flat, jnp.float32)), coef

    def iteration(self, state, coef, seed):
        paths = self.collect(state, seed)
        policy, coef = self.update(state, paths, coef)
        jax.block_until_ready(policy)
        return state._replace(policy=policy), coef


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=["cpu", "paper"], default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--fisher-subsample", type=int, default=1, help="TRPOConfig.fisher_subsample (1: original)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "trpo_vs_loop.json"))
    args = p.parse_args()
    hidden = 200 if args.size == "cpu" else 1024
    cfg = TRPOConfig(batch_size=50_000, horizon=250, fisher_subsample=args.fisher_subsample)
    env = ModelEnv(reward_jax, None)
    state = setup(hidden, cfg)
    loop = LoopTRPO(cfg, state.policy)

    compiled = jax.jit(lambda s, k: trpo_iteration(s, k, config=cfg, env=env))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state, jax.random.PRNGKey(0)))
    compile_s = time.perf_counter() - t0
    t_compiled = median_time(lambda: jax.block_until_ready(compiled(state, jax.random.PRNGKey(1))), args.repeats)
    t_loop = median_time(lambda: loop.iteration(state, np.zeros(2 * OBS + 4), 1), args.repeats)

    roll_fn = jax.jit(lambda s, k: rollout(s.policy, s.stats, s.ens_params, s.norm, s.start_obs, k, env=env,
                                           n_envs=cfg.n_envs, horizon=cfg.horizon))
    t_roll_compiled = median_time(lambda: jax.block_until_ready(roll_fn(state, jax.random.PRNGKey(1))), args.repeats)
    t_roll_loop = median_time(lambda: loop.collect(state, 1), args.repeats)

    # Same run, same math: process the compiled rollout with the loop's NumPy/Python code.
    key = jax.random.PRNGKey(3)
    new_state, info = compiled(state, key)
    roll = jax.device_get(roll_fn(state, key))
    mu, ls = (np.asarray(x) for x in dist(state.policy, state.stats, roll.observations))
    mu_b, ls_b = (np.asarray(x) for x in dist(state.behavior, state.behavior_stats, roll.observations))
    paths = [dict(obs=roll.observations[:, i], act=roll.actions[:, i], rew=roll.rewards[:, i], mu=mu[:, i], ls=ls[:, i],
                  mu_b=mu_b[:, i], ls_b=ls_b[:, i]) for i in range(cfg.n_envs)]
    loop_policy, _ = loop.update(state, paths, np.zeros(2 * OBS + 4))
    a, b, s0 = (ravel_pytree(x)[0] for x in (new_state.policy, loop_policy, state.policy))
    rel_diff = float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a - s0))

    res = {
        "size": args.size, "dynamics_hidden": hidden, "fisher_subsample": cfg.fisher_subsample,
        "batch_size": cfg.batch_size, "horizon": cfg.horizon, "n_envs": cfg.n_envs, "compile_seconds": compile_s,
        "iteration_seconds": {"compiled": t_compiled, "loop": t_loop},
        "iteration_speedup": t_loop / t_compiled,
        "rollout_seconds": {"compiled": t_roll_compiled, "loop": t_roll_loop},
        "rollout_speedup": t_roll_loop / t_roll_compiled,
        "target_speedup": TARGET_RATIO,
        "consistency": {"relative_update_difference": rel_diff, "step_fraction": float(info["step_fraction"]),
                        "kl_after": float(info["kl_after"]),
                        "note": "same update up to float error only with fisher_subsample=1 (otherwise the two "
                                "codes subsample different rows: path-major vs time-major order)"},
        "meta": {"bremen": __version__, "jax": jax.__version__, "python": platform.python_version(),
                 "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                 "time": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
