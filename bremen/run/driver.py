"""The run driver: one loop over deployments for every algorithm, offline and deployment-limited.

``Run(config, learner, plan).execute()`` trains ``learner`` deployment by deployment. Offline is one
deployment whose batch is the dataset (bremen.run.deployments.DatasetPlan); a recursive run collects each
deployment's batch with the learner's current policy (CollectionPlan). For each deployment the learner is
fitted on the data so far and calls back into this driver's hooks after each phase and chunk
(bremen.learners.Hooks), where the driver

* evaluates the policy on the real env (deterministic, whole episodes, at least ``eval_steps`` real steps),
* logs progress.csv, trpo.csv or agent.csv, dynamics.csv, bc.csv and TensorBoard,
* exports ``policy_bc``, ``policy_best``, ``policy_final`` (and a recursive run's ``policy_deployment<d>``)
  in the ``weights/`` format,
* and writes ``checkpoint.npz`` (atomically; the only checkpoint writer of a training run): the learner's
  arrays and the run's counters, so ``--resume`` after a kill ends as an uninterrupted run would.

A recursive run also ends each deployment with ``FINAL_EPISODES`` evaluation episodes on shared env seeds and
a row of deployments.csv, and draws deployments.png at the end. Every random stream derives from the seed and
the phase, deployment or iteration index.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from bremen import __version__
from bremen.evaluation import EnvPool, evaluate_episodes, evaluate_policy, evaluate_steps
from bremen.io.checkpoint import load_checkpoint, save_checkpoint
from bremen.io.csvlog import CSVLog
from bremen.io.policy_io import save_policy
from bremen.io.tensorboard import TensorBoard
from bremen.run.config import RunConfig
from bremen.run.deployments import CollectionPlan, DatasetPlan, OwnStepsPlan
from bremen.run.directory import CHECKPOINT, CONFIG_FILE, check_same_settings, prepare_run_dir
from bremen.run.report import DEPLOYMENT_KEYS, FINAL_EPISODES, plot_deployments
from bremen.run.target import TargetWatch
from bremen.errors import UserError
from bremen.tasks import make as make_task

TIMING_KEYS = ("time_trpo", "time_eval", "time_total", "time_train")
EVAL_KEYS = ("episode_mean", "episode_min", "episode_max", "episode_std", "episodes")


class Run:
    """One seed's run (see the module docstring); ``execute()`` returns the summary (also summary.json)."""

    bar_position: Optional[int] = None  # the progress bar's line (seeds trained together: one line each)

    def __init__(self, config: RunConfig, learner, resume: bool = False, force: bool = False, progress: bool = True,
                 task=None):
        self.cfg, self.learner, self.progress = config, learner, progress
        self.task = task if task is not None else make_task(config.task)
        self.dir = config.run_dir
        if config.script == "recursive":
            self.plan = CollectionPlan(config, self.task, self._say, progress, learner.sampling_noise)
        else:
            self.plan = (OwnStepsPlan if config.script == "online" else DatasetPlan)(config, self.task, self._say)
        self._stored = None  # the checkpoint's meta, read once
        if resume and (self.dir / CHECKPOINT).is_file():
            self._stored = load_checkpoint(self.dir / CHECKPOINT)[1]
            stored = self._stored["config"]
            kind = stored.get("script")
            if kind != config.script:
                raise UserError(f"--resume: {self.dir} holds a {kind} run; resume it with {kind}.py")
            check_same_settings(self.dir, stored, config.settings, config.resume_free_keys)
        self.plan.check()
        flag = config.dir_flag
        self.resume = (prepare_run_dir(self.dir, resume, force) if flag == "--log_dir" else
                       prepare_run_dir(self.dir, resume, force, what=flag, elsewhere=flag))
        self.chunks = learner.chunks
        """Evaluated chunks per deployment: outer iterations, or a model-free agent's chunks of updates."""
        self.progress_keys = ["Iteration"] + self.plan.progress_keys + learner.progress_keys[1:]
        self.eval_env = self.task.make_env()
        self.eval_pool = EnvPool(self.task.make_env)  # envs for episodes side by side (batch-acting policies)
        self.deployment = 0

    @staticmethod
    def say_for(progress: bool):
        """How a run (and its learner) print a line: above the progress bars, on stderr; nothing when quiet."""
        return (lambda msg: tqdm.write(msg, file=sys.stderr)) if progress else (lambda msg: None)

    def _say(self, msg: str) -> None:
        self.say_for(self.progress)(msg)

    # ------------------------------------------------------------------ the loop
    def execute(self) -> dict:
        phase, start, first = self.begin()
        try:
            for d in range(first, self.plan.deployments):
                if d > first:
                    phase, start = "new", d * self.chunks
                self.start_deployment(d, phase, start)
                if phase != "done":
                    self.learner.fit(self.data, self.train, self.val, self, phase, start, deployment=d,
                                     bc_data=self.bc_data, end=(d + 1) * self.chunks)
                self.end_deployment(d)
        finally:
            self.tb.close()
        return self.end()

    def begin(self) -> tuple[str, int, int]:
        """Restored state and open logs: returns (phase, chunk, deployment) training starts at; phase "done":
        that deployment's training was finished, only its report is (re)done."""
        self.best_return, self.best_itr = -np.inf, -1
        self.bc_return = None
        self._bars, self._t0, self._phase_times = {}, {}, {}
        self._timing = None  # a resumed deployment's time spent before its checkpoint
        self.target = TargetWatch(self.cfg.eval_target)
        self._last_ev = None
        phase, start, first = "new", 0, 0
        if self.resume:
            meta = self._stored
            first = meta.get("deployment", 0)
            self._timing = meta.get("timing")
            self.target = TargetWatch(self.cfg.eval_target, meta.get("target"))
            self.deployment = first
            self.data = self.plan.data_so_far(first, self.learner.policy).all
            phase, start = self.restore(self.data)
            said = phase
            stopped = self.cfg.stop_at_target and self.target.reached is not None
            if phase in ("trpo", "train") and (start >= (first + 1) * self.chunks or stopped):
                phase = "done"  # the deployment's training was finished; its report may not be
                reported = CSVLog.existing(self.dir / "deployments.csv") if self.plan.reports_deployments else None
                if reported and any(int(float(r["deployment"])) == first for r in reported.rows()):
                    first, phase = first + 1, "new"  # and so was its report
            where = f" at deployment {first}," if self.plan.deployments > 1 else ""
            self._say(f"resuming {self.dir}{where} after phase {said!r} at iteration {start}")
        self.open_logs(start, first)
        return phase, start, first

    def start_deployment(self, d: int, phase: str, start: int) -> None:
        """The data so far (collecting deployment ``d``'s batch if it is new) and, when the policy phase is
        next, the progress bar."""
        self.deployment, self.first_chunk = d, d * self.chunks
        self._t_deployment = time.time()
        sofar = self.plan.data_so_far(d, self.learner.policy)
        self._time_collect = time.time() - self._t_deployment
        self.batches, self.data, self.bc_data, self.train, self.val = sofar
        self.deployed = self.behavior = self.plan.data_return(sofar, self.task.horizon)
        self._phase_times = {}
        if self._timing and phase != "new":  # deployments.csv counts the time before the kill too
            self._phase_times = dict(self._timing["phases"])
            self._time_collect = self._timing["collect"]
            self._t_deployment -= self._timing["deployment"]
        self._timing = None
        self._bar = None
        before = self._phase_before_chunks()
        if phase != "done" and (before is None or phase in (before, self.learner.chunk_phase)):
            self._start_policy_phase(start)  # else after the phases before the chunks (model, BC)

    def _phase_before_chunks(self) -> Optional[str]:
        """The learner's phase after which its chunks start (model or BC), None if it has none."""
        phases = list(self.learner.phases)
        i = phases.index(self.learner.chunk_phase)
        return phases[i - 1] if i else None

    def end_deployment(self, d: int) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.plan.reports_deployments:
            self._report_deployment(d)

    def end(self) -> dict:
        """After the last deployment: the final export and the summary; the evaluation envs are closed."""
        try:
            summary = self._finish()
            if self.plan.reports_deployments:
                plot_deployments(self.deploy_log.rows(), self.dir / "deployments.png",
                                 f"{self.cfg.algorithm} recursive on {self.cfg.task}, seed {self.cfg.seed}")
            return summary
        finally:
            self.eval_pool.close()
            self.eval_env.close()

    # ------------------------------------------------------------------ checkpoint
    def save(self, phase: str, itr: int):
        meta = {"phase": phase, "next_iteration": itr, "best_return": self.best_return, "best_iteration": self.best_itr,
                "bc_return": self.bc_return, **self.learner.state_meta(), "behavior": self.behavior,
                "bremen_version": __version__, "config": self.cfg.settings, "deployment": self.deployment,
                "target": self.target.state,
                "timing": {"phases": self._phase_times, "collect": self._time_collect,
                           "deployment": time.time() - self._t_deployment}}
        save_checkpoint(self.dir / CHECKPOINT, self.learner.state_arrays(phase), meta)

    def restore(self, data) -> tuple[str, int]:
        meta = self.learner.restore(self.dir / CHECKPOINT, data)
        self.best_return, self.best_itr = meta["best_return"], meta["best_iteration"]
        self.bc_return, self.behavior = meta["bc_return"], meta["behavior"]
        return meta["phase"], meta["next_iteration"]

    def open_logs(self, start: int, first: int) -> None:
        """params.json, progress.csv, trpo.csv or agent.csv and deployments.csv (cut back to the checkpoint on
        resume), TensorBoard."""
        c = self.cfg
        (self.dir / CONFIG_FILE).write_text(json.dumps(c.settings, indent=2) + "\n")
        L = self.learner
        self.progress_log = CSVLog(self.dir / "progress.csv", self.progress_keys)
        self.detail_log = (None if L.detail_log is None else CSVLog(self.dir / L.detail_log, L.detail_keys)
                           if L.detail_keys else CSVLog.existing(self.dir / L.detail_log))  # else made with its first row
        if self.resume:  # drop rows written after the checkpoint
            for log in (self.progress_log, self.detail_log):
                if log is not None:
                    log.truncate("Iteration", start - 1)
        if self.plan.reports_deployments:
            self.deploy_log = CSVLog(self.dir / "deployments.csv", DEPLOYMENT_KEYS)
            self.deploy_log.truncate("deployment", first - 1)
        self.tb = TensorBoard(self.dir / "tb", purge_step=start * L.tb_steps_per_chunk if self.resume else None)

    # ------------------------------------------------------------------ hooks the learner calls
    def callback(self, phase: str, log):
        """A phase's inner loop: its CSV log and a progress bar (bremen.learners.InnerLog)."""
        csv_log = CSVLog(self.dir / log.file, log.columns)
        bar = tqdm(total=log.total, desc=log.desc, unit=log.unit, disable=not self.progress, leave=False)

        def cb(done: int, row: dict, postfix: dict):
            csv_log.write(row)
            if postfix:
                bar.set_postfix(**postfix)
            bar.update(done - bar.n)
        self._bars[phase], self._t0[phase] = bar, time.time()
        return cb

    def step(self, phase: str, index: int, info: dict):
        """After the ensemble fit (checkpoint), after BC (its evaluation and export) or after a chunk."""
        if phase == "model":
            return self._after_model(info)
        if phase == "bc":
            return self._after_bc(info)
        return self._after_chunk(index, info)  # False: the run stops there (--stop_at_target)

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
        if self._phase_before_chunks() == "model":  # an optimizer without a phase of its own before its chunks
            self._start_policy_phase(self.first_chunk)

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
        self._start_policy_phase(self.first_chunk)

    def _start_policy_phase(self, start: int) -> None:
        bc = "" if self.bc_return is None else f", BC return {self.bc_return:.1f}"
        if self.behavior is not None:
            self._say(f"{self.plan.data_label} return {self.behavior['mean']:.1f} ({self.behavior['episodes']} "
                      f"episodes){bc}")
        label = self.cfg.label if self.bar_position is None else f"{self.cfg.label} seed {self.cfg.seed}"
        if self.plan.deployments > 1:
            label = f"{label} deployment {self.deployment}/{self.plan.deployments - 1}"
        self._bar = tqdm(total=self.plan.deployments * self.chunks, initial=start, desc=label, unit="itr",
                         disable=not self.progress, position=self.bar_position)
        self._t_run = self._t_chunk = time.time()

    def _after_chunk(self, index: int, info: dict) -> None:
        """A chunk (an outer iteration, a model-free agent's chunk of updates): evaluate the policy, log the
        learner's report and progress.csv, export the best policy, checkpoint."""
        c, L = self.cfg, self.learner
        t_chunk, t0 = time.time() - self._t_chunk, time.time()
        policy = L.policy()
        ev = self.evaluate(policy, index, record=c.eval_model)
        t_eval = time.time() - t0
        report = L.report(index, info, ev.get("transitions"))
        if self.detail_log is None and report.details:
            first = report.details[0]
            self.detail_log = CSVLog(self.dir / L.detail_log, ["Iteration", *sorted(k for k in first if k != "Iteration")])
        for row in report.details:
            self.detail_log.write(row)
        stop = self._check_target(index, ev, policy)
        self._last_ev = ev
        for tag, value, tb_step in report.scalars:
            self.tb.add_scalar(tag, value, tb_step)
        if ev["episode_mean"] > self.best_return:
            self.best_return, self.best_itr = ev["episode_mean"], index
            self._export("policy_best", ev, index, policy)
        times = {f"time_{L.chunk_phase}": t_chunk, "time_eval": t_eval}
        for key, seconds in times.items():
            self._phase_times[key] = self._phase_times.get(key, 0.0) + seconds
        row = {"Iteration": index, **self.plan.progress_row(self.deployment, self.data, self.deployed),
               **{k: ev[k] for k in EVAL_KEYS}, "TotalSamples": len(self.data or ()), **report.progress,
               "best_return": self.best_return, "bc_return": self.bc_return, **times,
               "time_total": time.time() - self._t_run}
        self.progress_log.write(row)
        for k in L.eval_scalars:
            self.tb.add_scalar(f"eval/{k}", float(row[k]), index)
        self._chunk_done(L.chunk_phase, index, ev)
        if c.save_variables and (index % 100 == 0 or index == c.outer_iterations - 1):
            self._export(f"policy_iter{index}", ev, index, policy)
        return False if stop else None

    def _check_target(self, index: int, ev: dict, policy) -> bool:
        """--eval-target (bremen.run.target): export ``partial_target/``; True when training stops there."""
        c, t = self.cfg, self.target
        if t.update(index, ev["episode_mean"]):
            prev = t.reached["previous_mean"]
            self._export("partial_target", ev, index, policy, extra={"eval_target": c.eval_target,
                                                                      "previous_eval_return": prev})
            self._say(f"target {c.eval_target:g} reached: evaluations {prev:.1f} and {ev['episode_mean']:.1f}; "
                      f"the policy is exported as partial_target/")
        return bool(c.stop_at_target and t.reached is not None)

    def _chunk_done(self, phase: str, index: int, ev: dict) -> None:
        self.tb.flush()
        self._bar.update(1)
        self._bar.set_postfix(ret=f"{ev['episode_mean']:.1f}", best=f"{self.best_return:.1f}")
        self.save(phase, index + 1)
        self._t_chunk = time.time()

    def evaluate(self, policy, index: int, record: bool = False) -> dict:
        """Deterministic episodes on the real env, at least ``eval_steps`` real steps (the original's protocol), or
        exactly ``eval_episodes`` episodes."""
        c = self.cfg
        return (evaluate_episodes(policy, self.eval_env, c.eval_episodes, c.seed, index, self.eval_pool) if c.eval_episodes
                else evaluate_steps(policy, self.eval_env, c.eval_steps, c.seed, index, record, self.eval_pool,
                                    self.task.horizon))

    # ------------------------------------------------------------------ reports and exports
    def _report_deployment(self, d: int) -> None:
        """A recursive deployment's end: FINAL_EPISODES episodes on shared env seeds, policy_deployment<d>,
        a row of deployments.csv."""
        last = self.progress_log.rows()[-1]
        t_final = time.time()
        policy = self.learner.policy()
        final = evaluate_policy(policy, self.task, FINAL_EPISODES, seed=0)
        self._export(f"policy_deployment{d}", {"episode_mean": final["mean"], "episode_min": final["min"],
                                               "episode_max": final["max"], "episodes": FINAL_EPISODES},
                     (d + 1) * self.chunks - 1, policy,
                     protocol=f"deterministic mean action, {FINAL_EPISODES} episodes on env seeds {final['env_seeds']}")
        self._phase_times["time_eval"] = self._phase_times.get("time_eval", 0.0) + time.time() - t_final
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        self.deploy_log.write({
            "deployment": d, "real_samples": len(self.data), "batch_size": len(self.batches[-1]),
            "deployed_return": self.deployed["mean"], "deployed_episodes": self.deployed["episodes"],
            "eval_return": float(last["episode_mean"]), "final_return": final["mean"],
            "final_return_stderr": final["stderr"], "final_episodes": FINAL_EPISODES, "best_return": self.best_return,
            "model_val_loss": self.learner.model_val_loss, "bc_loss": self.learner.bc_loss,
            "bc_return": self.bc_return, "time_collect": self._time_collect, **self._phase_times,
            "time_total": time.time() - self._t_deployment, "peak_rss_mb": peak_mb})
        self._say(f"deployment {d}: {len(self.data)} real samples, deployed policy {self.deployed['mean']:.1f}, "
                  f"after training {float(last['episode_mean']):.1f}; {FINAL_EPISODES} episodes: {final['mean']:.1f} "
                  f"± {final['stderr']:.1f} (best so far {self.best_return:.1f})")

    def _finish(self) -> dict:
        c = self.cfg
        n_iters = self.plan.deployments * self.chunks
        last_row = self.progress_log.rows()[-1] if n_iters else {}
        final_ev = ({**{k: float(last_row[k]) for k in ("episode_mean", "episode_min", "episode_max")},
                     "episodes": int(float(last_row["episodes"]))} if last_row else {})
        if self._last_ev is not None and "env_seeds" in self._last_ev:  # episodes on recorded seeds: this
            final_ev = self._last_ev  # session's last evaluation as measured, so the seeds reproduce it exactly
        last_eval, protocol = final_ev.get("episode_mean"), None
        rows = self.deploy_log.rows() if self.plan.reports_deployments else []
        if rows:  # the final policy is the last deployment's: its return is that deployment's FINAL_EPISODES
            # evaluation (policy_deployment<d>/), the number deployments.csv and the console report
            final_ev, protocol = self._deployment_evaluation(int(float(rows[-1]["deployment"])))
        self._export("policy_final", final_ev, n_iters - 1, self.learner.policy(), protocol=protocol)
        if c.video_dir:
            from bremen.io.video import VideoSettings, record_videos

            record_videos(self.task, self.learner.policy(), Path(c.video_dir), VideoSettings(episodes=1), c.seed,
                          prefix=f"_seed{c.seed}", progress=self.progress, on_written=self._say)
        summary = {
            "task": c.task, "algorithm": c.algorithm, "seed": c.seed, "preset": c.preset,
            "run_dir": str(self.dir), **self.plan.summary(self.data, self.behavior), "bc_return": self.bc_return,
            "final_return": final_ev.get("episode_mean"), "best_return": self.best_return,
            "best_iteration": self.best_itr, "outer_iterations": n_iters, **self.learner.summary(n_iters),
        }
        if c.eval_target is not None:
            summary.update({"eval_target": c.eval_target, "partial_target": self.target.reached})
        if rows:  # the last outer iteration's own shorter evaluation keeps deployments.csv's name for it
            summary.update({"deployment_returns": [float(r["final_return"]) for r in rows],
                            "final_return_stderr": float(rows[-1]["final_return_stderr"]),
                            "final_episodes": FINAL_EPISODES, "eval_return": last_eval})
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def _deployment_evaluation(self, d: int) -> tuple:
        """(return, protocol) that deployment ``d``'s policy was exported with (:meth:`_report_deployment`)."""
        doc = json.loads((self.dir / f"policy_deployment{d}" / "policy.json").read_text())
        return doc["return"], doc["return_protocol"]

    def _export(self, name: str, ev: dict, itr: int, policy, algorithm: Optional[str] = None,
                protocol: Optional[str] = None, extra: Optional[dict] = None):
        """``name/`` in the weights/ format, with the return it was evaluated at."""
        c = self.cfg
        meta = {"task": c.task, "algorithm": algorithm or c.algorithm, "seed": c.seed, "iteration": itr,
                "return": {**{k: ev.get(k) for k in ("episode_mean", "episode_min", "episode_max", "episodes")},
                           **({"env_seeds": ev["env_seeds"]} if "env_seeds" in ev else {})},
                "return_protocol": protocol or (f"deterministic mean action, {c.eval_episodes} episodes"
                                                if c.eval_episodes else
                                                f"deterministic mean action, >= {c.eval_steps} real steps"),
                **self.plan.export_meta(self.deployment, self.data), **self.learner.export_meta(),
                **(extra or {}), "bremen_version": __version__}
        save_policy(self.dir / name, policy, meta)
