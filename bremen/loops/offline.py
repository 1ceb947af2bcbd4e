"""BREMEN offline (``offline.py`` / ``bremen offline``).

1. Load the dataset (first ``n_train`` transitions), split it 85/15 in order for the dynamics model.
2. Fit the dynamics ensemble.
3. Fit BC on all transitions; evaluate it on the real env.
4. Initialize the TRPO policy from BC (weights *and* observation statistics, ``--bc_init``).
5. ``onpol_iters`` outer iterations, each ``trpo.iterations`` TRPO iterations on imaginary rollouts (one
   compiled call) followed by a deterministic real-env evaluation; log, checkpoint.
6. Export the final and the best policy in the ``weights/`` format; print behavior data vs BC vs BREMEN.

Every random stream derives from the seed and the phase or iteration index, and the checkpoint written
after each phase and each outer iteration holds the whole state, so ``--resume`` after a kill ends with the
same parameters and progress.csv (timing columns aside) as an uninterrupted run.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
import sys
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from bremen import __version__
from bremen.algos import bc as bc_lib
from bremen.algos import trpo as trpo_lib
from bremen.algos.trpo_value import baseline_fit
from bremen.data import load_dataset
from bremen.errors import UserError
from bremen.experiment import ALGORITHM_LABELS, Experiment
from bremen.io.checkpoint import arrays_to_pytree, load_checkpoint, pytree_to_arrays, save_checkpoint
from bremen.io.csvlog import CSVLog
from bremen.io.paths import writable_dir
from bremen.io.policy_io import NumpyPolicy, save_policy
from bremen.loops.evaluation import dataset_return, evaluate_steps, start_states
from bremen.models import dynamics as dyn_lib
from bremen.models.model_env import ModelEnv
from bremen.models.normalizer import fit_normalization, mean_std, normalize, running_stats_init
from bremen.models.policy import policy_init
from bremen.models.waiting import wait
from bremen.tasks import make as make_task

CHECKPOINT = "checkpoint.npz"
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
TIMING_KEYS = ("time_trpo", "time_eval", "time_total")
# phase keys for the derived RNG streams
K_MODEL, K_BC, K_TRPO, K_POLICY = 1, 2, 3, 4


def missing_data_message(exp: Experiment) -> str:
    return (f"dataset {exp.data_path} not found; make it with: bremen collect --task {exp.task} "
            f"--noise {exp.flags['noise']} --n {exp.flags['n_train']} --out {exp.data_path}")


def gaussian_policy(params, stats, exp: Experiment, metadata: Optional[dict] = None) -> NumpyPolicy:
    """The TRPO/BC policy as a NumPy ``gaussian`` policy (weights + running-stats normalizer)."""
    mean, std = mean_std(stats)
    layers = [{"w": np.asarray(l["w"]), "b": np.asarray(l["b"])} for l in params]
    return NumpyPolicy("gaussian", layers, exp.bc.act_low, exp.bc.act_high, exp.trpo.policy_activation,
                       obs_mean=np.asarray(mean), obs_std=np.asarray(std), sampling_std=exp.trpo.sampling_std,
                       const_sampling=exp.trpo.const_sampling, metadata=metadata)


def imaginary_starts(flags: dict, data, task, pool_size: int, seed: int) -> np.ndarray:
    """Start states of the imaginary rollouts (ORIGINAL.md §3.3).

    ``--use_s_t``: every dataset observation (a rollout starts anywhere the behavior policy went, so later
    parts of long episodes are trained on even with H < episode length); ``--use_s_0``: the first observation
    of each dataset episode; default (the original): ``pool_size`` draws from the real env's reset distribution.
    """
    if flags["use_s_t"]:
        return data.observations
    if flags["use_s_0"]:
        return data.observations[[ep.start for ep in data.episodes()]]
    return start_states(task, pool_size, seed)


class OfflineRun:
    """One seed of BREMEN offline. ``run()`` returns the summary dict (also written to summary.json)."""

    def __init__(self, exp: Experiment, resume: bool = False, force: bool = False, progress: bool = True,
                 stop_after: Optional[int] = None):
        self.exp, self.progress, self.stop_after = exp, progress, stop_after
        self.task = make_task(exp.task)
        self.dir = exp.run_dir
        ckpt = self.dir / CHECKPOINT
        if resume and not ckpt.exists():
            if self.dir.exists() and any(self.dir.iterdir()):
                if not (self.dir / "params.json").is_file():
                    raise UserError(f"--resume: {self.dir} has no {CHECKPOINT} and is not a bremen run directory; "
                                    f"nothing to resume (start without --resume)")
                # a run stopped before its first checkpoint (the model fit): its partial logs are redone
                shutil.rmtree(self.dir)
            resume = False
        if not resume and self.dir.exists() and any(self.dir.iterdir()):
            if not force:
                raise UserError(f"run directory {self.dir} already exists; pass --resume to continue it, "
                                f"--force to start over, or choose another --exp_name/--log_dir")
            shutil.rmtree(self.dir)
        self.resume = resume
        if not exp.data_path.is_file():
            raise UserError(missing_data_message(exp))
        writable_dir(self.dir, "run directory (--log_dir)")
        self.key = jax.random.PRNGKey(exp.seed)
        self.model_env = ModelEnv.from_task(self.task, activation=exp.dynamics.activation,
                                            member_mode=exp.flags["member_mode"])
        self.eval_env = self.task.make_env()

    # ------------------------------------------------------------------ data
    def load_data(self):
        exp = self.exp
        ds = load_dataset(str(exp.data_path), task=self.task)
        n = min(exp.flags["n_train"], len(ds))
        self.data = ds.subsample(n, mode=exp.flags["subsample"], seed=exp.seed)
        self.train, self.val = self.data.split(0.15, by="order")
        self.behavior = dataset_return(self.data, self.task.horizon)

    def _say(self, msg: str) -> None:
        if self.progress:
            tqdm.write(msg, file=sys.stderr)

    # ------------------------------------------------------------------ phases
    def _model_data(self, d):
        """``(obs, act, next_obs[, rew])``: the rewards too when the ensemble learns them."""
        cols = (d.observations, d.actions, d.next_observations)
        return cols + (d.rewards,) if self.exp.dynamics.learn_reward else cols

    def fit_model(self):
        exp, tr, va = self.exp, self.train, self.val
        self.norm = fit_normalization(*self._model_data(tr))
        if self.task.termination_fn is None and np.any(self.data.terminals):
            self._say(f"{exp.task}: the dataset has terminal states but the task defines no termination "
                      f"function, so imaginary rollouts run to the horizon H without terminating")
        self.ens = dyn_lib.ensemble_init(jax.random.fold_in(self.key, K_MODEL), self.task.obs_dim,
                                         self.task.act_dim, exp.dynamics)
        log = CSVLog(self.dir / "dynamics.csv", ["epoch"] + [f"train_mse_{k}" for k in range(exp.dynamics.ensemble_size)]
                     + [f"val_mse_{k}" for k in range(exp.dynamics.ensemble_size)])
        bar = tqdm(total=exp.dynamics.epochs, desc="dynamics", unit="epoch", disable=not self.progress, leave=False)

        def cb(epoch, train_mse, val_mse):
            row = {"epoch": epoch, **{f"train_mse_{k}": float(v) for k, v in enumerate(train_mse)}}
            if val_mse is not None:
                row.update({f"val_mse_{k}": float(v) for k, v in enumerate(val_mse)})
                bar.set_postfix(val=f"{np.mean(val_mse):.4f}")
            log.write(row)
            bar.update(epoch + 1 - bar.n)

        t0 = time.time()
        val = self._model_data(va) if len(va) else None
        self.ens, report = dyn_lib.fit(self.ens, self.norm, self._model_data(tr), val,
                                       jax.random.fold_in(self.key, K_MODEL + 100), exp.dynamics, cb)
        bar.close()
        last_val = report.val_checks[-1][1] if report.val_checks else np.full(exp.dynamics.ensemble_size, np.nan)
        self.model_val_loss = float(np.mean(last_val))
        self._say(f"dynamics: {int(report.epochs.max())} epochs, validation MSE {self.model_val_loss:.4f} "
                  f"(members {np.array2string(np.asarray(last_val), precision=4)}), {time.time() - t0:.0f}s")

    def fit_bc(self):
        exp, d = self.exp, self.data
        bar = tqdm(total=exp.bc.steps, desc="behavior cloning", unit="step", disable=not self.progress, leave=False)
        log = CSVLog(self.dir / "bc.csv", ["step", "loss"])

        def cb(step, loss, state):
            log.write({"step": step, "loss": loss})
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(step - bar.n)

        t0 = time.time()
        self.bc, losses = bc_lib.fit_bc(jax.random.fold_in(self.key, K_BC), d.observations, d.actions, exp.bc,
                                        callback=cb)
        bar.close()
        self.bc_loss = losses[-1]
        ev = self.bc_eval = self.evaluate_policy(self.bc.params, self.bc.stats, -1)
        self.bc_return = ev["episode_mean"]
        self._say(f"behavior cloning: loss {self.bc_loss:.4f}, real return {self.bc_return:.1f} "
                  f"({ev['episodes']} episodes), {time.time() - t0:.0f}s")

    def evaluate_policy(self, params, stats, index: int, record: bool = False) -> dict:
        """The deterministic policy on the real env for >= num_path_onpol x env_horizon steps."""
        return evaluate_steps(gaussian_policy(params, stats, self.exp), self.eval_env, self.exp.eval_steps,
                              self.exp.seed, index, record=record)

    def init_policy(self):
        exp = self.exp
        if exp.flags["bc_init"]:
            policy, stats = self.bc.params, self.bc.stats
        else:  # a fresh policy, normalized with the dataset's statistics (BC's; ME-TRPO) or, as the original's
            # --no_bc_init, with mean 0 / std 1 (quirk 9)
            policy = policy_init(jax.random.fold_in(self.key, K_POLICY), self.task.obs_dim, self.task.act_dim,
                                 tuple(exp.params.policy.network_shape), exp.bc.init_seed)
            stats = self.bc.stats if exp.flags["dataset_normalizer"] else running_stats_init(self.task.obs_dim)
        starts = imaginary_starts(exp.flags, self.data, self.task, exp.start_pool_size, exp.seed)
        self.trpo = trpo_lib.trpo_init(policy, stats, self.bc.params, self.bc.stats, self.ens.params, self.norm,
                                       starts, jax.random.fold_in(self.key, K_POLICY + 100), exp.trpo)

    # ------------------------------------------------------------------ checkpoint
    def _state(self, phase: str):
        """The pytrees a checkpoint of ``phase`` holds ("model": the fitted ensemble only)."""
        state = {"ens": self.ens, "norm": self.norm}
        if phase != "model":
            state["bc"] = self.bc
            state["trpo"] = self.trpo._replace(ens_params=None, norm=None, start_obs=None)
        return state

    def save(self, phase: str, itr: int):
        arrays = {}
        for name, tree in self._state(phase).items():
            arrays.update(pytree_to_arrays(tree, name))
        if phase != "model":
            arrays["start_obs"] = np.asarray(self.trpo.start_obs)
        meta = {"phase": phase, "next_iteration": itr, "best_return": self.best_return, "best_iteration": self.best_itr,
                "bc_return": self.bc_return, "bc_loss": self.bc_loss, "model_val_loss": self.model_val_loss,
                "behavior": self.behavior, "bremen_version": __version__, "config": self.exp.to_dict()}
        save_checkpoint(self.dir / CHECKPOINT, arrays, meta)

    def _templates(self) -> dict:
        """Freshly initialized pytrees of the right shapes, to restore a checkpoint into."""
        exp, t, d = self.exp, self.task, self.data
        norm = fit_normalization(d.observations[:2], d.actions[:2], d.next_observations[:2])
        ens = dyn_lib.ensemble_init(jax.random.PRNGKey(0), t.obs_dim, t.act_dim, exp.dynamics)
        bc = bc_lib.bc_init(jax.random.PRNGKey(0), d.observations[:2], t.act_dim, exp.bc)
        trpo = trpo_lib.trpo_init(bc.params, bc.stats, bc.params, bc.stats, ens.params, norm,
                                  np.zeros((1, t.obs_dim), np.float32), jax.random.PRNGKey(0), exp.trpo)
        return {"ens": ens, "norm": norm, "bc": bc, "trpo": trpo._replace(ens_params=None, norm=None, start_obs=None)}

    def _read(self, path: Path, names) -> tuple[dict, dict, dict]:
        """(pytrees ``names``, raw arrays, meta) of a checkpoint, checked against this run's sizes."""
        if path.is_dir():
            path = path / CHECKPOINT
        if not path.is_file():
            raise UserError(f"{path}: no checkpoint there; --restore_path takes a bremen run directory")
        arrays, meta = load_checkpoint(path)
        tmpl = self._templates()
        try:
            return {n: arrays_to_pytree(tmpl[n], arrays, n) for n in names}, arrays, meta
        except (KeyError, ValueError) as e:
            raise UserError(f"{path}: cannot restore {', '.join(names)} ({e}); it comes from a run with other "
                            f"network sizes or an earlier phase") from None

    def restore(self) -> tuple[str, int]:
        phase = load_checkpoint(self.dir / CHECKPOINT)[1]["phase"]
        names = ("ens", "norm") if phase == "model" else ("ens", "norm", "bc", "trpo")
        state, arrays, meta = self._read(self.dir / CHECKPOINT, names)
        self.ens, self.norm = state["ens"], state["norm"]
        if phase != "model":
            self.bc = state["bc"]
            self.trpo = state["trpo"]._replace(ens_params=self.ens.params, norm=self.norm,
                                               start_obs=jnp.asarray(arrays["start_obs"]))
        for k in ("best_return", "bc_return", "bc_loss", "model_val_loss", "behavior"):
            setattr(self, k, meta[k])
        self.best_itr = meta["best_iteration"]
        return phase, meta["next_iteration"]

    def restore_from(self, what: str):
        """--restore_{dynamics,bc,policy,value}_variables: take that part from --restore_path's checkpoint."""
        path = Path(self.exp.flags["restore_path"] or "")
        if not self.exp.flags["restore_path"]:
            flag = "--restore_value" if what == "value" else f"--restore_{what}_variables"
            raise UserError(f"{flag} needs --restore_path (a bremen run directory)")
        names = {"dynamics": ("ens", "norm"), "bc": ("bc",), "policy": ("trpo",), "value": ("trpo",)}[what]
        state, _, meta = self._read(path, names)
        if what == "dynamics":
            self.ens, self.norm, self.model_val_loss = state["ens"], state["norm"], meta["model_val_loss"]
        elif what == "bc":
            self.bc, self.bc_loss = state["bc"], meta["bc_loss"]
        elif what == "policy":
            self.trpo = self.trpo._replace(policy=state["trpo"].policy, stats=state["trpo"].stats)
        else:
            self.trpo = self.trpo._replace(baseline=state["trpo"].baseline)
        self._say(f"{what} restored from {path}")

    def pretrain_value(self):
        """--pretrain_value: fit the baseline to the dataset's λ-discounted rewards-to-go, per real episode.

        The original's targets (GAE with V = 0, i.e. Σ_k (γλ)^k r_{t+k}) on consecutive minibatches of a
        shuffled collection (quirk 25); here on the dataset's actual episodes, with t the step in the episode.
        """
        c, d = self.exp.trpo, self.data
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

    def model_error(self, transitions) -> float:
        """--eval_model: one-step MSE of the ensemble (mean over members and dims) on real evaluation steps."""
        obs, act, nxt = (jnp.asarray(x) for x in transitions)
        return float(_one_step_mse(self.ens.params, self.norm, obs, act, nxt, self.exp.dynamics.activation))

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict:
        exp = self.exp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.load_data()
        self.best_return, self.best_itr = -np.inf, -1
        self.bc_return = self.bc_loss = self.model_val_loss = None
        phase, start = "new", 0
        if self.resume:
            phase, start = self.restore()
            self._say(f"resuming {self.dir} after phase {phase!r} at iteration {start}")
        (self.dir / "params.json").write_text(json.dumps(exp.to_dict(), indent=2) + "\n")
        progress = CSVLog(self.dir / "progress.csv", PROGRESS_KEYS)
        inner_log = CSVLog(self.dir / "trpo.csv", TRPO_KEYS)
        if phase == "trpo":
            progress.truncate("Iteration", start - 1)
            inner_log.truncate("Iteration", start - 1)
        tb = _tensorboard(self.dir / "tb", purge_step=start * exp.trpo.iterations if self.resume else None)

        flags = exp.flags
        if phase == "new":
            self.restore_from("dynamics") if flags["restore_dynamics_variables"] else self.fit_model()
            self.save("model", 0)
        if phase in ("new", "model"):
            if flags["restore_bc_variables"]:
                self.restore_from("bc")
                self.bc_eval = self.evaluate_policy(self.bc.params, self.bc.stats, -1)
                self.bc_return = self.bc_eval["episode_mean"]
            else:
                self.fit_bc()
            self._export("policy_bc", self.bc_eval, -1, self.bc.params, self.bc.stats, algorithm="bc")
            self.init_policy()
            if flags["restore_policy_variables"]:
                self.restore_from("policy")
            if flags["restore_value"]:
                self.restore_from("value")
            if flags["pretrain_value"]:
                self.pretrain_value()
            self.save("bc", 0)
            phase = "bc"

        self._say(f"behavior data return {self.behavior['mean']:.1f} ({self.behavior['episodes']} episodes), "
                  f"BC return {self.bc_return:.1f}")
        it_cfg = exp.trpo
        n_iters = exp.flags["onpol_iters"]
        bar = tqdm(range(start, n_iters), desc=ALGORITHM_LABELS[flags["algorithm"]], unit="itr",
                   disable=not self.progress, initial=start, total=n_iters)
        t_run = time.time()
        for itr in bar:
            t0 = time.time()
            if exp.params.policy.reinitialize_every_itr:
                self.trpo = self.trpo._replace(policy=self.bc.params, stats=self.bc.stats)
            key = jax.random.fold_in(jax.random.fold_in(self.key, K_TRPO), itr)
            self.trpo, info = trpo_lib.trpo_run(self.trpo, key, config=it_cfg, env=self.model_env,
                                                n_iters=it_cfg.iterations)
            info = jax.tree.map(np.asarray, wait(info))
            t_trpo = time.time() - t0
            t0 = time.time()
            ev = self.evaluate_policy(self.trpo.policy, self.trpo.stats, itr, record=flags["eval_model"])
            t_eval = time.time() - t0
            if ev["episode_mean"] > self.best_return:
                self.best_return, self.best_itr = ev["episode_mean"], itr
                self._export("policy_best", ev, itr)
            for i in range(it_cfg.iterations):
                row = {k: info[k][i] for k in TRPO_KEYS[2:]}
                inner_log.write({"Iteration": itr, "inner": i, **row})
                for k, v in row.items():
                    tb.add_scalar(f"trpo/{k}", float(v), itr * it_cfg.iterations + i)
            last = {k: float(info[k][-1]) for k in TRPO_KEYS[2:9]}
            row = {"Iteration": itr, **{k: ev[k] for k in ("episode_mean", "episode_min", "episode_max", "episode_std", "episodes")},
                   "TotalSamples": len(self.data), **last,
                   "imagined_return": float(np.mean(info["imagined_return"])),
                   "step_fraction": float(np.mean(info["step_fraction"])), "kl_after": float(np.mean(info["kl_after"])),
                   "best_return": self.best_return, "model_val_loss": self.model_val_loss, "bc_loss": self.bc_loss,
                   "bc_return": self.bc_return, "trpo_iterations": (itr + 1) * it_cfg.iterations,
                   "time_trpo": t_trpo, "time_eval": t_eval, "time_total": time.time() - t_run}
            if flags["eval_model"]:
                row["step_wise_mse"] = self.model_error(ev["transitions"])
            progress.write(row)
            for k in ("episode_mean", "episode_min", "episode_max", "best_return", "imagined_return", "kl_after"):
                tb.add_scalar(f"eval/{k}", float(row[k]), itr)
            tb.flush()
            bar.set_postfix(ret=f"{ev['episode_mean']:.1f}", best=f"{self.best_return:.1f}")
            self.save("trpo", itr + 1)
            if exp.flags["save_variables"] and (itr % 100 == 0 or itr == n_iters - 1):
                self._export(f"policy_iter{itr}", ev, itr)
            if self.stop_after is not None and itr + 1 >= self.stop_after:
                tb.close()
                return {}
        bar.close()
        tb.close()
        last_row = progress.rows()[-1] if n_iters else {}
        final_ev = {k: float(last_row[k]) for k in ("episode_mean", "episode_min", "episode_max")} if last_row else {}
        self._export("policy_final", final_ev, n_iters - 1)
        if flags["video_dir"]:
            from bremen.io.video import VideoSettings, record_videos

            policy = gaussian_policy(self.trpo.policy, self.trpo.stats, exp)
            record_videos(self.task, policy, Path(flags["video_dir"]), VideoSettings(episodes=1), exp.seed,
                          prefix=f"_seed{exp.seed}", progress=self.progress, on_written=self._say)
        summary = {
            "task": exp.task, "algorithm": exp.flags["algorithm"], "seed": exp.seed, "preset": exp.preset,
            "run_dir": str(self.dir),
            "dataset": str(exp.data_path), "n_train": len(self.data),
            "behavior_return": self.behavior["mean"], "bc_return": self.bc_return,
            "final_return": final_ev.get("episode_mean"), "best_return": self.best_return,
            "best_iteration": self.best_itr, "outer_iterations": n_iters,
            "trpo_iterations": n_iters * it_cfg.iterations,
        }
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def _export(self, name: str, ev: dict, itr: int, params=None, stats=None, algorithm: Optional[str] = None):
        """``name/`` in the weights/ format: the TRPO policy, or ``params``/``stats`` (the BC policy)."""
        algorithm = algorithm or self.exp.flags["algorithm"]
        params = self.trpo.policy if params is None else params
        stats = self.trpo.stats if stats is None else stats
        meta = {"task": self.exp.task, "algorithm": algorithm, "seed": self.exp.seed, "iteration": itr,
                "return": {k: ev.get(k) for k in ("episode_mean", "episode_min", "episode_max", "episodes")},
                "return_protocol": f"deterministic mean action, >= {self.exp.eval_steps} real steps",
                "dataset": str(self.exp.data_path), "bremen_version": __version__}
        save_policy(self.dir / name, gaussian_policy(params, stats, self.exp), meta)


@partial(jax.jit, static_argnames=("activation",))
def _one_step_mse(params, norm, obs, act, nxt, activation: str):
    n_members = jax.tree.leaves(params)[0].shape[0]
    pred = jax.vmap(lambda k: dyn_lib.predict(params, norm, obs, act, k, activation))(jnp.arange(n_members))
    return jnp.mean((pred - nxt[None]) ** 2)


class _Scalars:
    """TensorBoard scalars; non-finite values (an overflowing surrogate, say) stay in the CSV logs only,
    instead of a warning line per value on the console."""

    def __init__(self, path: Path, purge_step: Optional[int]):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(path), purge_step=purge_step)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if np.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _tensorboard(path: Path, purge_step: Optional[int]) -> _Scalars:
    return _Scalars(path, purge_step)


def summary_table(summaries: list[dict]) -> str:
    """Behavior data vs BC vs BREMEN (or ME-TRPO), one line per seed plus the mean."""
    label = ALGORITHM_LABELS[summaries[0].get("algorithm", "bremen")] if summaries else "BREMEN"
    lines = [f"{'task':<14}{'seed':>6}{'behavior data':>15}{'BC':>10}{label + ' final':>14}{label + ' best':>13}"]
    for s in summaries:
        lines.append(f"{s['task']:<14}{s['seed']:>6}{s['behavior_return']:>15.1f}{s['bc_return']:>10.1f}"
                     f"{s['final_return']:>14.1f}{s['best_return']:>13.1f}")
    if len(summaries) > 1:
        m = {k: np.mean([s[k] for s in summaries]) for k in ("behavior_return", "bc_return", "final_return",
                                                             "best_return")}
        lines.append(f"{'mean':<14}{'':>6}{m['behavior_return']:>15.1f}{m['bc_return']:>10.1f}"
                     f"{m['final_return']:>14.1f}{m['best_return']:>13.1f}")
    return "\n".join(lines)
