"""A policy optimizer from outside the package, for tests/test_registry.py: random search on the model.

Each chunk tries ``candidates`` Gaussian perturbations of the policy's weights, scores each by its imagined
return (deterministic rollouts of the learned ensemble from dataset states) and keeps the best if it beats the
current policy. It has no phase of its own before its chunks, unlike TRPO's BC: the slot a model-based
learner gives any optimizer on its model's rollouts (bremen.learners.trpo_optimizer's contract)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bremen.io.policy_io import NumpyPolicy
from bremen.learners import ChunkReport
from bremen.models.model_env import rollout
from bremen.models.normalizer import mean_std, running_stats_init
from bremen.models.policy import policy_init

PROGRESS_KEYS = ["Iteration", "episode_mean", "episode_min", "episode_max", "episode_std", "episodes",
                 "TotalSamples", "imagined_return", "best_return", "model_val_loss", "bc_loss", "bc_return",
                 "step_wise_mse", "time_search", "time_eval", "time_total"]


class RandomSearch:
    phases = ("search",)
    chunk_phase = "search"
    state_names = ("search",)
    progress_keys = PROGRESS_KEYS
    detail_log, detail_keys = "search.csv", ["Iteration", "imagined_return", "accepted"]
    eval_scalars = ("episode_mean", "imagined_return")
    tb_steps_per_chunk = 1

    def __init__(self, task, seed: int, candidates: int = 16, scale: float = 0.3, horizon: int = 50):
        self.task, self.seed, self.candidates, self.scale, self.horizon = task, seed, candidates, scale, horizon
        self.params = self.stats = self.starts = None
        self.score = self.initial = -np.inf

    def prepare(self, model, data, bc_data, hooks, deployment, restore) -> dict:
        self.params = policy_init(jax.random.PRNGKey(self.seed), self.task.obs_dim, self.task.act_dim, (16,), None)
        self.stats = running_stats_init(self.task.obs_dim)
        self.starts = jnp.asarray(data.observations[::50], jnp.float32)
        self.score = self.initial = self.imagined(self.params, model)
        return {}

    def imagined(self, params, model) -> float:
        roll = rollout(params, self.stats, model.ens.params, model.norm, self.starts, jax.random.PRNGKey(0),
                       env=model.env, n_envs=32, horizon=self.horizon, deterministic=True, auto_reset=False)
        return float(jnp.sum(roll.rewards * roll.valid) / 32)

    def chunk(self, itr: int, model) -> dict:
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed + 1), itr)
        best, accepted = self.params, 0
        for k in jax.random.split(key, self.candidates):
            leaves, tree = jax.tree.flatten(self.params)
            noise = [self.scale * jax.random.normal(kk, x.shape) for kk, x in zip(jax.random.split(k, len(leaves)), leaves)]
            cand = jax.tree.unflatten(tree, [x + n for x, n in zip(leaves, noise)])
            score = self.imagined(cand, model)
            if score > self.score:
                best, self.score, accepted = cand, score, 1
        self.params = best
        return {"imagined_return": self.score, "accepted": accepted}

    def report(self, itr: int, info: dict) -> ChunkReport:
        return ChunkReport({"imagined_return": info["imagined_return"]}, [{"Iteration": itr, **info}],
                           [("search/imagined_return", info["imagined_return"], itr)])

    def policy(self) -> NumpyPolicy:
        mean, std = mean_std(self.stats)
        layers = [{"w": np.asarray(l["w"]), "b": np.asarray(l["b"])} for l in self.params]
        return NumpyPolicy("gaussian", layers, self.task.act_low, self.task.act_high, "relu",
                           obs_mean=np.asarray(mean), obs_std=np.asarray(std), sampling_std=0.1, const_sampling=True)

    def sampling_noise(self, policy) -> dict:
        return {"gaussian": 0.1, "const_sampling": True}

    def summary(self, chunks: int) -> dict:
        return {"imagined_return": self.score, "initial_imagined_return": self.initial}

    def state_arrays(self) -> dict:
        if self.params is None:
            return {}
        return {"search": {"params": self.params, "score": jnp.asarray(self.score)}, "starts": np.asarray(self.starts)}

    def templates(self, data, model) -> dict:
        params = policy_init(jax.random.PRNGKey(0), self.task.obs_dim, self.task.act_dim, (16,), None)
        return {"search": {"params": params, "score": jnp.asarray(0.0)}}

    def restore(self, state, arrays, meta, model) -> None:
        self.params, self.score = state["search"]["params"], float(state["search"]["score"])
        self.stats, self.starts = running_stats_init(self.task.obs_dim), jnp.asarray(arrays["starts"])
