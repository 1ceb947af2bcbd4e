"""The model-based learner: a dynamics ensemble and a policy optimizer on its rollouts (ORIGINAL.md §2).

``fit`` runs the phases on the data it is given: fit the dynamics ensemble, then the policy optimizer's phases
(bremen.learners.trpo_optimizer for BREMEN and ME-TRPO: fit BC, initialize the TRPO policy from BC or fresh,
then ``outer_iterations`` compiled TRPO chunks on imaginary rollouts). After each phase and each chunk it
calls ``hooks.step(phase, index, info)``, where the run driver evaluates, logs, exports and checkpoints
(bremen.run.driver). It knows nothing of the command line, of run directories or of the real-env evaluation.

Every random stream derives from the seed and a phase key, so a run resumed from the checkpoint of any
phase boundary continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos import bc as bc_lib
from bremen.algos import trpo as trpo_lib
from bremen.errors import UserError
from bremen.io.checkpoint import CHECKPOINT_FILE, arrays_to_pytree, load_checkpoint, pytree_to_arrays
from bremen.io.policy_io import NumpyPolicy
from bremen.learners import ChunkReport, InnerLog
from bremen.learners.trpo_optimizer import Model, TRPOOptimizer
from bremen.models import dynamics as dyn_lib
from bremen.models.model_env import ModelEnv, disagreement_on
from bremen.models.normalizer import fit_normalization

# phase key of the model's RNG stream (the optimizer's: bremen.learners.trpo_optimizer)
K_MODEL = 1


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
    pessimism: Optional[float] = None
    """MOReL: halt imaginary episodes where the members disagree by more than the data's largest disagreement
    divided by this (bremen.models.model_env); None: BREMEN's model env."""
    halt_penalty: float = 0.0
    """MOReL's κ, subtracted from a halting step's reward."""
    disagreement_penalty: float = 0.0
    """--disagreement_penalty λ: imaginary rewards lose λ times the members' largest disagreement
    (bremen.models.model_env); 0: off."""
    validation_ratio: float = 0.0
    """--policy_validation: stop a deployment's TRPO when fewer than this share of the members see the policy
    improve, ``validation_patience`` outer iterations in a row (bremen.algos.policy_validation); 0: off."""
    validation_patience: int = 3


class ModelBasedLearner:
    """A dynamics ensemble and a policy optimizer the run driver drives (see the module docstring); the
    optimizer is TRPO (BREMEN, ME-TRPO) unless one is given."""

    def __init__(self, task, config: ModelBasedConfig, seed: int, say: Callable[[str], None] = lambda m: None,
                 optimizer=None):
        self.task, self.config, self.seed, self.say = task, config, seed, say
        self.key = jax.random.PRNGKey(seed)
        self.model_env = ModelEnv.from_task(task, activation=config.dynamics.activation,
                                            member_mode=config.member_mode,
                                            disagreement_penalty=config.disagreement_penalty)
        self.optimizer = optimizer if optimizer is not None else TRPOOptimizer(task, config, seed, self.key)
        o = self.optimizer
        self.phases = ("model",) + tuple(o.phases)
        self.chunk_phase, self.progress_keys, self.eval_scalars = o.chunk_phase, o.progress_keys, o.eval_scalars
        self.detail_log, self.detail_keys = o.detail_log, o.detail_keys
        self.ens = self.norm = self.data = None
        self.model_val_loss = None
        self.elites = None

    @property
    def chunks(self) -> int:
        """Outer iterations per deployment."""
        return self.config.interval or self.config.outer_iterations

    @property
    def tb_steps_per_chunk(self) -> int:
        return self.optimizer.tb_steps_per_chunk

    @property
    def bc_loss(self):
        return getattr(self.optimizer, "bc_loss", None)

    def model(self) -> Model:
        return Model(self.ens, self.norm, self.model_env, self.elites, self.data)

    def sampling_noise(self, policy):
        """How the deployed policy samples (a recursive batch's metadata)."""
        return self.optimizer.sampling_noise(policy)

    def report(self, itr: int, info: dict, transitions=None) -> ChunkReport:
        """An outer iteration's logs: the optimizer's, with the model's columns of progress.csv
        (``transitions``: the evaluation's, for --eval_model's one-step error)."""
        report = self.optimizer.report(itr, info)
        report.progress["model_val_loss"] = self.model_val_loss
        if transitions is not None:
            report.progress["step_wise_mse"] = self.model_error(transitions)
        return report

    def export_meta(self) -> dict:
        """What an exported policy's metadata adds about the learner (nothing beyond the driver's)."""
        return {}

    def summary(self, chunks: int) -> dict:
        return self.optimizer.summary(chunks)

    def policy(self) -> NumpyPolicy:
        return self.optimizer.policy()

    def bc_policy(self) -> NumpyPolicy:
        return self.optimizer.bc_policy()

    # ------------------------------------------------------------------ the model
    def _model_data(self, d):
        """``(obs, act, next_obs[, rew])``: the rewards too when the ensemble learns them."""
        cols = (d.observations, d.actions, d.next_observations)
        return cols + (d.rewards,) if self.config.dynamics.learn_reward else cols

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
        key = jax.random.fold_in(self.key, K_MODEL + 100)
        self.ens, report = dyn_lib.fit(self.ens, self.norm, self._model_data(train), val_data,
                                       key if deployment == 0 else jax.random.fold_in(key, deployment), c, callback)
        last_val = report.val_checks[-1][1] if report.val_checks else np.full(c.ensemble_size, np.nan)
        self.model_val_loss = float(np.mean(last_val))
        if c.elites and val_data is not None:  # ranked on the parameters the rollouts will use
            last_val = dyn_lib.members_mse(self.ens.params, self.norm, val_data, c)
        self.elites = dyn_lib.elites_of(np.nan_to_num(last_val, nan=np.inf), c.elites)
        return {"epochs": int(report.epochs.max()), "val_members": np.asarray(last_val)}

    def _pessimistic_env(self, data, threshold: Optional[float] = None) -> None:
        """MOReL: the model env halting at ``threshold`` (default: the data's largest member disagreement
        divided by ``pessimism``). --disagreement_penalty: what the penalty costs on the data, said."""
        c = self.config
        if threshold is None and (c.pessimism is not None or c.disagreement_penalty):
            mean, top = (float(v) for v in disagreement_on(
                self.ens.params, self.norm, jnp.asarray(data.observations, jnp.float32),
                jnp.asarray(data.actions, jnp.float32), c.dynamics.activation))
            if c.disagreement_penalty:
                self.say(f"members' disagreement on the data: mean {mean:.3f}, max {top:.3f}; --disagreement_penalty "
                         f"{c.disagreement_penalty:g} costs {c.disagreement_penalty * mean:.3f} a step there on average")
            if c.pessimism is not None:
                threshold = top / c.pessimism
        if c.pessimism is not None:
            self.model_env = dataclasses.replace(self.model_env, halt_threshold=float(threshold),
                                                 halt_penalty=c.halt_penalty)

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

    # ------------------------------------------------------------------ fit = the phases in order
    def fit(self, data, train, val, hooks, phase: str = "new", start: int = 0, deployment: int = 0,
            bc_data=None, end: Optional[int] = None) -> None:
        """Train on ``data`` (``train``/``val``: the model's 85/15 split of it; ``bc_data``: what BC clones,
        default ``data``) from the checkpoint position (``phase`` finished, ``start`` the next outer
        iteration) up to outer iteration ``end`` (default: all); ``hooks.step`` after each phase and chunk.
        ``deployment`` > 0: a later batch of a recursive run (warm starts, see the phases)."""
        c, o = self.config, self.optimizer
        bc_data = data if bc_data is None else bc_data
        self.data = data
        if phase == "new":
            if "dynamics" in c.restore:
                self.restore_from("dynamics", data)
                hooks.step("model", 0, {"restored": True})
            else:
                info = self.fit_model(train, val, self._model_callback(hooks), deployment)
                self._pessimistic_env(data)
                hooks.step("model", 0, {"restored": False, **info})
        if phase in ("new", "model"):
            info = o.prepare(self.model(), data, bc_data, hooks, deployment, lambda part: self.restore_from(part, data))
            if len(self.phases) > 2:  # the optimizer's phase before its chunks (BC)
                hooks.step(self.phases[1], 0, info)
        for itr in range(start, c.outer_iterations if end is None else end):
            if hooks.step(o.chunk_phase, itr, o.chunk(itr, self.model())) is False:
                return

    # ------------------------------------------------------------------ state for checkpoints
    def state_arrays(self, phase: str) -> dict:
        """The arrays a checkpoint after ``phase`` holds (after the first model fit: the ensemble only)."""
        arrays = {}
        for name, tree in {"ens": self.ens, "norm": self.norm, **self.optimizer.state_arrays()}.items():
            arrays.update(pytree_to_arrays(tree, name) if not isinstance(tree, np.ndarray) else {name: tree})
        return arrays

    def state_meta(self) -> dict:
        return {"bc_loss": self.bc_loss, "model_val_loss": self.model_val_loss,
                "elites": None if self.elites is None else [int(i) for i in self.elites],
                "halt_threshold": self.model_env.halt_threshold}

    def _templates(self, data) -> dict:
        """Freshly initialized pytrees of the right shapes, to restore a checkpoint into."""
        c, t, d = self.config, self.task, data
        norm = fit_normalization(d.observations[:2], d.actions[:2], d.next_observations[:2])
        ens = dyn_lib.ensemble_init(jax.random.PRNGKey(0), t.obs_dim, t.act_dim, c.dynamics)
        return {"ens": ens, "norm": norm, **self.optimizer.templates(d, Model(ens, norm, self.model_env))}

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
        o = self.optimizer
        has_policy = lambda a: any(k.startswith(f"{o.state_names[-1]}/") for k in a)  # noqa: E731
        state, arrays, meta = self.read(
            path, lambda a: ("ens", "norm") + (tuple(o.state_names) if has_policy(a) else ()), data)
        self.ens, self.norm, self.data = state["ens"], state["norm"], data
        self._restore_model_meta(meta, data)
        if has_policy(arrays):
            o.restore(state, arrays, meta, self.model())
        self.model_val_loss = meta["model_val_loss"]
        return meta

    def _restore_model_meta(self, meta: dict, data, own: bool = True) -> None:
        """The elites and MOReL's threshold of a restored ensemble (checkpoints from before they were kept: all
        members, and the threshold measured again)."""
        n = self.config.dynamics.ensemble_size
        self.elites = np.asarray(meta["elites"]) if meta.get("elites") is not None else dyn_lib.elites_of(np.zeros(n), 0)
        self._pessimistic_env(data, meta.get("halt_threshold") if own else None)

    def restore_from(self, what: str, data) -> None:
        """--restore_{dynamics,bc,policy,value}_variables: take that part from another run's checkpoint."""
        path = Path(self.config.restore[what])
        names = {"dynamics": ("ens", "norm"), "bc": ("bc",), "policy": ("trpo",), "value": ("trpo",)}[what]
        state, _, meta = self.read(path, names, data)
        if what == "dynamics":
            self.ens, self.norm, self.model_val_loss = state["ens"], state["norm"], meta["model_val_loss"]
            self._restore_model_meta(meta, data, own=False)
        else:
            self.optimizer.restore_part(what, state, meta)
        self.say(f"{what} restored from {path}")


@partial(jax.jit, static_argnames=("activation",))
def _one_step_mse(params, norm, obs, act, nxt, activation: str):
    n_members = jax.tree.leaves(params)[0].shape[0]
    pred = jax.vmap(lambda k: dyn_lib.predict(params, norm, obs, act, k, activation))(jnp.arange(n_members))
    return jnp.mean((pred - nxt[None]) ** 2)
