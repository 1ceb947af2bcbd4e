"""Online SAC training of behavior policies to a target return (``bremen train-behavior``; BRAC's partially
trained policy π_p), on the run driver.

The learner (bremen.learners.online_sac) collects its own steps; the driver (bremen.run.driver, plan
``online``) evaluates the deterministic policy a = tanh(μ(s)) every ``eval_every`` env steps on
``eval_episodes`` seeded episodes, exports the first policy whose **two consecutive** evaluation means both
reach ``eval_target`` as ``partial_target/`` (the policy data are collected with), the best evaluation as
``policy_best/`` and the last policy as ``policy_final/``, logs progress.csv and TensorBoard, and writes the
checkpoint after every evaluation, so ``--resume`` continues a killed run and ends where the uninterrupted
run would have (on CPU).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from bremen.algos.sac import SACConfig, sac_from_json, sac_to_json
from bremen.errors import UserError
from bremen.io.checkpoint import load_checkpoint
from bremen.learners.online_sac import OnlineSACConfig, OnlineSACLearner
from bremen.run.config import RunConfig
from bremen.run.directory import CHECKPOINT
from bremen.run.driver import Run
from bremen.tasks import make

SCRIPT = "online"


@dataclass(frozen=True)
class OnlineRunConfig:
    """A behavior-policy training run."""

    task: str
    """Task name (``bremen.tasks.make``)."""
    eval_target: float
    """Return both of two consecutive evaluations must reach for the partial-target policy."""
    env_steps: int = 1_000_000
    """Total environment steps, warm-up included (BRAC: 10k warm-up + 500k steps); ``--steps``."""
    seed: int = 0
    """Seed of every random stream of the run."""
    eval_every: int = 5_000
    """Environment steps between evaluations (and checkpoints)."""
    eval_episodes: int = 10
    """Episodes per evaluation of the deterministic policy."""
    update_every: int = 50
    """K: env steps collected, then K updates in one compiled call (1 = strict interleaving)."""
    warmup_steps: int = 10_000
    """Environment steps with uniform-random actions before the first update."""
    buffer_capacity: int = 1_000_000
    """Replay buffer capacity (circular)."""
    stop_at_target: bool = False
    """End the run once the partial-target policy is saved (BRAC trains on to ``env_steps``)."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters."""

    def to_json(self) -> dict:
        return {**asdict(self), "sac": sac_to_json(self.sac)}

    @classmethod
    def from_json(cls, d: dict) -> "OnlineRunConfig":
        return cls(**{**{k: v for k, v in d.items() if k != "script"}, "sac": sac_from_json(d["sac"])})


SMOKE = {"sac": SACConfig(q_hidden=(32, 32), actor_hidden=(32, 32), batch_size=32), "warmup_steps": 100,
         "buffer_capacity": 100_000}
"""Tiny networks and warm-up for smoke tests (seconds, not a useful policy)."""


def default_out_dir(task: str, seed: int) -> Path:
    return Path("log") / "behavior" / task / f"seed{seed}"


def online_run(config: OnlineRunConfig, out_dir, resume: bool = False, force: bool = False,
                 progress: bool = True) -> Run:
    """The driver's run of ``config`` in ``out_dir``."""
    c = config
    task = make(c.task)
    learner = OnlineSACLearner(task, OnlineSACConfig(c.env_steps, c.eval_every, c.update_every, c.warmup_steps,
                                                     c.buffer_capacity, c.sac), c.seed, say=Run.say_for(progress))
    run_config = RunConfig(
        script=SCRIPT, task=c.task, seed=c.seed, preset="online", algorithm="sac", label=f"SAC online {c.task}",
        run_dir=Path(out_dir), settings={"script": SCRIPT, **c.to_json()}, resume_free_keys=("env_steps",),
        eval_episodes=c.eval_episodes, eval_target=c.eval_target, stop_at_target=c.stop_at_target,
        dir_flag="--out", outer_iterations=learner.chunks)
    return Run(run_config, learner, resume=resume, force=force, progress=progress, task=task)


def train_online(config: OnlineRunConfig, out_dir=None, force: bool = False, progress: bool = True) -> dict:
    """Start a run in ``out_dir`` (default ``log/behavior/<task>/seed<S>/``); returns the run summary.

    ``force`` deletes an earlier run's files in ``out_dir`` first; without it an existing run is an error.
    """
    _check_config(config)
    out = Path(out_dir) if out_dir is not None else default_out_dir(config.task, config.seed)
    return _with_steps(online_run(config, out, force=force, progress=progress).execute(), config)


def resume_online(out_dir, steps: Optional[int] = None, task: Optional[str] = None,
                    progress: bool = True) -> dict:
    """Continue the run in ``out_dir`` from its checkpoint, with its saved configuration.

    ``steps`` (optional) changes the total number of env steps, e.g. to extend a finished run; ``task``
    (optional) is checked against the checkpoint's.
    """
    out = Path(out_dir)
    ckpt = out / CHECKPOINT
    if not ckpt.is_file():
        raise UserError(f"{out}: no checkpoint to resume ({CHECKPOINT} missing); start the run without --resume")
    _, meta = load_checkpoint(ckpt)
    stored = meta.get("config", {})
    if stored.get("script") != SCRIPT:
        raise UserError(f"{ckpt}: " + ("written by an earlier bremen (before the run driver trained behavior policies); "
                                       "start afresh with --force" if "eval_target" in stored else
                                       "not a train-behavior run; resume it with the command that started it"))
    if "env_steps" not in stored:
        raise UserError(f"{ckpt}: written by an earlier bremen (before SAC drew its minibatches on the device); "
                        f"start afresh with --force")
    config = OnlineRunConfig.from_json(meta["config"])
    if task is not None and task != config.task:
        raise UserError(f"{ckpt}: the checkpoint is of task {config.task!r}, not {task!r}; fix --task or --out")
    if steps is not None:
        if steps < meta["env_steps"]:
            raise UserError(f"--steps {steps} is below the {meta['env_steps']} steps already done in {out}")
        config = dataclasses.replace(config, env_steps=steps)
    return _with_steps(online_run(config, out, resume=True, progress=progress).execute(), config)


def _with_steps(summary: dict, c: OnlineRunConfig) -> dict:
    """The summary with the env step of the best and the partial-target evaluations."""
    step = lambda itr: min((itr + 1) * c.eval_every, c.env_steps)  # noqa: E731
    summary["best_step"] = step(summary["best_iteration"])
    if summary.get("partial_target"):
        summary["partial_target"] = {**summary["partial_target"], "step": step(summary["partial_target"]["iteration"])}
    return summary


def _check_config(c: OnlineRunConfig) -> None:
    if c.env_steps <= 0:
        raise UserError(f"--steps must be positive, got {c.env_steps}")
    if c.eval_every <= 0 or c.eval_episodes <= 0 or c.update_every <= 0:
        raise UserError("--eval-every, --eval-episodes and --update-every must be positive")
    if c.warmup_steps < 0 or c.buffer_capacity <= 0:
        raise UserError(f"warmup_steps must be >= 0 and buffer_capacity positive, got {c.warmup_steps}, "
                        f"{c.buffer_capacity}")
    if not math.isfinite(c.eval_target):
        raise UserError(f"--eval-target must be a finite number, got {c.eval_target}")
