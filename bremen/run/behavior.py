"""Online SAC training of behavior policies to a target return (BRAC's partially trained policy π_p).

The run (``bremen train-behavior``), after BRAC's ``train_eval_online``:

1. ``warmup_steps`` environment steps with uniform-random actions fill the replay buffer;
2. then every environment step (a sample of the stochastic tanh-Gaussian policy) is followed by one SAC
   update. Steps and updates are done in chunks of ``update_every``: K env steps with the actor held
   fixed, then K updates in one compiled call. Update j of a chunk draws its minibatch only from the
   transitions stored up to the j-th step of the chunk, so the data each update sees is the same as with
   strict step/update interleaving; only the acting policy lags by at most K − 1 updates;
3. every ``eval_every`` env steps the deterministic policy a = tanh(μ(s)) is evaluated on a separate
   env for ``eval_episodes`` episodes (seeded; the seeds are recorded with the returns);
4. the first policy whose last **two consecutive** evaluation means are both ≥ ``eval_target`` is
   exported as ``partial_target/`` (the policy data are collected with); the best evaluation so far as
   ``best/``; the policy at the end as ``final/`` (all in :mod:`bremen.io.policy_io` format);
5. after every evaluation a checkpoint is written atomically (agent state, replay buffer, NumPy RNG
   state, counters, evaluation bookkeeping and the current training episode as its reset seed plus the
   actions taken so far, replayed on resume to rebuild the simulator state exactly), so ``--resume``
   continues a killed run and ends where the uninterrupted run would have (on CPU).

Every random stream comes from ``seed``: the SAC init key, one NumPy generator (warm-up actions,
exploration noise, minibatch indices), and the reset seed of training episode e and evaluation episode
(i, k), each a fixed function of (seed, e) or (seed, i, k).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import jax
import numpy as np
from tqdm import tqdm

from bremen import __version__
from bremen.algos.sac import SAC, SACConfig
from bremen.data.replay import ReplayBuffer
from bremen.errors import UserError
from bremen.io.checkpoint import arrays_to_pytree, load_checkpoint, pytree_to_arrays, save_checkpoint
from bremen.io.csvlog import CSVLog
from bremen.io.policy_io import NumpyPolicy, save_policy
from bremen.evaluation import derived_seed, evaluate
from bremen.io.tensorboard import TensorBoard
from bremen.run.directory import prepare_run_dir
from bremen.tasks import make

CHECKPOINT = "checkpoint.npz"
PROGRESS = "progress.csv"
CONFIG = "config.json"
POLICY_DIRS = ("partial_target", "best", "final")
CSV_FIELDS = [
    "step", "updates", "episodes", "eval_return_mean", "eval_return_std", "eval_return_min",
    "eval_return_max", "eval_episodes", "eval_length_mean", "train_return_last10", "alpha", "q_loss",
    "actor_loss", "alpha_loss", "entropy", "q_mean", "env_steps_per_s", "wall_time",
]
# stream tags of derived_seed
_TRAIN_EPISODE, _EVAL_EPISODE, _NUMPY = 1, 2, 3


@dataclass(frozen=True)
class BehaviorConfig:
    """A behavior-policy training run."""

    task: str
    """Task name (``bremen.tasks.make``)."""
    eval_target: float
    """Return both of two consecutive evaluations must reach for the partial-target policy."""
    steps: int = 1_000_000
    """Total environment steps, warm-up included (BRAC: 10k warm-up + 500k steps)."""
    seed: int = 0
    """Seed of every random stream of the run."""
    eval_every: int = 5_000
    """Environment steps between evaluations (and checkpoints)."""
    eval_episodes: int = 10
    """Episodes per evaluation of the deterministic policy."""
    update_every: int = 50
    """K: env steps collected, then K updates in one compiled call (1 = strict interleaving)."""
    stop_at_target: bool = False
    """End the run once the partial-target policy is saved (BRAC trains on to ``steps``)."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters."""

    def to_json(self) -> dict:
        d = asdict(self)
        d["sac"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["sac"].items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "BehaviorConfig":
        sac = {k: tuple(v) if isinstance(v, list) else v for k, v in d["sac"].items()}
        return cls(**{**d, "sac": SACConfig(**sac)})


SMOKE_SAC = SACConfig(q_hidden=(32, 32), actor_hidden=(32, 32), batch_size=32, warmup_steps=100)
"""Tiny networks and warm-up for smoke tests (seconds, not a useful policy)."""


def eval_seeds(seed: int, eval_index: int, episodes: int) -> list[int]:
    """Reset seeds of the episodes of evaluation number ``eval_index`` (0-based) of a run."""
    return [derived_seed(seed, _EVAL_EPISODE, eval_index, k) for k in range(episodes)]


def actor_policy(sac: SAC, actor, metadata: Optional[dict] = None) -> NumpyPolicy:
    """The SAC actor as a NumPy ``tanh_gaussian`` policy."""
    layers = [{"w": np.asarray(l["w"]), "b": np.asarray(l["b"])} for l in actor]
    c = sac.config
    return NumpyPolicy("tanh_gaussian", layers, sac.act_low, sac.act_high, "relu", c.log_std_min, c.log_std_max,
                       metadata=metadata)


def default_out_dir(task: str, seed: int) -> Path:
    return Path("log") / "behavior" / task / f"seed{seed}"


class BehaviorTrainer:
    """One training run in ``out_dir``; :meth:`run` trains to ``config.steps`` and exports the policies."""

    def __init__(self, config: BehaviorConfig, out_dir, progress: bool = True):
        c = self.config = config
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.task = make(c.task)
        self.sac = SAC(self.task.obs_dim, self.task.act_dim, self.task.act_low, self.task.act_high, c.sac)
        self.act_low, self.act_high = self.sac.act_low, self.sac.act_high
        self.env = self.task.make_env()
        self.eval_env = self.task.make_env()
        self.buffer = ReplayBuffer(self.task.obs_dim, self.task.act_dim, c.sac.buffer_capacity)
        self.agent = self.sac.init(jax.random.PRNGKey(derived_seed(c.seed)))
        self.rng = np.random.default_rng(derived_seed(c.seed, _NUMPY))
        self.env_steps = 0
        self.updates = 0
        self.episode = 0
        self.episode_return = 0.0
        self.episode_actions: list = []
        self.recent_returns: deque = deque(maxlen=10)
        self.evals: list[dict] = []
        self.hits = 0
        self.partial_target: Optional[dict] = None
        self.best: Optional[dict] = None
        self.wall_time = 0.0
        self.interval_infos: list[dict] = []
        self.obs = self._reset_train_env()

    # ------------------------------------------------------------------ environment
    def _reset_train_env(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=derived_seed(self.config.seed, _TRAIN_EPISODE, self.episode))
        self.episode_actions = []
        self.episode_return = 0.0
        return obs

    def _collect(self, n: int) -> list[int]:
        """n env steps; returns the buffer size after each step that is followed by an update."""
        warm = self.env_steps < self.config.sac.warmup_steps
        policy = None if warm else actor_policy(self.sac, self.agent.actor)
        sizes = []
        for _ in range(n):
            if warm:
                act = self.rng.uniform(self.act_low, self.act_high).astype(np.float32)
            else:
                act = policy.act(self.obs, deterministic=False, rng=self.rng)
            next_obs, rew, term, trunc, _ = self.env.step(act)
            self.buffer.add(self.obs, act, rew, next_obs, term, trunc and not term)
            self.episode_actions.append(act)
            self.episode_return += float(rew)
            self.env_steps += 1
            if not warm:
                sizes.append(len(self.buffer))
            if term or trunc:
                self.recent_returns.append(self.episode_return)
                self.episode += 1
                self.obs = self._reset_train_env()
            else:
                self.obs = next_obs
        return sizes

    # ------------------------------------------------------------------ evaluation and export
    def _evaluate(self) -> dict:
        policy = actor_policy(self.sac, self.agent.actor)
        seeds = eval_seeds(self.config.seed, len(self.evals), self.config.eval_episodes)
        returns, lengths = evaluate(policy, self.eval_env, seeds)
        ev = {
            "step": self.env_steps,
            "mean": float(returns.mean()),
            "std": float(returns.std()),
            "min": float(returns.min()),
            "max": float(returns.max()),
            "episodes": len(seeds),
            "length_mean": float(lengths.mean()),
            "env_seeds": seeds,
        }
        self.evals.append(ev)
        return ev

    def _export(self, which: str, ev: dict, extra: Optional[dict] = None) -> None:
        c = self.config
        meta = {
            "task": c.task,
            "source": "SAC, bremen train-behavior",
            "label": which,
            "eval_target": c.eval_target,
            "return": {
                "mean": ev["mean"], "std": ev["std"], "min": ev["min"], "max": ev["max"],
                "episodes": ev["episodes"], "deterministic": True, "env_seeds": ev["env_seeds"],
                "measured_at_env_step": ev["step"],
                "how": "undiscounted return of the deterministic policy a = tanh(mu(s)) over full episodes of "
                       "task.make_env(), one episode per env reset seed",
            },
            "env_steps": self.env_steps,
            "updates": self.updates,
            "seed": c.seed,
            "wall_time_s": round(self.wall_time, 1),
            "sac_config": c.to_json()["sac"],
            **(extra or {}),
        }
        save_policy(self.out_dir / which, actor_policy(self.sac, self.agent.actor), meta)

    def _after_eval(self, ev: dict) -> None:
        c = self.config
        self.hits = self.hits + 1 if ev["mean"] >= c.eval_target else 0
        if self.hits >= 2 and self.partial_target is None:
            prev = self.evals[-2]
            self._export("partial_target", ev, {"previous_eval_return": prev["mean"]})
            self.partial_target = {"step": ev["step"], "mean": ev["mean"], "previous_mean": prev["mean"]}
        if self.best is None or ev["mean"] > self.best["mean"]:
            self._export("best", ev)
            self.best = {"step": ev["step"], "mean": ev["mean"]}

    def _log(self, ev: dict, steps_per_s: float) -> None:
        infos = self.interval_infos
        mean_info = {k: float(np.mean([i[k] for i in infos])) for k in infos[0]} if infos else {}
        for k in ("mean", "min", "max"):
            self.tb.add_scalar(f"eval/return_{k}", ev[k], self.env_steps)
        for k, v in mean_info.items():
            self.tb.add_scalar(f"train/{k}", v, self.env_steps)
        self.tb.flush()
        self.csv.write({
            "step": self.env_steps, "updates": self.updates, "episodes": self.episode,
            "eval_return_mean": ev["mean"], "eval_return_std": ev["std"], "eval_return_min": ev["min"],
            "eval_return_max": ev["max"], "eval_episodes": ev["episodes"], "eval_length_mean": ev["length_mean"],
            "train_return_last10": float(np.mean(self.recent_returns)) if self.recent_returns else "",
            "alpha": mean_info.get("alpha", math.exp(self.config.sac.init_log_alpha)),
            "q_loss": mean_info.get("q_loss", ""), "actor_loss": mean_info.get("actor_loss", ""),
            "alpha_loss": mean_info.get("alpha_loss", ""), "entropy": mean_info.get("entropy", ""),
            "q_mean": mean_info.get("q_mean", ""), "env_steps_per_s": steps_per_s, "wall_time": self.wall_time,
        })
        self.interval_infos = []

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        arrays = pytree_to_arrays(self.agent, "agent")
        arrays.update({f"buffer/{k}": v for k, v in self.buffer.state_dict().items()})
        arrays["episode_actions"] = np.asarray(self.episode_actions, np.float32).reshape(-1, self.task.act_dim)
        arrays["obs"] = np.asarray(self.obs)
        meta = {
            "config": self.config.to_json(),
            "bremen_version": __version__,
            "env_steps": self.env_steps,
            "updates": self.updates,
            "episode": self.episode,
            "episode_return": self.episode_return,
            "recent_returns": list(self.recent_returns),
            "rng": self.rng.bit_generator.state,
            "evals": self.evals,
            "hits": self.hits,
            "partial_target": self.partial_target,
            "best": self.best,
            "wall_time": self.wall_time,
        }
        save_checkpoint(self.out_dir / CHECKPOINT, arrays, meta)

    def restore(self, arrays: dict, meta: dict) -> None:
        """Load a checkpoint and rebuild the training env's state by replaying the current episode."""
        self.agent = arrays_to_pytree(self.agent, arrays, "agent")
        self.buffer.load_state_dict({k[len("buffer/"):]: v for k, v in arrays.items() if k.startswith("buffer/")})
        self.rng.bit_generator.state = meta["rng"]
        for k in ("env_steps", "updates", "episode", "hits", "partial_target", "best", "wall_time", "evals"):
            setattr(self, k, meta[k])
        self.recent_returns = deque(meta["recent_returns"], maxlen=10)
        obs = self._reset_train_env()
        for act in arrays["episode_actions"]:
            obs, rew, *_ = self.env.step(act)
            self.episode_actions.append(act)
            self.episode_return += float(rew)
        if not np.array_equal(obs, arrays["obs"]) or self.episode_return != meta["episode_return"]:
            raise UserError(
                f"{self.out_dir / CHECKPOINT}: replaying the current episode did not reproduce the saved state "
                f"(the environment is not deterministic here); start a new run with --force"
            )
        self.obs = obs

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict:
        """Train to ``config.steps`` env steps (continuing from the restored state); returns a summary."""
        c = self.config
        self.csv = CSVLog(self.out_dir / PROGRESS, CSV_FIELDS)
        self.csv.truncate("step", self.env_steps)
        self.tb = TensorBoard(self.out_dir / "tb", purge_step=self.env_steps + 1 if self.env_steps else None)
        last = self.evals[-1]["mean"] if self.evals else float("nan")
        bar = tqdm(total=c.steps, initial=self.env_steps, unit="step", disable=not self.progress,
                   dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 30.0)
        bar.set_postfix(eval=f"{last:.1f}", target=f"{c.eval_target:g}")
        t_start, steps_start = time.perf_counter(), self.env_steps
        wall_before = self.wall_time
        interval_t, interval_steps = time.perf_counter(), self.env_steps
        while self.env_steps < c.steps and not (c.stop_at_target and self.partial_target):
            n = min(c.update_every, c.steps - self.env_steps, c.eval_every - self.env_steps % c.eval_every)
            if self.env_steps < c.sac.warmup_steps:
                n = min(n, c.sac.warmup_steps - self.env_steps)
            sizes = self._collect(n)
            if sizes:
                batches = self.buffer.sample(self.rng, c.sac.batch_size, len(sizes), sizes)
                self.agent, info = self.sac.update_many(self.agent, batches)
                self.updates += len(sizes)
                self.interval_infos.append({k: float(v) for k, v in info.items()})
            bar.update(n)
            if self.env_steps % c.eval_every == 0 or self.env_steps == c.steps:
                self.wall_time = wall_before + time.perf_counter() - t_start
                ev = self._evaluate()
                self._after_eval(ev)
                now = time.perf_counter()
                self._log(ev, (self.env_steps - interval_steps) / max(now - interval_t, 1e-9))
                interval_t, interval_steps = now, self.env_steps
                self.save()
                bar.set_postfix(eval=f"{ev['mean']:.1f}", target=f"{c.eval_target:g}",
                                reached=str(self.partial_target["step"]) if self.partial_target else "no")
        bar.close()
        self.tb.close()
        self.wall_time = wall_before + time.perf_counter() - t_start
        self._export("final", self.evals[-1])
        return {
            "env_steps": self.env_steps,
            "steps_this_session": self.env_steps - steps_start,
            "last_eval": self.evals[-1] if self.evals else None,
            "best": self.best,
            "partial_target": self.partial_target,
            "wall_time": self.wall_time,
        }


def train_behavior(config: BehaviorConfig, out_dir=None, force: bool = False, progress: bool = True) -> dict:
    """Start a run in ``out_dir`` (default ``log/behavior/<task>/seed<S>/``); returns the run summary.

    ``force`` deletes an earlier run's files in ``out_dir`` first; without it an existing run is an error.
    """
    _check_config(config)
    out = Path(out_dir) if out_dir is not None else default_out_dir(config.task, config.seed)
    make(config.task)
    prepare_run_dir(out, resume=False, force=force, what="--out", elsewhere="--out")  # the run driver's rules
    out.mkdir(parents=True, exist_ok=True)
    trainer = BehaviorTrainer(config, out, progress)
    (out / CONFIG).write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return trainer.run()


def resume_behavior(out_dir, steps: Optional[int] = None, task: Optional[str] = None,
                    progress: bool = True) -> dict:
    """Continue the run in ``out_dir`` from its checkpoint, with its saved configuration.

    ``steps`` (optional) changes the total number of env steps, e.g. to extend a finished run; ``task``
    (optional) is checked against the checkpoint's.
    """
    out = Path(out_dir)
    ckpt = out / CHECKPOINT
    if not ckpt.is_file():
        raise UserError(f"{out}: no checkpoint to resume ({CHECKPOINT} missing); start the run without --resume")
    arrays, meta = load_checkpoint(ckpt)
    config = BehaviorConfig.from_json(meta["config"])
    if task is not None and task != config.task:
        raise UserError(f"{ckpt}: the checkpoint is of task {config.task!r}, not {task!r}; fix --task or --out")
    if steps is not None:
        if steps < meta["env_steps"]:
            raise UserError(f"--steps {steps} is below the {meta['env_steps']} steps already done in {out}")
        config = dataclasses.replace(config, steps=steps)
    trainer = BehaviorTrainer(config, out, progress)
    trainer.restore(arrays, meta)
    return trainer.run()


def _check_config(c: BehaviorConfig) -> None:
    if c.steps <= 0:
        raise UserError(f"--steps must be positive, got {c.steps}")
    if c.eval_every <= 0 or c.eval_episodes <= 0 or c.update_every <= 0:
        raise UserError("--eval-every, --eval-episodes and --update-every must be positive")
    if not math.isfinite(c.eval_target):
        raise UserError(f"--eval-target must be a finite number, got {c.eval_target}")
