"""MOPO's policy optimizer: SAC on a mix of real and penalized model transitions (bremen.algos.mopo).

It plugs into the model-based learner (bremen.learners.model_based) beside TRPO: the learner fits the
probabilistic ensemble and picks its elites; this optimizer has one phase of its own, ``train``, whose
chunks are MOPO's epochs. A chunk is ``updates_per_epoch`` SAC updates; before every ``rollout_every`` of them the
actor rolls out in the model from data states into the model buffer (bremen.algos.replay, on the device), and
the updates draw ``real_ratio`` of each minibatch from the data and the rest from that buffer, all in compiled
calls. In a recursive run the actor and critics carry over from one deployment to the next; the model buffer
starts empty with each new model.

Its state (SAC's pytree, the model buffer's rows, the rollout counter) is in every checkpoint, so a resumed
run continues exactly.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos.agent import Spec, batch_from_arrays, update_many_mixed
from bremen.algos.mopo import MOPOConfig, model_rollout
from bremen.algos.replay import ReplayBuffer
from bremen.algos.sac import SAC, actor_policy
from bremen.io.policy_io import NumpyPolicy
from bremen.learners import ChunkReport

K_SAC, K_ROLLOUT = 5, 6  # phase keys of the derived RNG streams (the learner's model: 1)
SAC_KEYS = ("q_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_mean")
ROLLOUT_KEYS = ("penalty_mean", "model_reward_mean", "terminated_fraction")
PROGRESS_KEYS = ["Iteration", "episode_mean", "episode_min", "episode_max", "episode_std", "episodes",
                 "TotalSamples", "updates", "model_transitions", *ROLLOUT_KEYS, *SAC_KEYS, "best_return",
                 "model_val_loss", "time_train", "time_eval", "time_total"]


class MOPOOptimizer:
    """SAC on real and model transitions (see the module docstring)."""

    phases = ("train",)
    chunk_phase = "train"
    state_names = ("sac",)
    progress_keys = PROGRESS_KEYS
    detail_log, detail_keys = None, None
    eval_scalars = ("episode_mean", "episode_min", "episode_max", "best_return", "penalty_mean", "q_mean")
    tb_steps_per_chunk = 1

    def __init__(self, task, config: MOPOConfig, seed: int, key):
        self.task, self.config, self.seed, self.key = task, config, seed, key
        self.spec = Spec.of(task.obs_dim, task.act_dim, task.act_low, task.act_high)
        self.agent = SAC(self.spec, config.sac)
        self.sac = None
        self.buffer = self._new_buffer()
        self.updates = self.rollouts = self.deployment = 0
        self._real_of = self._real_batch = None

    def _new_buffer(self) -> ReplayBuffer:
        c = self.config
        capacity = c.retain_rollouts * c.rollout_batch_size * c.rollout_length
        return ReplayBuffer(self.task.obs_dim, self.task.act_dim, capacity)

    # ------------------------------------------------------------------ policies
    def policy(self) -> NumpyPolicy:
        return actor_policy(self.agent, self.sac.actor)

    def bc_policy(self):
        return None

    def sampling_noise(self, policy) -> str:
        return "the tanh_gaussian policy's own samples"

    # ------------------------------------------------------------------ phases
    def prepare(self, model, data, bc_data, hooks, deployment: int, restore) -> dict:
        """A deployment's start: SAC from scratch (deployment 0) or carried over, an empty model buffer."""
        if self.sac is None or deployment == 0:
            key = jax.random.fold_in(self.key, K_SAC)
            self.sac = self.agent.init(key)
        self.buffer, self.deployment, self.updates = self._new_buffer(), deployment, 0
        return {}

    def _real(self, data):
        """The data as a device :class:`Batch` (made once per deployment's data)."""
        if self._real_of is not data:
            self._real_batch = batch_from_arrays(data.observations, data.actions, data.rewards,
                                                 data.next_observations, data.terminals)
            self._real_of = data
        return self._real_batch

    def chunk(self, itr: int, model) -> dict:
        """One MOPO epoch: per ``rollout_every`` updates, a model rollout into the buffer, then the updates."""
        c, t0 = self.config, time.perf_counter()
        real = self._real(model.data)
        starts = real.observations  # rollouts start from data states
        elites = jnp.asarray(model.elites, jnp.int32)
        n_real = int(round(c.real_ratio * c.sac.batch_size))
        rollout_infos, sac_infos = [], []
        for _ in range(c.updates_per_epoch // c.rollout_every):
            key = jax.random.fold_in(jax.random.fold_in(self.key, K_ROLLOUT), self.rollouts)
            k_start, k_roll = jax.random.split(jax.random.fold_in(key, self.deployment))
            idx = jax.random.randint(k_start, (c.rollout_batch_size,), 0, starts.shape[0])
            rows, count, info = model_rollout(
                self.sac.actor, model.ens.params, model.norm, elites, starts[idx], k_roll, env=model.env,
                spec=self.spec, horizon=c.rollout_length, penalty_coef=c.penalty_coef,
                log_std_min=c.sac.log_std_min, log_std_max=c.sac.log_std_max)
            self.buffer.add_rows(rows, int(count))
            self.rollouts += 1
            rollout_infos.append(info)
            self.sac, info = update_many_mixed(self.agent, self.sac, real, self.buffer.data,
                                               jnp.asarray(len(self.buffer)), c.rollout_every, c.sac.batch_size,
                                               n_real)
            self.updates += c.rollout_every
            sac_infos.append(info)
        mean = lambda infos, keys: {k: float(np.mean([float(i[k]) for i in infos])) for k in keys}  # noqa: E731
        return {**mean(rollout_infos, ROLLOUT_KEYS), **mean(sac_infos, SAC_KEYS),
                "updates": self.updates, "model_transitions": len(self.buffer),
                "updates_per_s": c.updates_per_epoch / max(time.perf_counter() - t0, 1e-9)}

    # ------------------------------------------------------------------ logs
    def report(self, itr: int, info: dict) -> ChunkReport:
        keys = ("updates", "model_transitions", *ROLLOUT_KEYS, *SAC_KEYS)
        progress = {k: info[k] for k in keys}
        scalars = [(f"mopo/{k}", float(info[k]), itr) for k in (*ROLLOUT_KEYS, *SAC_KEYS, "updates_per_s")]
        return ChunkReport(progress, [], scalars)

    def summary(self, chunks: int) -> dict:
        return {"sac_updates": chunks * self.config.updates_per_epoch}

    # ------------------------------------------------------------------ state for checkpoints
    def state_arrays(self) -> dict:
        if self.sac is None:
            return {}
        buffer = {f"model_buffer/{k}": np.asarray(v) for k, v in self.buffer.state_dict().items()}
        return {"sac": self.sac, **buffer,
                "mopo_counters": np.asarray([self.updates, self.rollouts, self.deployment], np.int64)}

    def templates(self, data, model) -> dict:
        return {"sac": self.agent.init(jax.random.PRNGKey(0))}

    def restore(self, state: dict, arrays: dict, meta: dict, model) -> None:
        self.sac = state["sac"]
        self.buffer = self._new_buffer()
        self.buffer.load_state_dict({k[len("model_buffer/"):]: v for k, v in arrays.items()
                                     if k.startswith("model_buffer/")})
        self.updates, self.rollouts, self.deployment = (int(x) for x in arrays["mopo_counters"])

    def restore_part(self, what: str, state: dict, meta: dict) -> None:
        raise ValueError(f"--restore_{what}_variables: MOPO has no {what} part; restore the dynamics only")
