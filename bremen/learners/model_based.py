"""The model-based learner: BREMEN and ME-TRPO (ORIGINAL.md §2).

``fit`` runs the phases on the data it is given: fit the dynamics ensemble, fit BC, initialize the TRPO
policy (from BC for BREMEN, fresh for ME-TRPO), then ``outer_iterations`` compiled TRPO chunks on
imaginary rollouts. After each phase and each chunk it calls ``hooks.step(phase, index, info)``, where
the run driver evaluates, logs, exports and checkpoints (bremen.run.driver). It knows nothing of the
command line, of run directories or of the real-env evaluation.

Every random stream derives from the seed and a phase key, so a run resumed from the checkpoint of any
phase boundary continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos import bc as bc_lib
from bremen.algos import trpo as trpo_lib
from bremen.algos.trpo_value import baseline_fit
from bremen.errors import UserError
from bremen.evaluation import start_states
from bremen.io.checkpoint import CHECKPOINT_FILE, arrays_to_pytree, load_checkpoint, pytree_to_arrays
from bremen.io.policy_io import NumpyPolicy
from bremen.learners import ChunkReport, InnerLog
from bremen.models import dynamics as dyn_lib
from bremen.models.model_env import ModelEnv
from bremen.models.normalizer import fit_normalization, mean_std, normalize, running_stats_init
from bremen.models.policy import policy_init
from bremen.models.waiting import wait

# phase keys of the derived RNG streams
K_MODEL, K_BC, K_TRPO, K_POLICY = 1, 2, 3, 4
PHASES = ("model", "bc", "trpo")
# progress.csv's columns for this learner (the run driver fills the evaluation's, the times and best_return,
# and puts a recursive run's deployment columns after Iteration); trpo.csv's, one row per TRPO step
PROGRESS_KEYS = [
    "Iteration", "episode_mean", "episode_min", "episode_max", "episode_std", "episodes", "TotalSamples",
    "advantages_mean", "advantages_max", "advantages_min", "behavior_policy_kl_mean", "behavior_policy_kl_max",
    "behavior_policy_kl_min", "imagined_return", "step_fraction", "kl_after", "best_return",
    "model_val_loss", "bc_loss", "bc_return", "trpo_iterations", "step_wise_mse", "time_trpo", "time_eval",
    "time_total",
]
TRPO_KEYS = ["Iteration", "inner", "advantages_mean", "advantages_max", "advantages_min",
             "behavior_policy_kl_mean", "behavior_policy_kl_max", "behavior_policy_kl_min", "surrogate_before",
             "surrogate_after", "expected_improvement", "kl_after", "step_fraction", "imagined_return",
             "episodes", "valid_steps"]


@dataclass(frozen=True)
class ModelBasedConfig:
    """What the learner needs, resolved from a param file, a preset and flags (bremen.experiment)."""

    algorithm: str
    """bremen or me_trpo (a label for exports and logs; the differences are the fields below)."""
    dynamics: dyn_lib.DynamicsConfig
    bc: bc_lib.BCConfig
    trpo: trpo_lib.TRPOConfig
    policy_shape: tuple
    """Hidden sizes of the TRPO policy (a fresh policy when not initialized from BC)."""
    outer_iterations: int
    """TRPO chunks of trpo.iterations steps each (the original's onpol_iters)."""
    interval: Optional[int] = None
    """Outer iterations per deployment of a recursive run (the original's interval); None: all of them."""
    bc_init: bool = True
    """Start TRPO from the BC policy's weights and statistics (BREMEN); else from a fresh policy."""
    dataset_normalizer: bool = False
    """With a fresh policy: normalize with BC's (the dataset's) statistics instead of mean 0 / std 1."""
    reinitialize_every_outer_iteration: bool = False
    """Offline: reset the policy to BC before every chunk (policy.reinitialize_every_itr)."""
    start_source: str = "reset"
    """Imaginary start states: reset (real-env resets), s_t (every dataset state) or s_0 (episode starts)."""
    start_pool_size: int = 10_000
    member_mode: str = "batch"
    pretrain_value: bool = False
    restore: dict = field(default_factory=dict)
    """Parts to take from another run's checkpoint: {"dynamics"|"bc"|"policy"|"value": path}."""


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


class ModelBasedLearner:
    """BREMEN / ME-TRPO as a learner the run driver drives (see the module docstring)."""

    phases = PHASES
    chunk_phase = "trpo"
    progress_keys = PROGRESS_KEYS
    detail_log, detail_keys = "trpo.csv", TRPO_KEYS
    eval_scalars = ("episode_mean", "episode_min", "episode_max", "best_return", "imagined_return", "kl_after")

    def __init__(self, task, config: ModelBasedConfig, seed: int, say: Callable[[str], None] = lambda m: None):
        self.task, self.config, self.seed, self.say = task, config, seed, say
        self.key = jax.random.PRNGKey(seed)
        self.model_env = ModelEnv.from_task(task, activation=config.dynamics.activation,
                                            member_mode=config.member_mode)
        self.ens = self.norm = self.bc = self.trpo = None
        self.model_val_loss = self.bc_loss = None

    @property
    def chunks(self) -> int:
        """Outer iterations per deployment."""
        return self.config.interval or self.config.outer_iterations

    @property
    def tb_steps_per_chunk(self) -> int:
        return self.config.trpo.iterations

    def sampling_noise(self, policy) -> dict:
        """How the deployed policy samples (a recursive batch's metadata)."""
        return {"gaussian": self.config.trpo.sampling_std, "const_sampling": self.config.trpo.const_sampling}

    def report(self, itr: int, info: dict, transitions=None) -> ChunkReport:
        """An outer iteration's logs: trpo.csv rows and TensorBoard scalars per TRPO step, and progress.csv's
        columns (the last step's advantages and KL to BC, the chunk's mean imagined return, step fraction and
        KL; ``transitions``: the evaluation's, for --eval_model's one-step error)."""
        iters = self.config.trpo.iterations
        details, scalars = [], []
        for i in range(iters):
            row = {k: info[k][i] for k in TRPO_KEYS[2:]}
            details.append({"Iteration": itr, "inner": i, **row})
            scalars += [(f"trpo/{k}", float(v), itr * iters + i) for k, v in row.items()]
        progress = {**{k: float(info[k][-1]) for k in TRPO_KEYS[2:9]},
                    **{k: float(np.mean(info[k])) for k in ("imagined_return", "step_fraction", "kl_after")},
                    "model_val_loss": self.model_val_loss, "bc_loss": self.bc_loss, "trpo_iterations": (itr + 1) * iters}
        if transitions is not None:
            progress["step_wise_mse"] = self.model_error(transitions)
        return ChunkReport(progress, details, scalars)

    def summary(self, chunks: int) -> dict:
        return {"trpo_iterations": chunks * self.config.trpo.iterations}

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

    # ------------------------------------------------------------------ phases
    def _model_data(self, d):
        """``(obs, act, next_obs[, rew])``: the rewards too when the ensemble learns them."""
        cols = (d.observations, d.actions, d.next_observations)
        return cols + (d.rewards,) if self.config.dynamics.learn_reward else cols

    def _key(self, phase: int, deployment: int):
        """The phase's RNG key; deployment 0 (and every offline run) uses the phase key itself."""
        key = jax.random.fold_in(self.key, phase)
        return key if deployment == 0 else jax.random.fold_in(key, deployment)

    def fit_model(self, train, val, callback=None, deployment: int = 0) -> dict:
        """Fit the ensemble on ``train`` (validating on ``val``). From deployment 1 on the ensemble is
        warm-started, weights and Adam moments (§2.2 b), and the normalization is recomputed on all of
        ``train`` (§8.4)."""
        c = self.config.dynamics
        if self.task.termination_fn is None and (np.any(train.terminals) or np.any(val.terminals)):
            self.say(f"{self.task.name}: the dataset has terminal states but the task defines no termination "
                     f"function, so imaginary rollouts run to the horizon H without terminating")
        self.norm = fit_normalization(*self._model_data(train))
        if deployment == 0 or self.ens is None:
            self.ens = dyn_lib.ensemble_init(jax.random.fold_in(self.key, K_MODEL), self.task.obs_dim,
                                             self.task.act_dim, c)
        val_data = self._model_data(val) if len(val) else None
        self.ens, report = dyn_lib.fit(self.ens, self.norm, self._model_data(train), val_data,
                                       self._key(K_MODEL + 100, deployment), c, callback)
        last_val = report.val_checks[-1][1] if report.val_checks else np.full(c.ensemble_size, np.nan)
        self.model_val_loss = float(np.mean(last_val))
        return {"epochs": int(report.epochs.max()), "val_members": np.asarray(last_val)}

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

    def init_policy(self, data, deployment: int = 0) -> None:
        """The TRPO policy for this deployment: BC's weights and statistics (BREMEN, every deployment); a
        fresh policy at deployment 0 without BC init, carried over to later deployments (ME-TRPO)."""
        c = self.config
        if deployment > 0 and not c.bc_init:
            self.trpo = self.trpo._replace(behavior=self.bc.params, behavior_stats=self.bc.stats,
                                           ens_params=self.ens.params, norm=self.norm,
                                           start_obs=jnp.asarray(self.imaginary_starts(data), jnp.float32))
            return
        if c.bc_init:
            policy, stats = self.bc.params, self.bc.stats
        else:  # a fresh policy, normalized with the dataset's statistics (BC's; ME-TRPO) or, as the original's
            # --no_bc_init, with mean 0 / std 1 (quirk 9)
            policy = policy_init(jax.random.fold_in(self.key, K_POLICY), self.task.obs_dim, self.task.act_dim,
                                 tuple(c.policy_shape), c.bc.init_seed)
            stats = self.bc.stats if c.dataset_normalizer else running_stats_init(self.task.obs_dim)
        self.trpo = trpo_lib.trpo_init(policy, stats, self.bc.params, self.bc.stats, self.ens.params, self.norm,
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

    def trpo_chunk(self, itr: int) -> dict:
        """One outer iteration: trpo.iterations TRPO steps on imaginary rollouts (one compiled call)."""
        c = self.config
        if c.reinitialize_every_outer_iteration:
            self.trpo = self.trpo._replace(policy=self.bc.params, stats=self.bc.stats)
        key = jax.random.fold_in(jax.random.fold_in(self.key, K_TRPO), itr)
        self.trpo, info = trpo_lib.trpo_run(self.trpo, key, config=c.trpo, env=self.model_env,
                                            n_iters=c.trpo.iterations)
        return jax.tree.map(np.asarray, wait(info))

    def model_error(self, transitions) -> float:
        """--eval_model: one-step MSE of the ensemble (mean over members and dims) on real transitions."""
        obs, act, nxt = (jnp.asarray(x) for x in transitions)
        return float(_one_step_mse(self.ens.params, self.norm, obs, act, nxt, self.config.dynamics.activation))

    def _model_callback(self, hooks):
        """The ensemble fit's epochs as dynamics.csv rows (each member's train and validation MSE)."""
        c = self.config.dynamics
        members = range(c.ensemble_size)
        log = hooks.callback("model", InnerLog("dynamics.csv", ["epoch"] + [f"train_mse_{i}" for i in members]
                                               + [f"val_mse_{i}" for i in members], c.epochs, "dynamics", "epoch"))
        if log is None:
            return None

        def cb(epoch, train_mse, val_mse):
            row = {"epoch": epoch, **{f"train_mse_{i}": float(v) for i, v in enumerate(train_mse)}}
            postfix = {}
            if val_mse is not None:
                row.update({f"val_mse_{i}": float(v) for i, v in enumerate(val_mse)})
                postfix = {"val": f"{np.mean(val_mse):.4f}"}
            log(epoch + 1, row, postfix)
        return cb

    def _bc_callback(self, hooks):
        """BC's steps as bc.csv rows."""
        log = hooks.callback("bc", InnerLog("bc.csv", ["step", "loss"], self.config.bc.steps, "behavior cloning", "step"))
        return None if log is None else (lambda step, loss, state: log(step, {"step": step, "loss": loss},
                                                                        {"loss": f"{loss:.4f}"}))

    # ------------------------------------------------------------------ fit = the phases in order
    def fit(self, data, train, val, hooks, phase: str = "new", start: int = 0, deployment: int = 0,
            bc_data=None, end: Optional[int] = None) -> None:
        """Train on ``data`` (``train``/``val``: the model's 85/15 split of it; ``bc_data``: what BC clones,
        default ``data``) from the checkpoint position (``phase`` finished, ``start`` the next outer
        iteration) up to outer iteration ``end`` (default: all); ``hooks.step`` after each phase and chunk.
        ``deployment`` > 0: a later batch of a recursive run (warm starts, see the phases)."""
        c = self.config
        bc_data = data if bc_data is None else bc_data
        if phase == "new":
            if "dynamics" in c.restore:
                self.restore_from("dynamics", data)
                hooks.step("model", 0, {"restored": True})
            else:
                info = self.fit_model(train, val, self._model_callback(hooks), deployment)
                hooks.step("model", 0, {"restored": False, **info})
        if phase in ("new", "model"):
            if "bc" in c.restore:
                self.restore_from("bc", data)
            else:
                self.fit_bc(bc_data, self._bc_callback(hooks), deployment)
            self.init_policy(data, deployment)
            for part in ("policy", "value"):
                if part in c.restore:
                    self.restore_from(part, data)
            if c.pretrain_value:
                self.pretrain_value(data)
            hooks.step("bc", 0, {"restored": "bc" in c.restore})
        for itr in range(start, c.outer_iterations if end is None else end):
            if hooks.step("trpo", itr, self.trpo_chunk(itr)) is False:
                return

    # ------------------------------------------------------------------ state for checkpoints
    def state_arrays(self, phase: str) -> dict:
        """The arrays a checkpoint after ``phase`` holds (after the first model fit: the ensemble only)."""
        state = {"ens": self.ens, "norm": self.norm}
        if self.trpo is not None:
            state["bc"] = self.bc
            state["trpo"] = self.trpo._replace(ens_params=None, norm=None, start_obs=None)
        arrays = {}
        for name, tree in state.items():
            arrays.update(pytree_to_arrays(tree, name))
        if self.trpo is not None:
            arrays["start_obs"] = np.asarray(self.trpo.start_obs)
        return arrays

    def state_meta(self) -> dict:
        return {"bc_loss": self.bc_loss, "model_val_loss": self.model_val_loss}

    def _templates(self, data) -> dict:
        """Freshly initialized pytrees of the right shapes, to restore a checkpoint into."""
        c, t, d = self.config, self.task, data
        norm = fit_normalization(d.observations[:2], d.actions[:2], d.next_observations[:2])
        ens = dyn_lib.ensemble_init(jax.random.PRNGKey(0), t.obs_dim, t.act_dim, c.dynamics)
        bc = bc_lib.bc_init(jax.random.PRNGKey(0), d.observations[:2], t.act_dim, c.bc)
        trpo = trpo_lib.trpo_init(bc.params, bc.stats, bc.params, bc.stats, ens.params, norm,
                                  np.zeros((1, t.obs_dim), np.float32), jax.random.PRNGKey(0), c.trpo)
        return {"ens": ens, "norm": norm, "bc": bc, "trpo": trpo._replace(ens_params=None, norm=None, start_obs=None)}

    def read(self, path: Path, names, data) -> tuple[dict, dict, dict]:
        """(pytrees ``names``, raw arrays, meta) of a checkpoint, checked against this learner's sizes.
        ``names`` may be a function of the checkpoint's arrays."""
        path = Path(path)
        if path.is_dir():
            path = path / CHECKPOINT_FILE
        if not path.is_file():
            raise UserError(f"{path}: no checkpoint there; --restore_path takes a bremen run directory")
        arrays, meta = load_checkpoint(path)
        names = names(arrays) if callable(names) else names
        tmpl = self._templates(data)
        try:
            return {n: arrays_to_pytree(tmpl[n], arrays, n) for n in names}, arrays, meta
        except (KeyError, ValueError) as e:
            raise UserError(f"{path}: cannot restore {', '.join(names)} ({e}); it comes from a run with other "
                            f"network sizes or an earlier phase") from None

    def restore(self, path: Path, data) -> dict:
        """Take the whole state of this run's own checkpoint; returns its meta. A checkpoint written before
        the first policy existed (after the first model fit) holds the ensemble only."""
        state, arrays, meta = self.read(
            path, lambda a: ("ens", "norm", "bc", "trpo") if "start_obs" in a else ("ens", "norm"), data)
        self.ens, self.norm = state["ens"], state["norm"]
        if "trpo" in state:
            self.bc = state["bc"]
            self.trpo = state["trpo"]._replace(ens_params=self.ens.params, norm=self.norm,
                                               start_obs=jnp.asarray(arrays["start_obs"]))
        self.bc_loss, self.model_val_loss = meta["bc_loss"], meta["model_val_loss"]
        return meta

    def restore_from(self, what: str, data) -> None:
        """--restore_{dynamics,bc,policy,value}_variables: take that part from another run's checkpoint."""
        path = Path(self.config.restore[what])
        names = {"dynamics": ("ens", "norm"), "bc": ("bc",), "policy": ("trpo",), "value": ("trpo",)}[what]
        state, _, meta = self.read(path, names, data)
        if what == "dynamics":
            self.ens, self.norm, self.model_val_loss = state["ens"], state["norm"], meta["model_val_loss"]
        elif what == "bc":
            self.bc, self.bc_loss = state["bc"], meta["bc_loss"]
        elif what == "policy":
            self.trpo = self.trpo._replace(policy=state["trpo"].policy, stats=state["trpo"].stats)
        else:
            self.trpo = self.trpo._replace(baseline=state["trpo"].baseline)
        self.say(f"{what} restored from {path}")


@partial(jax.jit, static_argnames=("activation",))
def _one_step_mse(params, norm, obs, act, nxt, activation: str):
    n_members = jax.tree.leaves(params)[0].shape[0]
    pred = jax.vmap(lambda k: dyn_lib.predict(params, norm, obs, act, k, activation))(jnp.arange(n_members))
    return jnp.mean((pred - nxt[None]) ** 2)
