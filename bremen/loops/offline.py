"""BREMEN offline (``offline.py`` / ``bremen offline``): one deployment whose batch is a fixed dataset.

1. Load the dataset (first ``n_train`` transitions), split it 85/15 in order for the dynamics model.
2. The model-based learner (bremen.learners.model_based) fits the ensemble and BC, initializes the TRPO
   policy from BC (``--bc_init``) and runs ``onpol_iters`` compiled TRPO chunks on imaginary rollouts.
3. This loop's hooks evaluate BC and every chunk's policy on the real env (deterministic, whole episodes,
   at least ``num_path_onpol`` × 1000 steps), log progress.csv / trpo.csv / dynamics.csv / bc.csv and
   TensorBoard, export ``policy_bc``, ``policy_best`` and ``policy_final`` in the ``weights/`` format, and
   checkpoint after each phase and chunk.

Every random stream derives from the seed and the phase or iteration index, and the checkpoint holds the
whole state, so ``--resume`` after a kill ends with the same parameters and progress.csv (timing columns
aside) as an uninterrupted run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from bremen import __version__
from bremen.data.importers import inferred_note, read_dataset
from bremen.errors import UserError
from bremen.experiment import ALGORITHM_LABELS, Experiment
from bremen.io.checkpoint import load_checkpoint, save_checkpoint
from bremen.io.csvlog import CSVLog
from bremen.io.policy_io import save_policy
from bremen.algos import registry
from bremen.learners.actor_critic import ActorCriticConfig, ActorCriticLearner, spec_of
from bremen.learners.model_based import ModelBasedConfig, ModelBasedLearner
from bremen.loops.evaluation import EnvPool, dataset_return, evaluate_steps
from bremen.loops.run import CHECKPOINT, CONFIG_FILE, TensorBoard, check_same_settings, prepare_run_dir
from bremen.tasks import make as make_task

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
AGENT_PROGRESS_KEYS = ["Iteration", "updates", "episode_mean", "episode_min", "episode_max", "episode_std", "episodes",
                       "TotalSamples", "best_return", "time_train", "time_eval", "time_total"]
TIMING_KEYS = ("time_trpo", "time_eval", "time_total", "time_train")
RESTORE_FLAGS = {"dynamics": "restore_dynamics_variables", "bc": "restore_bc_variables",
                 "policy": "restore_policy_variables", "value": "restore_value"}


def missing_data_message(exp: Experiment) -> str:
    return (f"dataset {exp.data_path} not found; make it with: bremen collect --task {exp.task} "
            f"--noise {exp.flags['noise']} --n {exp.flags['n_train']} --out {exp.data_path}")


def learner_config(exp: Experiment) -> ModelBasedConfig:
    """The model-based learner's typed config from a resolved experiment (param file, preset, flags)."""
    f = exp.flags
    return ModelBasedConfig(
        algorithm=f["algorithm"], dynamics=exp.dynamics, bc=exp.bc, trpo=exp.trpo,
        policy_shape=tuple(exp.params.policy.network_shape), outer_iterations=f["onpol_iters"],
        bc_init=bool(f["bc_init"]), dataset_normalizer=bool(f["dataset_normalizer"]),
        reinitialize_every_outer_iteration=bool(exp.params.policy.reinitialize_every_itr),
        start_source="s_t" if f["use_s_t"] else "s_0" if f["use_s_0"] else "reset",
        start_pool_size=exp.start_pool_size, member_mode=f["member_mode"], pretrain_value=bool(f["pretrain_value"]),
        restore={part: f["restore_path"] for part, flag in RESTORE_FLAGS.items() if f[flag]},
    )


def make_learner(exp: Experiment, task, say):
    """The learner of ``exp``'s algorithm: model-based (BREMEN, ME-TRPO) or a model-free agent."""
    name = exp.flags["algorithm"]
    if name in registry.MODEL_BASED:
        return ModelBasedLearner(task, learner_config(exp), exp.seed, say=say)
    cfg = exp.agent
    return ActorCriticLearner(task, ActorCriticConfig(
        algorithm=name, agent=registry.make_agent(name, spec_of(task), cfg), steps=getattr(cfg, "total_steps", cfg.steps),
        eval_every=cfg.eval_every, batch_size=cfg.batch_size, warm_start=not exp.flags.get("reinit_agent")),
        exp.seed, say=say)


class OfflineRun:
    """One seed of BREMEN (or ME-TRPO) offline. ``run()`` returns the summary dict (also in summary.json).

    Its hooks (``callback``, ``step``) serve the recursive loop too (bremen.loops.recursive), which adds
    columns through ``progress_keys`` / ``progress_row_extra`` and checkpoint fields through
    ``checkpoint_extra``.
    """

    script = "offline"
    progress_keys = PROGRESS_KEYS
    data_label = "behavior data"
    bar_position: Optional[int] = None  # the progress bar's line (seeds trained together: one line each)
    resume_free_keys: tuple = ("flags.onpol_iters",)  # --resume --onpol_iters N trains a run further

    def __init__(self, exp: Experiment, resume: bool = False, force: bool = False, progress: bool = True,
                 stop_after: Optional[int] = None, check_data: bool = True):
        self.exp, self.progress, self.stop_after = exp, progress, stop_after
        self.task = make_task(exp.task)
        self.dir = exp.run_dir
        self.checkpoint_extra: dict = {}
        self.first_chunk = 0  # the outer iteration the current batch's TRPO chunks start at
        if check_data and not exp.data_path.is_file():
            raise UserError(missing_data_message(exp))
        if resume and (self.dir / CHECKPOINT).is_file():
            stored = load_checkpoint(self.dir / CHECKPOINT)[1]["config"]
            kind = stored.get("script")
            if kind != self.script:
                raise UserError(f"--resume: {self.dir} holds a {kind} run; resume it with {kind}.py")
            check_same_settings(self.dir, stored, exp.to_dict(), self.resume_free_keys)
        self.data = None
        if check_data:  # a dataset that does not fit the task is an error before anything is written
            self.load_data()
        self.learner = make_learner(exp, self.task, self._say)  # checks what it reads (BRAC's π_b file)
        self.resume = prepare_run_dir(self.dir, resume, force)
        self.model_free = isinstance(self.learner, ActorCriticLearner)
        if self.model_free:
            self.progress_keys = self.progress_keys[:1] + [k for k in self.progress_keys[1:]
                                                           if k not in PROGRESS_KEYS] + AGENT_PROGRESS_KEYS[1:]
        self.eval_env = self.task.make_env()
        self.eval_pool = EnvPool(self.task.make_env)  # envs for episodes side by side (batch-acting policies)

    def load_data(self):
        exp = self.exp
        ds = read_dataset(str(exp.data_path), task=self.task)
        note = inferred_note(ds)
        if note:
            self._say(f"{exp.data_path}: {note}; `bremen dataset convert` writes it in bremen's format")
        n = min(exp.flags["n_train"], len(ds))
        self.data = ds.subsample(n, mode=exp.flags["subsample"], seed=exp.seed)
        self.train, self.val = self.data.split(0.15, by="order")
        self.behavior = dataset_return(self.data, self.task.horizon)

    def _say(self, msg: str) -> None:
        if self.progress:
            tqdm.write(msg, file=sys.stderr)

    def evaluate(self, policy, index: int, record: bool = False) -> dict:
        """The deterministic policy on the real env for >= num_path_onpol x env_horizon steps."""
        return evaluate_steps(policy, self.eval_env, self.exp.eval_steps, self.exp.seed, index, record=record,
                              pool=self.eval_pool, horizon=self.task.horizon)

    # ------------------------------------------------------------------ checkpoint
    def save(self, phase: str, itr: int):
        meta = {"phase": phase, "next_iteration": itr, "best_return": self.best_return, "best_iteration": self.best_itr,
                "bc_return": self.bc_return, **self.learner.state_meta(), "behavior": self.behavior,
                "bremen_version": __version__, "config": self.exp.to_dict(), **self.checkpoint_extra}
        save_checkpoint(self.dir / CHECKPOINT, self.learner.state_arrays(phase), meta)

    def restore(self) -> tuple[str, int]:
        meta = self.learner.restore(self.dir / CHECKPOINT, self.data)
        self.best_return, self.best_itr = meta["best_return"], meta["best_iteration"]
        self.bc_return, self.behavior = meta["bc_return"], meta["behavior"]
        return meta["phase"], meta["next_iteration"]

    # ------------------------------------------------------------------ hooks the learner calls
    def callback(self, phase: str):
        exp = self.exp
        exp_size = exp.dynamics.ensemble_size
        if phase == "model":
            log = CSVLog(self.dir / "dynamics.csv", ["epoch"] + [f"train_mse_{i}" for i in range(exp_size)]
                         + [f"val_mse_{i}" for i in range(exp_size)])
            bar = tqdm(total=exp.dynamics.epochs, desc="dynamics", unit="epoch", disable=not self.progress,
                       leave=False)

            def cb(epoch, train_mse, val_mse):
                row = {"epoch": epoch, **{f"train_mse_{i}": float(v) for i, v in enumerate(train_mse)}}
                if val_mse is not None:
                    row.update({f"val_mse_{i}": float(v) for i, v in enumerate(val_mse)})
                    bar.set_postfix(val=f"{np.mean(val_mse):.4f}")
                log.write(row)
                bar.update(epoch + 1 - bar.n)
        else:
            log = CSVLog(self.dir / "bc.csv", ["step", "loss"])
            bar = tqdm(total=exp.bc.steps, desc="behavior cloning", unit="step", disable=not self.progress,
                       leave=False)

            def cb(step, loss, state):
                log.write({"step": step, "loss": loss})
                bar.set_postfix(loss=f"{loss:.4f}")
                bar.update(step - bar.n)
        self._bars[phase], self._t0[phase] = bar, time.time()
        return cb

    def step(self, phase: str, index: int, info: dict):
        if phase == "model":
            return self._after_model(info)
        if phase == "bc":
            return self._after_bc(info)
        if phase == "train":
            return self._after_train(index, info)
        return self._after_trpo(index, info)

    def _close_bar(self, phase: str) -> float:
        if phase in self._bars:
            self._bars.pop(phase).close()
        seconds = time.time() - self._t0.pop(phase, time.time())
        self._phase_times[f"time_{phase}"] = seconds
        return seconds

    def _after_model(self, info: dict) -> None:
        seconds = self._close_bar("model")
        if not info["restored"]:
            self._say(f"dynamics: {info['epochs']} epochs, validation MSE {self.learner.model_val_loss:.4f} "
                      f"(members {np.array2string(info['val_members'], precision=4)}), {seconds:.0f}s")
        self.save("model", self.first_chunk)

    def _after_bc(self, info: dict) -> None:
        seconds = self._close_bar("bc")
        L = self.learner
        ev = self.evaluate(L.bc_policy(), -1)
        self.bc_return = ev["episode_mean"]
        if not info["restored"]:
            self._say(f"behavior cloning: loss {L.bc_loss:.4f}, real return {self.bc_return:.1f} "
                      f"({ev['episodes']} episodes), {seconds:.0f}s")
        self._export("policy_bc", ev, -1, L.bc_policy(), algorithm="bc")
        self.save("bc", self.first_chunk)
        self._start_trpo(self.first_chunk)

    def total_chunks(self) -> int:
        """Evaluated chunks of the whole run: outer iterations, or a model-free agent's chunks of updates."""
        return self.learner.chunks if self.model_free else self.exp.flags["onpol_iters"]

    def _start_trpo(self, start: int) -> None:
        bc = "" if self.bc_return is None else f", BC return {self.bc_return:.1f}"
        self._say(f"{self.data_label} return {self.behavior['mean']:.1f} ({self.behavior['episodes']} episodes){bc}")
        n_iters = self.total_chunks()
        self._bar = tqdm(total=n_iters, initial=start, desc=self.bar_label(), unit="itr", disable=not self.progress,
                         position=self.bar_position)
        self._t_run = self._t_chunk = time.time()

    def _after_trpo(self, itr: int, info: dict):
        exp, L, flags = self.exp, self.learner, self.exp.flags
        iters = exp.trpo.iterations
        t_trpo = time.time() - self._t_chunk
        t0 = time.time()
        ev = self.evaluate(L.policy(), itr, record=flags["eval_model"])
        t_eval = time.time() - t0
        if ev["episode_mean"] > self.best_return:
            self.best_return, self.best_itr = ev["episode_mean"], itr
            self._export("policy_best", ev, itr, L.policy())
        for i in range(iters):
            row = {k: info[k][i] for k in TRPO_KEYS[2:]}
            self.inner_log.write({"Iteration": itr, "inner": i, **row})
            for k, v in row.items():
                self.tb.add_scalar(f"trpo/{k}", float(v), itr * iters + i)
        last = {k: float(info[k][-1]) for k in TRPO_KEYS[2:9]}
        for key, seconds in (("time_trpo", t_trpo), ("time_eval", t_eval)):
            self._phase_times[key] = self._phase_times.get(key, 0.0) + seconds
        row = {"Iteration": itr, **self.progress_row_extra(), **{k: ev[k] for k in ("episode_mean", "episode_min", "episode_max", "episode_std",
                                                        "episodes")},
               "TotalSamples": len(self.data), **last,
               "imagined_return": float(np.mean(info["imagined_return"])),
               "step_fraction": float(np.mean(info["step_fraction"])), "kl_after": float(np.mean(info["kl_after"])),
               "best_return": self.best_return, "model_val_loss": L.model_val_loss, "bc_loss": L.bc_loss,
               "bc_return": self.bc_return, "trpo_iterations": (itr + 1) * iters,
               "time_trpo": t_trpo, "time_eval": t_eval, "time_total": time.time() - self._t_run}
        if flags["eval_model"]:
            row["step_wise_mse"] = L.model_error(ev["transitions"])
        self.progress_log.write(row)
        for k in ("episode_mean", "episode_min", "episode_max", "best_return", "imagined_return", "kl_after"):
            self.tb.add_scalar(f"eval/{k}", float(row[k]), itr)
        self.tb.flush()
        self._bar.update(1)
        self._bar.set_postfix(ret=f"{ev['episode_mean']:.1f}", best=f"{self.best_return:.1f}")
        self.save("trpo", itr + 1)
        if flags["save_variables"] and (itr % 100 == 0 or itr == flags["onpol_iters"] - 1):
            self._export(f"policy_iter{itr}", ev, itr, L.policy())
        self._t_chunk = time.time()
        if self.stop_after is not None and itr + 1 >= self.stop_after:
            self.stopped = True
            return False
        return None

    def _after_train(self, chunk: int, info: dict):
        """A model-free agent's chunk of updates: evaluate, log (progress.csv, agent.csv), export, checkpoint."""
        t_train, t0 = time.time() - self._t_chunk, time.time()
        policy = self.learner.policy()
        ev = self.evaluate(policy, chunk)
        t_eval = time.time() - t0
        if ev["episode_mean"] > self.best_return:
            self.best_return, self.best_itr = ev["episode_mean"], chunk
            self._export("policy_best", ev, chunk, policy)
        if self.agent_log is None:
            self.agent_log = CSVLog(self.dir / "agent.csv", ["Iteration", *sorted(info)])
        self.agent_log.write({"Iteration": chunk, **info})
        row = {"Iteration": chunk, **self.progress_row_extra(), "updates": info["updates"],
               **{k: ev[k] for k in ("episode_mean", "episode_min", "episode_max", "episode_std", "episodes")},
               "TotalSamples": len(self.data), "best_return": self.best_return, "time_train": t_train,
               "time_eval": t_eval, "time_total": time.time() - self._t_run}
        self.progress_log.write(row)
        for k, v in info.items():
            self.tb.add_scalar(f"train/{k}", float(v), chunk)
        for k in ("episode_mean", "best_return"):
            self.tb.add_scalar(f"eval/{k}", float(row[k]), chunk)
        self.tb.flush()
        for key, seconds in (("time_train", t_train), ("time_eval", t_eval)):
            self._phase_times[key] = self._phase_times.get(key, 0.0) + seconds
        self._bar.update(1)
        self._bar.set_postfix(ret=f"{ev['episode_mean']:.1f}", best=f"{self.best_return:.1f}")
        self.save("train", chunk + 1)
        self._t_chunk = time.time()
        if self.stop_after is not None and chunk + 1 >= self.stop_after:
            self.stopped = True
            return False
        return None

    def bar_label(self) -> str:
        name = self.exp.flags["algorithm"]
        label = ALGORITHM_LABELS.get(name) or registry.LABELS[name]
        return label if self.bar_position is None else f"{label} seed {self.exp.seed}"

    def progress_row_extra(self) -> dict:
        return {}

    def export_extra(self) -> dict:
        """What an exported policy's metadata says about the data it learned from."""
        return {"dataset": str(self.exp.data_path)}

    def summary_extra(self) -> dict:
        return {}

    def open_logs(self, phase: str, start: int) -> None:
        """params.json, progress.csv and trpo.csv (cut back to the checkpoint on resume), TensorBoard."""
        exp = self.exp
        (self.dir / CONFIG_FILE).write_text(json.dumps(exp.to_dict(), indent=2) + "\n")
        self.progress_log = CSVLog(self.dir / "progress.csv", self.progress_keys)
        self.inner_log = None if self.model_free else CSVLog(self.dir / "trpo.csv", TRPO_KEYS)
        self.agent_log = CSVLog.existing(self.dir / "agent.csv") if self.model_free else None
        if self.resume:  # drop rows written after the checkpoint
            for log in (self.progress_log, self.inner_log, self.agent_log):
                if log is not None:
                    log.truncate("Iteration", start - 1)
        self.tb = TensorBoard(self.dir / "tb", purge_step=start * exp.trpo.iterations if self.resume else None)

    # ------------------------------------------------------------------ main
    def run(self) -> dict:
        phase, start = self.begin()
        try:
            self.learner.fit(self.data, self.train, self.val, self, phase, start)
        finally:
            self.tb.close()
        return self.end()

    def close_envs(self) -> None:
        """Closes the evaluation envs; the run evaluates nothing after this."""
        self.eval_pool.close()
        self.eval_env.close()

    def begin(self) -> tuple[str, int]:
        """Data, restored state and open logs: returns the (phase, chunk) training starts at."""
        if self.data is None:
            self.load_data()
        self.best_return, self.best_itr = -np.inf, -1
        self.bc_return = None
        self._bars, self._t0, self._phase_times, self.stopped = {}, {}, {}, False
        phase, start = "new", 0
        if self.resume:
            phase, start = self.restore()
            self._say(f"resuming {self.dir} after phase {phase!r} at iteration {start}")
        self.open_logs(phase, start)
        if phase in ("bc", "trpo") or self.model_free:
            self._start_trpo(start)
        return phase, start

    def end(self) -> dict:
        """After training: the final export and the summary ({} when the run was stopped early); then the
        evaluation envs are closed."""
        try:
            if self.stopped:
                return {}
            self._bar.close()
            return self._finish()
        finally:
            self.close_envs()

    def _finish(self) -> dict:
        exp, flags = self.exp, self.exp.flags
        n_iters = self.total_chunks()
        last_row = self.progress_log.rows()[-1] if n_iters else {}
        final_ev = ({**{k: float(last_row[k]) for k in ("episode_mean", "episode_min", "episode_max")},
                     "episodes": int(float(last_row["episodes"]))} if last_row else {})
        self._export("policy_final", final_ev, n_iters - 1, self.learner.policy())
        if flags["video_dir"]:
            from bremen.io.video import VideoSettings, record_videos

            record_videos(self.task, self.learner.policy(), Path(flags["video_dir"]), VideoSettings(episodes=1),
                          exp.seed, prefix=f"_seed{exp.seed}", progress=self.progress, on_written=self._say)
        summary = {
            "task": exp.task, "algorithm": flags["algorithm"], "seed": exp.seed, "preset": exp.preset,
            "run_dir": str(self.dir), "dataset": str(exp.data_path), "n_train": len(self.data),
            "behavior_return": self.behavior["mean"], "bc_return": self.bc_return,
            "final_return": final_ev.get("episode_mean"), "best_return": self.best_return,
            "best_iteration": self.best_itr, "outer_iterations": n_iters,
            **({"updates": self.learner.config.steps} if self.model_free
               else {"trpo_iterations": n_iters * exp.trpo.iterations}), **self.summary_extra(),
        }
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def _export(self, name: str, ev: dict, itr: int, policy, algorithm: Optional[str] = None,
                protocol: Optional[str] = None):
        """``name/`` in the weights/ format, with the return it was evaluated at."""
        meta = {"task": self.exp.task, "algorithm": algorithm or self.exp.flags["algorithm"], "seed": self.exp.seed,
                "iteration": itr,
                "return": {k: ev.get(k) for k in ("episode_mean", "episode_min", "episode_max", "episodes")},
                "return_protocol": protocol or f"deterministic mean action, >= {self.exp.eval_steps} real steps",
                **self.export_extra(), "bremen_version": __version__}
        save_policy(self.dir / name, policy, meta)


def summary_table(summaries: list[dict]) -> str:
    """Behavior data vs BC vs the algorithm's final and best returns, one line per seed plus the mean."""
    name = summaries[0].get("algorithm", "bremen") if summaries else "bremen"
    label = ALGORITHM_LABELS.get(name) or registry.LABELS[name]
    cols = [("behavior_return", "behavior data"), ("bc_return", "BC"), ("final_return", f"{label} final"),
            ("best_return", f"{label} best")]
    if all(s.get("bc_return") is None for s in summaries):
        cols.pop(1)  # a model-free baseline fits no BC of its own
    width = [max(10, len(title) + 2) for _, title in cols]
    num = lambda v, w: f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}"
    lines = [f"{'task':<14}{'seed':>6}" + "".join(f"{t:>{w}}" for (_, t), w in zip(cols, width))]
    for s in summaries:
        lines.append(f"{s['task']:<14}{s['seed']:>6}" + "".join(num(s[k], w) for (k, _), w in zip(cols, width)))
    if len(summaries) > 1:
        mean = lambda k: np.mean([s[k] for s in summaries]) if all(s[k] is not None for s in summaries) else None
        lines.append(f"{'mean':<14}{'':>6}" + "".join(num(mean(k), w) for (k, _), w in zip(cols, width)))
    return "\n".join(lines)
