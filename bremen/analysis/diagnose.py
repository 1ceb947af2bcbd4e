"""How well a run's learned dynamics model predicts the real env (``bremen diagnose RUN``; the original's
``--eval_model``, made a plot).

The run's policy (``policy_final/`` by default) acts in the real env from ``episodes`` resets (env seeds
``derived_seed(0, 6, i)``, the same for every run) for up to ``horizon`` steps. Every ensemble member then
replays each episode open loop: from the same start state, with the same actions, it feeds its own
predictions back (ŝ_0 = s_0, ŝ_{t+1} = f_k(ŝ_t, a_t)), which is how imaginary rollouts use it. The error at
step t is the mean over observation dimensions of ((ŝ_t − s_t)/σ_s)², σ_s the model's input
normalization (the training data's observation std), averaged over the episodes still running at t; the
ensemble mean's prediction (the average of the members' ŝ) is shown too, and the one-step error (each
member from the real s_t) for reference.
"""

from __future__ import annotations

import json
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from bremen.errors import UserError

DIAGNOSE_STREAM = 6


def load_model(run_dir: Path):
    """(ensemble params, normalization, dynamics config, task) from a model-based run's checkpoint."""
    from bremen.io.checkpoint import CHECKPOINT_FILE, arrays_to_pytree, load_checkpoint
    from bremen.models import dynamics as dyn_lib
    from bremen.models.normalizer import fit_normalization
    from bremen.tasks import make

    try:
        config = json.loads((run_dir / "params.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{run_dir}: not a bremen run directory (no readable params.json)")
    algorithm = config.get("flags", {}).get("algorithm", "bremen")
    from bremen.algos.registry import MODEL_BASED

    if algorithm not in MODEL_BASED or "dynamics" not in config:
        raise UserError(f"{run_dir}: a {algorithm} run has no dynamics model; diagnose takes a model-based run "
                        f"({', '.join(MODEL_BASED)})")
    ckpt = run_dir / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise UserError(f"{run_dir}: no {CHECKPOINT_FILE} yet (the model is saved after its first fit)")
    known = {f.name for f in fields(dyn_lib.DynamicsConfig)}
    cfg = dyn_lib.DynamicsConfig(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in config["dynamics"].items() if k in known})
    task = make(config["task"])
    arrays, _ = load_checkpoint(ckpt)
    z = np.zeros((2, task.obs_dim), np.float32)
    tmpl_norm = fit_normalization(z, np.zeros((2, task.act_dim), np.float32), z)
    tmpl_ens = dyn_lib.ensemble_init(jax.random.PRNGKey(0), task.obs_dim, task.act_dim, cfg)
    ens = arrays_to_pytree(tmpl_ens, arrays, "ens")
    norm = arrays_to_pytree(tmpl_norm, arrays, "norm")
    return ens.params, norm, cfg, task


def real_episodes(policy, task, episodes: int, horizon: int):
    """obs [N, T+1, d], actions [N, T, a] and valid [N, T+1] (False after a termination) of real rollouts."""
    from bremen.evaluation import derived_seed

    env = task.make_env()
    T = horizon
    obs = np.zeros((episodes, T + 1, task.obs_dim), np.float32)
    act = np.zeros((episodes, T, task.act_dim), np.float32)
    valid = np.zeros((episodes, T + 1), bool)
    for i in range(episodes):
        o, _ = env.reset(seed=derived_seed(0, DIAGNOSE_STREAM, i))
        obs[i, 0], valid[i, 0] = o, True
        for t in range(T):
            a = np.clip(policy.act(o, deterministic=True), task.act_low, task.act_high)
            o, _, term, trunc, _ = env.step(a)
            act[i, t], obs[i, t + 1], valid[i, t + 1] = a, o, True
            if term or trunc:
                break
    env.close()
    return obs, act, valid


@partial(jax.jit, static_argnames=("activation",))
def _open_loop(params, norm, obs, act, activation: str):
    """Members' open-loop predictions [K, N, T+1, d] and one-step predictions [K, N, T, d]."""
    from bremen.models import dynamics as dyn_lib

    n_members = jax.tree.leaves(params)[0].shape[0]
    members = jnp.arange(n_members)
    step = jax.vmap(lambda s, a, k: dyn_lib.predict(params, norm, s, a, k, activation), (0, None, 0))

    def body(s, a):  # s [K, N, d], a [N, a]
        nxt = step(s, a, members)
        return nxt, nxt

    s0 = jnp.broadcast_to(obs[:, 0], (n_members,) + obs[:, 0].shape)
    _, preds = jax.lax.scan(body, s0, jnp.swapaxes(act, 0, 1))  # [T, K, N, d]
    open_loop = jnp.concatenate([s0[:, :, None], jnp.transpose(preds, (1, 2, 0, 3))], axis=2)
    one_step = jax.vmap(lambda k: dyn_lib.predict(params, norm, obs[:, :-1], act, k, activation))(members)
    return open_loop, one_step


def diagnose(run_dir, policy: str = "final", episodes: int = 10, horizon: int = 100) -> dict:
    """Open-loop and one-step errors per step for every member (see the module docstring)."""
    from bremen.io.policy_io import load_policy

    run_dir = Path(run_dir)
    params, norm, cfg, task = load_model(run_dir)
    path = Path(policy) if policy not in ("final", "best", "bc") else run_dir / f"policy_{policy}"
    if not (path / "policy.json").is_file():
        have = ", ".join(p.name for p in sorted(run_dir.glob("policy_*"))) or "none yet"
        raise UserError(f"--policy {policy}: {path} holds no exported policy (this run has: {have})")
    obs, act, valid = real_episodes(load_policy(path), task, episodes, horizon)
    open_loop, one_step = (np.asarray(x) for x in _open_loop(params, norm, obs, act, cfg.activation))
    scale = np.asarray(norm.obs_std, np.float64) + 1e-8
    err = lambda pred, real: np.mean(((pred - real) / scale) ** 2, axis=-1)  # [..., N, T]
    per_step = lambda e, v: [float(e[:, t][v[:, t]].mean()) if v[:, t].any() else None for t in range(e.shape[1])]
    members = [per_step(err(open_loop[k], obs), valid) for k in range(len(open_loop))]
    mean_pred = per_step(err(open_loop.mean(axis=0), obs), valid)
    one = [per_step(err(one_step[k], obs[:, 1:]), valid[:, 1:]) for k in range(len(one_step))]
    return {"run_dir": str(run_dir), "task": task.name, "policy": str(path), "episodes": episodes,
            "horizon": horizon, "episodes_running": valid.sum(axis=0).tolist(),
            "open_loop_members": members, "open_loop_ensemble_mean": mean_pred, "one_step_members": one,
            "error": "mean over obs dims of ((prediction - real) / obs std of the training data)^2"}


def plot_diagnosis(res: dict, out: Path, title: Optional[str] = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    values = lambda curve: [np.nan if v is None else v for v in curve[1:]]  # step 0 is the real start state
    for k, curve in enumerate(res["open_loop_members"]):
        ax.plot(range(1, len(curve)), values(curve), lw=1.2, label=f"member {k}")
    mean = res["open_loop_ensemble_mean"]
    ax.plot(range(1, len(mean)), values(mean), "k--", lw=1.6, label="ensemble mean")
    ax.set_yscale("log")
    ax.set_xlabel("step of the real episode")
    ax.set_ylabel("open-loop error (normalized MSE)")
    ax.set_title("open loop: each member from s_0 with the real actions", fontsize=10)
    for k, curve in enumerate(res["one_step_members"]):
        ax1.plot(range(1, len(curve) + 1), [np.nan if v is None else v for v in curve], lw=1, label=f"member {k}")
    ax1.set_yscale("log")
    ax1.set_xlabel("step of the real episode")
    ax1.set_ylabel("one-step error (normalized MSE)")
    ax1.set_title("one step: each member from the real s_t", fontsize=10)
    for a in (ax, ax1):
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=7.5)
    fig.suptitle(title or f"{res['task']}: learned model vs real env, {res['episodes']} episodes of "
                 f"{Path(res['policy']).name}, {'/'.join(Path(res['run_dir']).parts[-3:])}", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
