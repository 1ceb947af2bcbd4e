"""TRPO on imaginary rollouts: the policy optimizer of BREMEN and ME-TRPO (ORIGINAL.md §2, §4).

A model-based learner (bremen.learners.model_based) is a dynamics ensemble plus a policy optimizer that trains
on the ensemble's rollouts. This one clones the data's actions (BC), starts its policy from BC's weights and
statistics (BREMEN) or from a fresh network (ME-TRPO), and runs ``trpo.iterations`` TRPO steps per chunk on
the model env. Its state is the BC fit and the TRPO state; the run driver checkpoints both after every phase
and chunk through the learner.

The optimizer contract (what the learner asks of any policy optimizer): ``phases`` (its phases after the
model fit, the last one being ``chunk_phase``), ``prepare(model, data, bc_data, hooks, deployment, restore)``
before the chunks of a deployment, ``chunk(itr)`` returning the chunk's info, ``report``, ``policy``,
``state_arrays``/``templates``/``restore``, and the logs' columns.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos import bc as bc_lib
from bremen.algos import policy_validation as pv
from bremen.algos import trpo as trpo_lib
from bremen.algos.trpo_value import baseline_fit
from bremen.evaluation import start_states
from bremen.io.policy_io import NumpyPolicy
from bremen.learners import ChunkReport, InnerLog
from bremen.models.normalizer import mean_std, normalize, running_stats_init
from bremen.models.policy import policy_init
from bremen.models.waiting import wait

# phase keys of the derived RNG streams (the model's is bremen.learners.model_based.K_MODEL = 1)
K_BC, K_TRPO, K_POLICY, K_VALIDATION = 2, 3, 4, 5
# progress.csv's columns of a model-based learner with this optimizer (the run driver fills the evaluation's,
# the times and best_return, and puts a recursive run's deployment columns after Iteration); trpo.csv's, one
# row per TRPO step
PROGRESS_KEYS = [
    "Iteration", "episode_mean", "episode_min", "episode_max", "episode_std", "episodes", "TotalSamples",
    "advantages_mean", "advantages_max", "advantages_min", "behavior_policy_kl_mean", "behavior_policy_kl_max",
    "behavior_policy_kl_min", "imagined_return", "step_fraction", "kl_after", "best_return",
    "model_val_loss", "bc_loss", "bc_return", "trpo_iterations", "step_wise_mse", "time_trpo", "time_eval",
    "time_total",
]
VALIDATION_KEYS = ["validation_ratio", "validation_misses", "validation_stopped"]
"""progress.csv's columns added by --policy_validation (bremen.algos.policy_validation)."""
TRPO_KEYS = ["Iteration", "inner", "advantages_mean", "advantages_max", "advantages_min",
             "behavior_policy_kl_mean", "behavior_policy_kl_max", "behavior_policy_kl_min", "surrogate_before",
             "surrogate_after", "expected_improvement", "kl_after", "step_fraction", "imagined_return",
             "episodes", "valid_steps"]


class Model(NamedTuple):
    """What a policy optimizer trains on: the fitted ensemble, its normalization and the model env; the members
    rollouts may sample (``elites``, ascending validation MSE) and the deployment's data (MOPO mixes it in)."""

    ens: object
    norm: object
    env: object
    elites: object = None
    data: object = None


def imaginary_starts(source: str, data, task, pool_size: int, seed: int) -> np.ndarray:
    """Start states of the imaginary rollouts (ORIGINAL.md §3.3).

    ``s_t`` (``--use_s_t``): every dataset observation (a rollout starts anywhere the behavior policy went,
    so later parts of long episodes are trained on even with H < episode length); ``s_0`` (``--use_s_0``):
    the first observation of each dataset episode; ``reset`` (the original's default): ``pool_size`` draws
    from the real env's reset distribution.
    """
    if source == "s_t":
        return data.observations
    if source == "s_0":
        return data.observations[[ep.start for ep in data.episodes()]]
    return start_states(task, pool_size, seed)


class TRPOOptimizer:
    """BC, then TRPO from BC (BREMEN) or from a fresh policy (ME-TRPO) on the model's rollouts."""

    phases = ("bc", "trpo")
    chunk_phase = "trpo"
    state_names = ("bc", "trpo")
    progress_keys = PROGRESS_KEYS
    detail_log, detail_keys = "trpo.csv", TRPO_KEYS
    eval_scalars = ("episode_mean", "episode_min", "episode_max", "best_return", "imagined_return", "kl_after")

    def __init__(self, task, config, seed: int, key):
        """``config``: the learner's ModelBasedConfig (bc, trpo, policy and start-state settings)."""
        self.task, self.config, self.seed, self.key = task, config, seed, key
        self.bc = self.trpo = None
        self.bc_loss = None
        self.validation = None  # --policy_validation's state (bremen.algos.policy_validation), else None
        if self.validates:
            self.state_names = self.state_names + ("validation",)
            self.progress_keys = PROGRESS_KEYS[:-3] + VALIDATION_KEYS + PROGRESS_KEYS[-3:]

    @property
    def validates(self) -> bool:
        return self.config.validation_ratio > 0

    @property
    def tb_steps_per_chunk(self) -> int:
        return self.config.trpo.iterations

    def _key(self, phase: int, deployment: int):
        key = jax.random.fold_in(self.key, phase)
        return key if deployment == 0 else jax.random.fold_in(key, deployment)

    # ------------------------------------------------------------------ policies
    def gaussian_policy(self, params, stats, metadata: Optional[dict] = None) -> NumpyPolicy:
        """A policy network as a NumPy ``gaussian`` policy (weights + running-stats normalizer)."""
        c = self.config
        mean, std = mean_std(stats)
        layers = [{"w": np.asarray(l["w"]), "b": np.asarray(l["b"])} for l in params]
        return NumpyPolicy("gaussian", layers, c.bc.act_low, c.bc.act_high, c.trpo.policy_activation,
                           obs_mean=np.asarray(mean), obs_std=np.asarray(std), sampling_std=c.trpo.sampling_std,
                           const_sampling=c.trpo.const_sampling, metadata=metadata)

    def policy(self) -> NumpyPolicy:
        return self.gaussian_policy(self.trpo.policy, self.trpo.stats)

    def bc_policy(self) -> NumpyPolicy:
        return self.gaussian_policy(self.bc.params, self.bc.stats)

    def sampling_noise(self, policy) -> dict:
        """How the deployed policy samples (a recursive batch's metadata)."""
        return {"gaussian": self.config.trpo.sampling_std, "const_sampling": self.config.trpo.const_sampling}

    # ------------------------------------------------------------------ phases
    def prepare(self, model: Model, data, bc_data, hooks, deployment: int, restore: Callable) -> dict:
        """The ``bc`` phase: BC (or ``restore("bc")``), the deployment's TRPO policy, the restored policy or
        value parts and the value pre-training. Returns the phase's info for ``hooks.step``."""
        c = self.config
        if "bc" in c.restore:
            restore("bc")
        else:
            self.fit_bc(bc_data, self._bc_callback(hooks), deployment)
        self.init_policy(model, data, deployment)
        for part in ("policy", "value"):
            if part in c.restore:
                restore(part)
        if c.pretrain_value:
            self.pretrain_value(data)
        if self.validates:
            self.validation = self.start_validation(model, deployment)
        return {"restored": "bc" in c.restore}

    def fit_bc(self, data, callback=None, deployment: int = 0) -> None:
        """Clone ``data``'s actions. From deployment 1 on, BC restarts from its initial weights while its
        observation statistics keep counting every batch ever cloned and its Adam moments carry over, as
        in the original (§2.2 c, §8.4)."""
        prev = self.bc if deployment > 0 else None
        self.bc, losses = bc_lib.fit_bc(self._key(K_BC, deployment), data.observations, data.actions,
                                        self.config.bc, stats=prev.stats if prev else None,
                                        opt_state=prev.opt_state if prev else None, callback=callback)
        self.bc_loss = losses[-1]

    def imaginary_starts(self, data) -> np.ndarray:
        return imaginary_starts(self.config.start_source, data, self.task, self.config.start_pool_size, self.seed)

    def init_policy(self, model: Model, data, deployment: int = 0) -> None:
        """The TRPO policy for this deployment: BC's weights and statistics (BREMEN, every deployment); a
        fresh policy at deployment 0 without BC init, carried over to later deployments (ME-TRPO)."""
        c = self.config
        if deployment > 0 and not c.bc_init:
            self.trpo = self.trpo._replace(behavior=self.bc.params, behavior_stats=self.bc.stats,
                                           ens_params=model.ens.params, norm=model.norm,
                                           start_obs=jnp.asarray(self.imaginary_starts(data), jnp.float32))
            return
        if c.bc_init:
            policy, stats = self.bc.params, self.bc.stats
        else:  # a fresh policy, normalized with the dataset's statistics (BC's; ME-TRPO) or, as the original's
            # --no_bc_init, with mean 0 / std 1 (quirk 9)
            policy = policy_init(jax.random.fold_in(self.key, K_POLICY), self.task.obs_dim, self.task.act_dim,
                                 tuple(c.policy_shape), c.bc.init_seed)
            stats = self.bc.stats if c.dataset_normalizer else running_stats_init(self.task.obs_dim)
        self.trpo = trpo_lib.trpo_init(policy, stats, self.bc.params, self.bc.stats, model.ens.params, model.norm,
                                       self.imaginary_starts(data), self._key(K_POLICY + 100, deployment), c.trpo)

    def pretrain_value(self, data) -> None:
        """--pretrain_value: fit the baseline to the dataset's λ-discounted rewards-to-go, per real episode.

        The original's targets (GAE with V = 0, i.e. Σ_k (γλ)^k r_{t+k}) on consecutive minibatches of a
        shuffled collection (quirk 25); here on the dataset's actual episodes, with t the step in the episode.
        """
        c, d = self.config.trpo, data
        y = np.zeros(len(d), np.float32)
        t = np.zeros(len(d), np.int32)
        for sl in d.episodes():
            acc = 0.0
            for i in range(sl.stop - 1, sl.start - 1, -1):
                acc = d.rewards[i] + c.gamma * c.gae_lambda * acc
                y[i] = acc
            t[sl] = np.arange(sl.stop - sl.start)
        obs_n = normalize(self.trpo.stats, jnp.asarray(d.observations))
        base = baseline_fit(c.baseline, self.trpo.baseline, obs_n, jnp.asarray(t), jnp.asarray(y),
                            jnp.ones(len(d), jnp.float32), c.baseline_reg)
        self.trpo = self.trpo._replace(baseline=base)

    def chunk(self, itr: int, model: Model) -> dict:
        """One outer iteration: trpo.iterations TRPO steps on imaginary rollouts (one compiled call); with
        --policy_validation, then a check (none of either once the deployment's TRPO has stopped)."""
        c = self.config
        v = self.validation
        if v is not None and bool(v.stopped):  # after the stop: no TRPO, its iterations counted as skipped
            self.validation = v._replace(skipped=v.skipped + c.trpo.iterations)
            return {k: np.zeros(0, np.float32) for k in TRPO_KEYS[2:]} | self._validation_info(None)
        if c.reinitialize_every_outer_iteration:
            self.trpo = self.trpo._replace(policy=self.bc.params, stats=self.bc.stats)
        key = jax.random.fold_in(jax.random.fold_in(self.key, K_TRPO), itr)
        self.trpo, info = trpo_lib.trpo_run(self.trpo, key, config=c.trpo, env=model.env, n_iters=c.trpo.iterations)
        info = jax.tree.map(np.asarray, wait(info))
        if self.validation is None:
            return info
        returns = self.member_returns(self.trpo.policy, self.trpo.stats, model, self.validation.key)
        self.validation, ratio, stop = pv.check(self.validation, returns, self.trpo.policy, self.trpo.stats,
                                                c.validation_ratio, c.validation_patience)
        if stop:  # back to the last policy that passed
            self.trpo = self.trpo._replace(policy=self.validation.ref_policy, stats=self.validation.ref_stats)
        return info | self._validation_info(ratio)

    # ------------------------------------------------------------------ --policy_validation
    def member_returns(self, policy, stats, model: Model, key):
        t = self.config.trpo
        return pv.member_returns(policy, stats, model.ens.params, model.norm, self.trpo.start_obs, key,
                                 env=model.env, n_envs=t.n_envs, horizon=t.horizon, sampling_std=t.sampling_std,
                                 const_sampling=t.const_sampling, policy_activation=t.policy_activation)

    def start_validation(self, model: Model, deployment: int) -> pv.ValidationState:
        """The deployment's first reference: the policy TRPO starts from, under this deployment's ensemble."""
        key = self._key(K_VALIDATION, deployment)
        returns = self.member_returns(self.trpo.policy, self.trpo.stats, model, key)
        skipped = self.validation.skipped if self.validation is not None else jnp.zeros((), jnp.int32)
        return pv.ValidationState(returns, self.trpo.policy, self.trpo.stats, jnp.zeros((), jnp.int32),
                                  jnp.zeros((), bool), key, skipped)

    def _validation_info(self, ratio) -> dict:
        """The check's columns (``ratio`` None: no check, TRPO had stopped)."""
        v = self.validation
        return {"validation_ratio": np.float32(np.nan if ratio is None else ratio),
                "validation_misses": np.int32(v.misses), "validation_stopped": np.bool_(v.stopped)}

    def _bc_callback(self, hooks):
        """BC's steps as bc.csv rows."""
        log = hooks.callback("bc", InnerLog("bc.csv", ["step", "loss"], self.config.bc.steps, "behavior cloning", "step"))
        return None if log is None else (lambda step, loss, state: log(step, {"step": step, "loss": loss},
                                                                        {"loss": f"{loss:.4f}"}))

    # ------------------------------------------------------------------ logs
    def report(self, itr: int, info: dict) -> tuple[dict, list, list]:
        """An outer iteration's trpo.csv rows, TensorBoard scalars per TRPO step, and progress.csv's columns
        (the last step's advantages and KL to BC, the chunk's mean imagined return, step fraction and KL)."""
        iters = self.config.trpo.iterations
        ran = len(info["kl_after"])  # 0 after --policy_validation stopped the deployment's TRPO
        details, scalars = [], []
        for i in range(ran):
            row = {k: info[k][i] for k in TRPO_KEYS[2:]}
            details.append({"Iteration": itr, "inner": i, **row})
            scalars += [(f"trpo/{k}", float(v), itr * iters + i) for k, v in row.items()]
        progress = {**{k: float(info[k][-1]) if ran else np.nan for k in TRPO_KEYS[2:9]},
                    **{k: float(np.mean(info[k])) if ran else np.nan
                       for k in ("imagined_return", "step_fraction", "kl_after")},
                    "bc_loss": self.bc_loss, "trpo_iterations": (itr + 1) * iters - self._skipped()}
        if self.validation is not None:
            progress.update({k: info[k].item() for k in VALIDATION_KEYS})
            scalars += [(f"validation/{k[11:]}", float(info[k]), (itr + 1) * iters) for k in VALIDATION_KEYS]
        return ChunkReport(progress, details, scalars)

    def _skipped(self) -> int:
        return 0 if self.validation is None else int(self.validation.skipped)

    def summary(self, chunks: int) -> dict:
        return {"trpo_iterations": chunks * self.config.trpo.iterations - self._skipped()}

    # ------------------------------------------------------------------ state for checkpoints
    def state_arrays(self) -> dict:
        """The optimizer's pytrees (none before its first ``prepare``); the model's parts are the learner's."""
        if self.trpo is None:
            return {}
        validation = {} if self.validation is None else {"validation": self.validation}
        return {"bc": self.bc, "trpo": self.trpo._replace(ens_params=None, norm=None, start_obs=None),
                "start_obs": np.asarray(self.trpo.start_obs), **validation}

    def templates(self, data, model: Model) -> dict:
        """Freshly initialized pytrees of the right shapes, to restore a checkpoint into."""
        c, t, d = self.config, self.task, data
        bc = bc_lib.bc_init(jax.random.PRNGKey(0), d.observations[:2], t.act_dim, c.bc)
        trpo = trpo_lib.trpo_init(bc.params, bc.stats, bc.params, bc.stats, model.ens.params, model.norm,
                                  np.zeros((1, t.obs_dim), np.float32), jax.random.PRNGKey(0), c.trpo)
        validation = {}
        if self.validates:
            k = jax.tree.leaves(model.ens.params)[0].shape[0]
            zero = jnp.zeros((), jnp.int32)
            validation = {"validation": pv.ValidationState(jnp.zeros((k,)), trpo.policy, trpo.stats, zero,
                                                           jnp.zeros((), bool), jax.random.PRNGKey(0), zero)}
        return {"bc": bc, "trpo": trpo._replace(ens_params=None, norm=None, start_obs=None), **validation}

    def restore(self, state: dict, arrays: dict, meta: dict, model: Model) -> None:
        """This run's own checkpoint: BC and the TRPO state, rejoined with the restored model."""
        self.bc = state["bc"]
        self.validation = state.get("validation")
        self.trpo = state["trpo"]._replace(ens_params=model.ens.params, norm=model.norm,
                                           start_obs=jnp.asarray(arrays["start_obs"]))
        self.bc_loss = meta["bc_loss"]

    def restore_part(self, what: str, state: dict, meta: dict) -> None:
        """--restore_{bc,policy,value}_variables: that part of another run's checkpoint."""
        if what == "bc":
            self.bc, self.bc_loss = state["bc"], meta["bc_loss"]
        elif what == "policy":
            self.trpo = self.trpo._replace(policy=state["trpo"].policy, stats=state["trpo"].stats)
        else:
            self.trpo = self.trpo._replace(baseline=state["trpo"].baseline)
