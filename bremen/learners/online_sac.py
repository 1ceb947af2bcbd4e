"""Online SAC: a learner that collects its own steps (``bremen train-behavior``, BRAC's ``train_eval_online``).

1. ``warmup_steps`` environment steps with uniform-random actions fill the replay buffer;
2. then every environment step (a sample of the stochastic tanh-Gaussian policy) is followed by one SAC
   update (bremen.algos.sac, on the agent contract). Steps and updates are done in blocks of
   ``update_every``: K env steps with the actor held fixed, written to the device-resident replay buffer in
   one call, then K updates in one compiled call that draws the minibatches on the device. Update j of a
   block draws only from the transitions stored up to the j-th step of the block, so the data each update
   sees is the same as with strict step/update interleaving; only the acting policy lags by at most K − 1
   updates;
3. a chunk is ``eval_every`` env steps; after each the run driver evaluates, logs, exports and checkpoints
   (bremen.run.driver). The checkpoint holds the agent, the replay buffer, the NumPy RNG state, the counters
   and the current training episode as its reset seed plus the actions taken so far, replayed on resume to
   rebuild the simulator state exactly, so ``--resume`` ends where the uninterrupted run would have (on CPU).

Every random stream comes from ``seed``: the SAC key (init, then the minibatch indices and the updates'
samples), one NumPy generator (warm-up actions, exploration noise) and the reset seed of training episode e,
a fixed function of (seed, e).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import jax
import numpy as np

from bremen.algos.agent import Spec, update_many
from bremen.algos.replay import ReplayBuffer
from bremen.algos.sac import SAC, SACConfig, actor_policy, sac_to_json
from bremen.errors import UserError
from bremen.evaluation import derived_seed
from bremen.io.checkpoint import CHECKPOINT_FILE, arrays_to_pytree, load_checkpoint, pytree_to_arrays
from bremen.io.policy_io import NumpyPolicy
from bremen.learners import ChunkReport

# stream tags of derived_seed (evaluation episodes: bremen.run.driver's, stream 2)
_TRAIN_EPISODE, _NUMPY = 1, 3
INFO_KEYS = ("alpha", "q_loss", "actor_loss", "alpha_loss", "entropy", "q_mean")
PROGRESS_KEYS = ["Iteration", "env_steps", "updates", "train_episodes", "episode_mean", "episode_min", "episode_max",
                 "episode_std", "episodes", "TotalSamples", "train_return_last10", *INFO_KEYS, "best_return",
                 "env_steps_per_s", "time_train", "time_eval", "time_total"]


@dataclass(frozen=True)
class OnlineSACConfig:
    """The online schedule and SAC's hyperparameters."""

    env_steps: int = 1_000_000
    """Total environment steps, warm-up included (BRAC: 10k warm-up + 500k steps)."""
    eval_every: int = 5_000
    """Environment steps per chunk: the driver evaluates, logs and checkpoints after each."""
    update_every: int = 50
    """K: env steps collected, then K updates in one compiled call (1 = strict interleaving)."""
    warmup_steps: int = 10_000
    """Environment steps with uniform-random actions before the first update."""
    buffer_capacity: int = 1_000_000
    """Replay buffer capacity (circular)."""
    sac: SACConfig = field(default_factory=SACConfig)


class OnlineSACLearner:
    """SAC trained on the steps it collects itself (see the module docstring)."""

    phases = ("train",)
    chunk_phase = "train"
    progress_keys = PROGRESS_KEYS
    detail_log, detail_keys = None, None  # every chunk's numbers are in progress.csv
    eval_scalars = ("episode_mean", "episode_min", "episode_max", "best_return")
    tb_steps_per_chunk = 1

    def __init__(self, task, config: OnlineSACConfig, seed: int, say: Callable[[str], None] = lambda m: None):
        self.task, self.config, self.seed, self.say = task, config, int(seed), say
        c = config
        self.sac = SAC(Spec.of(task.obs_dim, task.act_dim, task.act_low, task.act_high), c.sac)
        self.env = task.make_env()
        self.buffer = ReplayBuffer(task.obs_dim, task.act_dim, c.buffer_capacity)
        self.agent = self.sac.init(jax.random.PRNGKey(derived_seed(self.seed)))
        self.rng = np.random.default_rng(derived_seed(self.seed, _NUMPY))
        self.env_steps = self.updates = self.episode = 0
        self.episode_return = 0.0
        self.episode_actions: list = []
        self.recent_returns: deque = deque(maxlen=10)
        self.model_val_loss = self.bc_loss = None
        self.obs = self._reset_train_env()

    @property
    def chunks(self) -> int:
        return -(-self.config.env_steps // self.config.eval_every)

    # ------------------------------------------------------------------ the environment
    def _reset_train_env(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=derived_seed(self.seed, _TRAIN_EPISODE, self.episode))
        self.episode_actions = []
        self.episode_return = 0.0
        return obs

    def _collect(self, n: int) -> list[int]:
        """n env steps, stored in the buffer in one write; returns the buffer size after each step that is
        followed by an update (none during the warm-up)."""
        warm = self.env_steps < self.config.warmup_steps
        policy = None if warm else self.policy()
        low, high = (np.asarray(b, np.float32) for b in (self.sac.spec.act_low, self.sac.spec.act_high))
        rows = []
        for _ in range(n):
            if warm:
                act = self.rng.uniform(low, high).astype(np.float32)
            else:
                act = policy.act(self.obs, deterministic=False, rng=self.rng)
            next_obs, rew, term, trunc, _ = self.env.step(act)
            rows.append((self.obs, act, rew, next_obs, float(term)))
            self.episode_actions.append(act)
            self.episode_return += float(rew)
            self.env_steps += 1
            if term or trunc:
                self.recent_returns.append(self.episode_return)
                self.episode += 1
                self.obs = self._reset_train_env()
            else:
                self.obs = next_obs
        sizes = self.buffer.add(*(np.stack(col) for col in zip(*rows)))
        return [] if warm else sizes

    # ------------------------------------------------------------------ fit
    def fit(self, data, train, val, hooks, phase: str = "new", start: int = 0, deployment: int = 0,
            bc_data=None, end: Optional[int] = None) -> None:
        """Chunks ``start`` .. ``end`` (default: all): collect and update until the chunk's last env step, then
        ``hooks.step("train", chunk, info)`` (returning False stops). The data given is not used: the learner
        trains on its own steps."""
        c = self.config
        for chunk in range(start, self.chunks if end is None else end):
            t0, steps0, infos = time.perf_counter(), self.env_steps, []
            stop_at = min((chunk + 1) * c.eval_every, c.env_steps)
            while self.env_steps < stop_at:
                n = min(c.update_every, stop_at - self.env_steps)
                if self.env_steps < c.warmup_steps:
                    n = min(n, c.warmup_steps - self.env_steps)
                sizes = self._collect(n)
                if sizes:
                    self.agent, info = update_many(self.sac, self.agent, self.buffer.data, len(sizes),
                                                   c.sac.batch_size, np.asarray(sizes, np.int32))
                    self.updates += len(sizes)
                    infos.append({k: float(v) for k, v in info.items()})
            info = {k: float(np.mean([i[k] for i in infos])) for k in infos[0]} if infos else {}
            info["env_steps_per_s"] = (self.env_steps - steps0) / max(time.perf_counter() - t0, 1e-9)
            if hooks.step("train", chunk, info) is False:
                return

    def report(self, chunk: int, info: dict, transitions=None) -> ChunkReport:
        """A chunk's progress.csv columns (the mean SAC info of its updates) and TensorBoard scalars."""
        progress = {"env_steps": self.env_steps, "updates": self.updates, "train_episodes": self.episode,
                    "TotalSamples": len(self.buffer),
                    "train_return_last10": float(np.mean(self.recent_returns)) if self.recent_returns else "",
                    "alpha": info.get("alpha", float(np.exp(self.config.sac.init_log_alpha))),
                    **{k: info.get(k, "") for k in INFO_KEYS[1:]}, "env_steps_per_s": info["env_steps_per_s"]}
        scalars = [(f"train/{k}", info[k], chunk) for k in INFO_KEYS if k in info]
        return ChunkReport(progress, [], scalars)

    def policy(self) -> NumpyPolicy:
        return actor_policy(self.sac, self.agent.actor)

    def sampling_noise(self, policy) -> str:
        return "the tanh_gaussian policy's own samples"

    def export_meta(self) -> dict:
        return {"env_steps": self.env_steps, "updates": self.updates, "sac_config": sac_to_json(self.config.sac)}

    def summary(self, chunks: int) -> dict:
        return {"env_steps": self.env_steps, "updates": self.updates, "train_episodes": self.episode}

    # ------------------------------------------------------------------ checkpoints
    def state_arrays(self, phase: str) -> dict:
        arrays = pytree_to_arrays(self.agent, "agent")
        arrays.update({f"buffer/{k}": v for k, v in self.buffer.state_dict().items()})
        arrays["episode_actions"] = np.asarray(self.episode_actions, np.float32).reshape(-1, self.task.act_dim)
        arrays["obs"] = np.asarray(self.obs)
        return arrays

    def state_meta(self) -> dict:
        return {"env_steps": self.env_steps, "updates": self.updates, "episode": self.episode,
                "episode_return": self.episode_return, "recent_returns": list(self.recent_returns),
                "rng": self.rng.bit_generator.state, "bc_loss": None, "model_val_loss": None}

    def restore(self, path: Path, data) -> dict:
        """Load the checkpoint and rebuild the training env's state by replaying the current episode."""
        path = Path(path) if not Path(path).is_dir() else Path(path) / CHECKPOINT_FILE
        arrays, meta = load_checkpoint(path)
        self.agent = arrays_to_pytree(self.agent, arrays, "agent")
        self.buffer.load_state_dict({k[len("buffer/"):]: v for k, v in arrays.items() if k.startswith("buffer/")})
        self.rng.bit_generator.state = meta["rng"]
        self.env_steps, self.updates, self.episode = meta["env_steps"], meta["updates"], meta["episode"]
        self.recent_returns = deque(meta["recent_returns"], maxlen=10)
        obs = self._reset_train_env()
        for act in arrays["episode_actions"]:
            obs, rew, *_ = self.env.step(act)
            self.episode_actions.append(act)
            self.episode_return += float(rew)
        if not np.array_equal(obs, arrays["obs"]) or self.episode_return != meta["episode_return"]:
            raise UserError(f"{path}: replaying the current episode did not reproduce the saved state (the "
                            f"environment is not deterministic here); start a new run with --force")
        self.obs = obs
        return meta

