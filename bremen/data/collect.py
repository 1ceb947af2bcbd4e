"""Dataset collection with BRAC's noise strategies.

A noise strategy is a list of blocks (name, weight). Block sizes are ``int(n·w)`` for all but the last
block, which takes the remainder. Blocks are collected in list order on one env; each block starts a fresh
episode, and the previous block's last (unfinished) episode is cut with a timeout flag, as is the
dataset's last transition.

=========== ====================================================================================
strategy    blocks (collection order)
=========== ====================================================================================
pure        100 % π_p samples
eps1/eps3   20 % uniform random, 40 % π_p samples, 40 % ε-greedy (ε = 0.1 / 0.3)
gaussian1/3 20 % uniform random, 40 % π_p samples, 40 % π_p sample + N(0, σ²), σ = 0.1 / 0.3
random      100 % uniform random
=========== ====================================================================================

Per step, with π_p the loaded policy's *stochastic* action (a sample, not the mode):

* random: a ~ U[low, high]
* pure: a ~ π_p(·|s)
* ε-greedy: with probability ε, a ~ U[low, high]; else a ~ π_p(·|s)
* gaussian: a = clip(ã + σ·ξ, low + 1e-3, high − 1e-3), ã ~ π_p(·|s), ξ ~ N(0, I)

The stored action is the one sent to the env. ``terminals`` marks true termination only; ``timeouts``
marks the time limit and block cuts (never both). Randomness: one NumPy generator seeded from ``seed``
(policy samples, noise, uniform actions) and env reset seed ``f(seed, episode index)``; same seed, policy
and task ⇒ identical arrays. The file is written atomically (temporary file, then rename), so an
interrupted collection leaves nothing at the destination.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

import bremen
from bremen.data.dataset import Dataset, save_dataset
from bremen.errors import UserError
from bremen.io.paths import writable_file
from bremen.io.policy_io import NumpyPolicy, load_policy, policy_files

GAUSSIAN_CLIP_MARGIN = 1e-3


@dataclass(frozen=True)
class Block:
    """One sub-dataset: ``kind`` is "random", "pure", "eps" or "gaussian"; ``param`` is ε or σ."""

    name: str
    kind: str
    weight: float
    param: float = 0.0


def _mixture(kind: str, param: float) -> tuple:
    return (
        Block("random", "random", 2.0),
        Block("pure", "pure", 4.0),
        Block(f"{kind}{param:g}", kind, 4.0, param),
    )


NOISES: dict[str, tuple] = {
    "pure": (Block("pure", "pure", 1.0),),
    "eps1": _mixture("eps", 0.1),
    "eps3": _mixture("eps", 0.3),
    "gaussian1": _mixture("gaussian", 0.1),
    "gaussian3": _mixture("gaussian", 0.3),
    "random": (Block("random", "random", 1.0),),
}


def block_sizes(n: int, blocks) -> list[int]:
    """``int(n·w_i / Σw)`` for all but the last block; the last takes the remainder."""
    total = sum(b.weight for b in blocks)
    sizes = [int(n * b.weight / total) for b in blocks[:-1]]
    return sizes + [n - sum(sizes)]


def episode_seed(seed: int, episode: int) -> int:
    """Env reset seed of episode ``episode`` of a collection run."""
    return int(np.random.SeedSequence([int(seed), 7, int(episode)]).generate_state(1)[0] >> 1)


def default_policy_path(task: str) -> Path:
    """``weights/<task>/`` of the working directory if present, else of the bremen source tree."""
    local = Path("weights") / task
    if local.is_dir():
        return local
    return Path(bremen.__file__).resolve().parent.parent / "weights" / task


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Actor:
    """The action rule of one block."""

    def __init__(self, block: Block, policy: Optional[NumpyPolicy], low, high, rng: np.random.Generator):
        self.block, self.policy, self.low, self.high, self.rng = block, policy, low, high, rng

    def __call__(self, obs) -> np.ndarray:
        b, rng = self.block, self.rng
        if b.kind == "random":
            return self.uniform()
        a = self.policy.act(obs, deterministic=False, rng=rng)
        if b.kind == "eps":
            if rng.random() < b.param:
                a = self.uniform()
        elif b.kind == "gaussian":
            a = a + b.param * rng.standard_normal(a.shape, dtype=np.float32)
            a = np.clip(a, self.low + GAUSSIAN_CLIP_MARGIN, self.high - GAUSSIAN_CLIP_MARGIN)
        return a.astype(np.float32)

    def uniform(self) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


def collect(task, noise: str, n: int, policy: Optional[NumpyPolicy] = None, seed: int = 0,
            progress: bool = True, metadata: Optional[dict] = None) -> Dataset:
    """Collect ``n`` transitions of ``task`` (a Task) with strategy ``noise``; see the module docstring."""
    blocks = NOISES[noise]
    if policy is None and any(b.kind != "random" for b in blocks):
        raise UserError(f"--noise {noise} needs a policy; give --policy")
    low = np.broadcast_to(np.asarray(task.act_low, np.float32), (task.act_dim,))
    high = np.broadcast_to(np.asarray(task.act_high, np.float32), (task.act_dim,))
    obs_buf = np.zeros((n, task.obs_dim), np.float32)
    next_buf = np.zeros((n, task.obs_dim), np.float32)
    act_buf = np.zeros((n, task.act_dim), np.float32)
    rew_buf = np.zeros((n,), np.float32)
    term_buf = np.zeros((n,), bool)
    timeout_buf = np.zeros((n,), bool)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11]))
    env = task.make_env()
    composition = []
    i = episode = 0
    bar = tqdm(total=n, unit="step", disable=not progress, dynamic_ncols=True, mininterval=0.5)
    try:
        for block, size in zip(blocks, block_sizes(n, blocks)):
            composition.append({"name": block.name, "kind": block.kind, "param": block.param,
                                "start": i, "stop": i + size})
            if size == 0:
                continue
            actor = _Actor(block, policy, low, high, rng)
            obs, _ = env.reset(seed=episode_seed(seed, episode))
            episode += 1
            for _ in range(size):
                act = actor(obs)
                next_obs, rew, term, trunc, _ = env.step(act)
                obs_buf[i], act_buf[i], rew_buf[i], next_buf[i] = obs, act, rew, next_obs
                term_buf[i], timeout_buf[i] = term, trunc and not term
                i += 1
                if term or trunc:
                    obs, _ = env.reset(seed=episode_seed(seed, episode))
                    episode += 1
                else:
                    obs = next_obs
                if i % 1000 == 0:
                    bar.update(1000)
            if not term_buf[i - 1]:
                timeout_buf[i - 1] = True
        bar.update(n - bar.n)
    finally:
        bar.close()
        env.close()
    meta = {
        "task": task.name,
        "noise": noise,
        "seed": int(seed),
        "n": int(n),
        "blocks": composition,
        "episodes_started": episode,
        **(metadata or {}),
    }
    return Dataset.from_arrays(
        {"observations": obs_buf, "actions": act_buf, "rewards": rew_buf, "next_observations": next_buf,
         "terminals": term_buf, "timeouts": timeout_buf},
        metadata=meta, source=f"collect {task.name} {noise}",
    )


def run_collect(task_name: str, noise: str, n: int, out, policy_path=None, seed: int = 0, force: bool = False,
                created: Optional[str] = None, progress: bool = True) -> dict:
    """``bremen collect``: check the inputs, collect, write ``out`` atomically; returns a short summary."""
    from bremen.tasks import make

    if noise not in NOISES:
        raise UserError(f"--noise {noise!r} is not one of {', '.join(NOISES)}")
    if n <= 0:
        raise UserError(f"--n must be a positive number of transitions, got {n}")
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; choose another --out or pass --force to overwrite it")
    if out.is_dir():
        raise UserError(f"{out} is a folder; --out names the dataset file to write, e.g. {out / 'data.h5'}")
    writable_file(out, "--out")
    task = make(task_name)
    policy = None
    meta: dict = {"source_policy": None, "policy_return": None}
    if NOISES[noise] != NOISES["random"]:
        path = Path(policy_path) if policy_path is not None else default_policy_path(task.name)
        if policy_path is None and not path.is_dir():
            raise UserError(
                f"no shipped policy for task {task.name!r} at weights/{task.name}/; train one with "
                f"`bremen train-behavior --task {task.name} --eval-target R` and pass "
                f"--policy log/behavior/{task.name}/seed0/partial_target"
            )
        policy = load_policy(path)
        if (policy.obs_dim, policy.act_dim) != (task.obs_dim, task.act_dim):
            raise UserError(
                f"{path}: the policy takes obs {policy.obs_dim} / act {policy.act_dim} but task {task.name!r} has "
                f"obs {task.obs_dim} / act {task.act_dim}; give a policy trained on {task.name}"
            )
        ret = policy.metadata.get("return", {})
        meta = {
            "source_policy": str(policy_path) if policy_path is not None else f"weights/{task.name}",
            "policy_sha256": file_sha256(policy_files(path)[0]),
            "policy_kind": policy.kind,
            "policy_task": policy.metadata.get("task"),
            "policy_return": ret.get("mean") if isinstance(ret, dict) else ret,
            "policy_return_how": ret,
        }
    if created is not None:
        meta["created"] = created
    t0 = time.perf_counter()
    ds = collect(task, noise, n, policy, seed, progress, meta)
    seconds = time.perf_counter() - t0
    save_dataset(ds, str(out))
    return {"path": str(out), "n": n, "seconds": seconds, "per_second": n / seconds,
            "episodes": int(ds.metadata["episodes_started"])}
