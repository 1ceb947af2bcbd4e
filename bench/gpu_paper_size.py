"""Paper-size throughput on one accelerator, in one command: ensemble fit, TRPO iteration, BC, vmapped seeds.

    python bench/gpu_paper_size.py [--size paper|tiny] [--out bench/results/gpu_paper_size.json]

Made to run within 8 minutes on one GPU (``--size paper``, the default) and within a minute on a CPU at
``--size tiny`` (a test runs it so). Every figure is the best of ``--repeats`` calls after a compile and
warm-up call, every timed call ends with ``jax.block_until_ready``, and the JSON records the device and its kind.

* **ensemble fit**: Adam steps per second of ``dynamics.train_epochs`` (5 members × 2 hidden layers of 1024,
  batch 1000, the original's ``dynamics`` config), measured as bench/ensemble_flops.py does (best call).
* **TRPO iteration** at 50k imaginary steps per iteration, H 250 (200 rollouts) and H 1000 (50 rollouts):
  seconds per compiled iteration (rollout through the hidden-1024 ensemble, GAE, the natural-gradient step
  with all rows in the Fisher matrix as ``paper`` runs it, the linear baseline), on a synthetic state (a
  freshly initialized ensemble whose deltas have std 0.05, half_cheetah's reward and hopper's
  termination); also its matmul GFLOP counted from the jaxpr (bench/jaxpr_flops.py).
* **BC**: Adam steps per second at the original's ``behavior_policy`` settings (200-200, batch 256, chunks of
  10,000 steps per compiled call, as the 300k-step fits run).
* **10 vmapped seeds against one**, for BC and BCQ at their ``cpu`` preset configs on 100k transitions:
  seed-updates per second of ``update_many_seeds`` (10 seeds, one program) over ``update_many`` (one seed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos import registry
from bremen.algos.agent import Spec, batch_from_arrays, update_many
from bremen.algos.bc import BCConfig, bc_init, bc_update
from bremen.algos.trpo import TRPOConfig, trpo_init, trpo_iteration
from bremen.learners.actor_critic import update_many_seeds
from bremen.models import normalizer as N
from bremen.models.dynamics import DynamicsConfig, ensemble_init
from bremen.models.model_env import ModelEnv
from bremen.models.policy import policy_init
from bremen.tasks import functions as F
from ensemble_flops import best_time as timed
from ensemble_flops import fit_gflops
from jaxpr_flops import matmul_flops

HERE = Path(__file__).resolve().parent
OBS, ACT = 17, 6
SIZES = {
    # hidden, fit steps per call, TRPO batch, horizons, BC steps per call, vmap data rows, updates per call
    "paper": dict(hidden=1024, fit_steps=100, trpo_batch=50_000, horizons=(250, 1000),
                  bc_steps=10_000, data_rows=100_000, updates=1000, seeds=10),
    "tiny": dict(hidden=32, fit_steps=2, trpo_batch=1_000, horizons=(50, 100), bc_steps=20,
                 data_rows=2_000, updates=10, seeds=3),
}


def ensemble_fit(s: dict, repeats: int) -> dict:
    res = fit_gflops(s["hidden"], s["fit_steps"], repeats)  # best of ``repeats`` calls, batch 1000
    return {"members": 5, "hidden": s["hidden"], "batch": 1000, "steps_per_call": s["fit_steps"],
            "steps_per_s": res["steps_per_s"], "gflops": res["gflops"]}


def trpo(s: dict, horizon: int, repeats: int) -> dict:
    cfg = TRPOConfig(batch_size=s["trpo_batch"], horizon=horizon, target_kl=0.05)
    ens = ensemble_init(jax.random.PRNGKey(0), OBS, ACT, DynamicsConfig(hidden=s["hidden"])).params
    norm = N.identity_normalization(OBS, ACT)._replace(delta_std=jnp.full(OBS, 0.05))
    start = 0.1 * jax.random.normal(jax.random.PRNGKey(1), (5000, OBS))
    stats = N.update(N.running_stats_init(OBS), start)
    policy = policy_init(None, OBS, ACT)
    policy = policy[:-1] + [dict(policy[-1], b=policy[-1]["b"].at[ACT:].set(-3.0))]  # σ(s) at its floor, as after BC
    env = ModelEnv(lambda o, a, o2: F.half_cheetah_reward(o, a, o2, jnp),
                   lambda o2: F.hopper_termination(o2[..., :11], jnp))
    state = trpo_init(policy, stats, policy, stats, ens, norm, start, jax.random.PRNGKey(2), cfg)
    keys = iter(range(10_000))

    def call():
        return trpo_iteration(state, jax.random.PRNGKey(next(keys)), config=cfg, env=env)

    sec = timed(call, repeats)
    flops = matmul_flops(call, trips=lambda kind, b: 1 if kind != "bounded" else b)["total"]
    return {"batch": cfg.batch_size, "horizon": horizon, "rollouts": cfg.n_envs, "seconds_per_iteration": sec,
            "matmul_gflop_at_one_line_search_try": flops / 1e9}


def bc(s: dict, repeats: int) -> dict:
    cfg = BCConfig()
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(s["data_rows"], OBS)), jnp.float32)
    act = jnp.asarray(rng.uniform(-1, 1, (s["data_rows"], ACT)), jnp.float32)
    holder = {"state": bc_init(jax.random.PRNGKey(0), obs, ACT, cfg)}

    def call():
        holder["state"], loss = bc_update(holder["state"], obs, act, jax.random.PRNGKey(1), cfg.lr, s["bc_steps"],
                                          cfg.batch_size)
        return loss

    sec = timed(call, repeats)
    return {"hidden": list(cfg.hidden), "batch": cfg.batch_size, "steps_per_call": s["bc_steps"],
            "steps_per_s": s["bc_steps"] / sec}


def vmapped_seeds(s: dict, name: str, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    n = s["data_rows"]
    obs = rng.normal(size=(n, OBS)).astype(np.float32)
    data = batch_from_arrays(obs, rng.uniform(-1, 1, (n, ACT)), rng.normal(size=n),
                             obs + 0.1 * rng.normal(size=(n, OBS)).astype(np.float32),
                             (rng.random(n) < 1e-3).astype(np.float32))
    cfg = registry.agent_config(name, "cpu")
    agent = registry.make_agent(name, Spec.of(OBS, ACT, -1.0, 1.0), cfg)
    states = [agent.init(jax.random.PRNGKey(i)) for i in range(s["seeds"])]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)
    u, b = s["updates"], cfg.batch_size
    one = timed(lambda: update_many(agent, states[0], data, u, b), repeats)
    many = timed(lambda: update_many_seeds(agent, stacked, data, u, b, True), repeats)
    return {"seeds": s["seeds"], "batch": b, "updates_per_call": u, "one_seed_updates_per_s": u / one,
            "vmapped_seed_updates_per_s": s["seeds"] * u / many, "vmapped_over_one": one * s["seeds"] / many}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=list(SIZES), default="paper")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(HERE / "results" / "gpu_paper_size.json"))
    args = p.parse_args()
    s = SIZES[args.size]
    t0 = time.perf_counter()
    res = {"size": args.size, "settings": s, "device": str(jax.devices()[0]),
           "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__, "platform": platform.platform(),
           "cpus": os.cpu_count()}

    def step(name, fn):
        res[name] = fn()
        print(json.dumps({name: res[name]}), flush=True)

    step("ensemble_fit", lambda: ensemble_fit(s, args.repeats))
    for h in s["horizons"]:
        step(f"trpo_iteration_h{h}", lambda h=h: trpo(s, h, args.repeats))
    step("bc", lambda: bc(s, args.repeats))
    for name in ("bc", "bcq"):
        step(f"vmapped_seeds_{name}", lambda name=name: vmapped_seeds(s, name, args.repeats))
    res["wall_s"] = time.perf_counter() - t0
    res["time"] = time.strftime("%Y-%m-%d %H:%M:%S")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out} in {res['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
