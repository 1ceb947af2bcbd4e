"""Deployment-efficient BREMEN (``recursive.py`` / ``bremen recursive``), ORIGINAL.md §2.2.

For each of ``deployments`` deployments d: collect ``batch_size`` real steps (d = 0: uniform random
actions, or the dataset of ``--data_path``, a warm start; later: the current policy with its sampling noise,
``--gaussian``/``--const_sampling``), write
them once as ``deployments/deployment_<d>.h5`` (the project's dataset format), then train the learner on
the data so far: the ensemble warm-started on every batch's 85/15 split, BC re-initialized on the latest
batch (``--all_bc``: on all) with statistics over every batch, the policy from BC (BREMEN) or carried
over (ME-TRPO), and ``interval`` outer iterations of TRPO, each followed by the real-env evaluation.

The same hooks as the offline loop evaluate, log, export and checkpoint; progress.csv adds the deployment,
the real samples so far and the deployed policy's own return, and deployments.csv has one row per
deployment. A deployment file is written atomically and only once, so a killed collection leaves nothing
that a resume would trust, and a resumed run reads the batches it already has.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Optional

import numpy as np

from bremen.data import load_dataset
from bremen.data.collect import collect
from bremen.data.dataset import concat, save_dataset
from bremen.data.importers import inferred_note, read_dataset
from bremen.experiment import Experiment
from bremen.io.checkpoint import load_checkpoint
from bremen.io.csvlog import CSVLog
from bremen.loops.evaluation import dataset_return, derived_seed, evaluate_policy
from bremen.loops.offline import PROGRESS_KEYS, OfflineRun
from bremen.loops.run import CHECKPOINT

DEPLOY_STREAM = 5  # derived_seed stream of the deployments' env resets and action noise
RECURSIVE_KEYS = ["deployment", "real_samples", "deployed_return"]
DEPLOYMENT_KEYS = ["deployment", "real_samples", "batch_size", "deployed_return", "deployed_episodes",
                   "eval_return", "final_return", "final_return_stderr", "final_episodes", "best_return",
                   "model_val_loss", "bc_loss", "bc_return", "time_collect", "time_model", "time_bc", "time_trpo",
                   "time_train", "time_eval", "time_total", "peak_rss_mb"]  # time_train: a model-free agent's updates
# Every deployment ends with this many deterministic episodes of the trained policy on env seeds shared by
# every run (bremen.loops.evaluation.evaluate_policy with seed 0): final_return in deployments.csv.
FINAL_EPISODES = 10


class RecursiveRun(OfflineRun):
    """One seed of recursive BREMEN / ME-TRPO; ``run()`` returns the summary (also in summary.json)."""

    script = "recursive"
    progress_keys = PROGRESS_KEYS[:1] + RECURSIVE_KEYS + PROGRESS_KEYS[1:]
    data_label = "deployment batch"
    resume_free_keys = ()  # onpol_iters shapes the deployment plan (num_paths), so a resume keeps it

    def __init__(self, exp: Experiment, resume: bool = False, force: bool = False, progress: bool = True,
                 stop_after: Optional[int] = None):
        super().__init__(exp, resume, force, progress, stop_after, check_data=False)
        self.deployments, self.batch_size = exp.flags["deployments"], exp.flags["batch_size"]
        self.interval = self.learner.chunks if self.model_free else exp.flags["interval"]
        self._batches: dict = {}

    # ------------------------------------------------------------------ data
    def deployment_path(self, d: int) -> Path:
        return self.dir / "deployments" / f"deployment_{d}.h5"

    def deployment_batch(self, d: int):
        """Deployment ``d``'s real batch: read back if written, else collected now and written once. What
        training sees is always the file's content, so a resumed run trains on exactly the same arrays."""
        if d in self._batches:
            return self._batches[d]
        path = self.deployment_path(d)
        if path.is_file():
            self._batches[d] = load_dataset(str(path), task=self.task)
            return self._batches[d]
        initial = self.exp.flags.get("initial_data")
        if d == 0 and initial:  # a warm start: the given dataset is the first batch, written once like any other
            batch = read_dataset(initial, task=self.task)
            note = inferred_note(batch)
            self._say(f"deployment 0: the dataset {initial} ({len(batch)} transitions{'; ' + note if note else ''})")
            batch.metadata.update({"deployment": 0, "policy": f"dataset {initial}", "run_dir": str(self.dir)})
            return self._write_batch(d, batch)
        random = d == 0
        policy = None if random else self.learner.policy()
        own = f"the {policy.kind} policy's own samples" if policy is not None else None
        meta = {"deployment": d, "policy": "uniform random" if random else f"{self.exp.flags['algorithm']} after "
                f"deployment {d - 1}", "sampling_noise": None if random else own if self.model_free else
                {"gaussian": self.exp.trpo.sampling_std, "const_sampling": self.exp.trpo.const_sampling},
                "run_dir": str(self.dir)}
        self._say(f"deployment {d}: collecting {self.batch_size} real steps with "
                  f"{'uniform random actions' if random else 'the current policy'}")
        batch = collect(self.task, "random" if random else "pure", self.batch_size, policy,
                        derived_seed(self.exp.seed, DEPLOY_STREAM, d), self.progress, meta)
        return self._write_batch(d, batch)

    def _write_batch(self, d: int, batch):
        path = self.deployment_path(d)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_dataset(batch, str(path))
        return self.deployment_batch(d)

    def data_so_far(self, d: int):
        """(all batches, BC data, model train, model val) after deployment ``d``; each batch split 85/15."""
        batches = [self.deployment_batch(i) for i in range(d + 1)]
        splits = [b.split(0.15, by="order") for b in batches]
        all_data = concat(batches) if len(batches) > 1 else batches[0]
        bc_data = all_data if self.exp.flags["all_bc"] else batches[-1]
        train = concat([s[0] for s in splits]) if len(splits) > 1 else splits[0][0]
        val = concat([s[1] for s in splits]) if len(splits) > 1 else splits[0][1]
        return batches, all_data, bc_data, train, val

    # ------------------------------------------------------------------ checkpoint and logs
    def save(self, phase: str, itr: int):
        self.checkpoint_extra = {"deployment": self.deployment}
        super().save(phase, itr)

    def progress_row_extra(self) -> dict:
        return {"deployment": self.deployment, "real_samples": len(self.data),
                "deployed_return": self.deployed["mean"]}

    def export_extra(self) -> dict:
        return {"deployments": self.deployment + 1, "real_samples": len(self.data),
                "dataset": str(self.dir / "deployments")}

    def total_chunks(self) -> int:
        return self.deployments * self.interval

    def bar_label(self) -> str:
        return f"{super().bar_label()} deployment {self.deployment}/{self.deployments - 1}"

    def run(self) -> dict:
        self.best_return, self.best_itr = -np.inf, -1
        self.bc_return = None
        self._bars, self._t0, self.stopped = {}, {}, False
        phase, start, first = "new", 0, 0
        if self.resume:
            meta = load_checkpoint(self.dir / CHECKPOINT)[1]
            first = meta["deployment"]
            self.deployment = first
            _, self.data, _, _, _ = self.data_so_far(first)
            phase, start = self.restore()
            if phase in ("trpo", "train") and start >= (first + 1) * self.interval:
                first, phase = first + 1, "new"  # that deployment was finished
            self._say(f"resuming {self.dir} at deployment {first}, after phase {phase!r}")
        self.open_logs(phase, start)
        self.deploy_log = CSVLog(self.dir / "deployments.csv", DEPLOYMENT_KEYS)
        self.deploy_log.truncate("deployment", first - 1)
        try:
            for d in range(first, self.deployments):
                if not self._deployment(d, phase if d == first else "new", start if d == first else d * self.interval):
                    return {}
        finally:
            self.tb.close()
        try:
            summary = self._finish()
            self._plot()
        finally:
            self.close_envs()
        return summary

    def _deployment(self, d: int, phase: str, start: int) -> bool:
        self.deployment, self.first_chunk = d, d * self.interval
        t0 = time.time()
        batches, self.data, bc_data, self.train, self.val = self.data_so_far(d)
        t_collect = time.time() - t0
        self.deployed = dataset_return(batches[-1], self.task.horizon)
        self.behavior = self.deployed
        self._phase_times = {}
        if phase in ("bc", "trpo") or self.model_free:
            self._start_trpo(start)
        self.learner.fit(self.data, self.train, self.val, self, phase, start, deployment=d, bc_data=bc_data,
                         end=(d + 1) * self.interval)
        if self.stopped:
            return False
        self._bar.close()
        last = self.progress_log.rows()[-1]
        t_final = time.time()
        policy = self.learner.policy()
        final = evaluate_policy(policy, self.task, FINAL_EPISODES, seed=0)
        self._export(f"policy_deployment{d}", {"episode_mean": final["mean"], "episode_min": final["min"],
                                               "episode_max": final["max"], "episodes": FINAL_EPISODES},
                     (d + 1) * self.interval - 1, policy,
                     protocol=f"deterministic mean action, {FINAL_EPISODES} episodes on env seeds {final['env_seeds']}")
        self._phase_times["time_eval"] = self._phase_times.get("time_eval", 0.0) + time.time() - t_final
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        self.deploy_log.write({
            "deployment": d, "real_samples": len(self.data), "batch_size": len(batches[-1]),
            "deployed_return": self.deployed["mean"], "deployed_episodes": self.deployed["episodes"],
            "eval_return": float(last["episode_mean"]), "final_return": final["mean"],
            "final_return_stderr": final["stderr"], "final_episodes": FINAL_EPISODES, "best_return": self.best_return,
            "model_val_loss": self.learner.model_val_loss, "bc_loss": self.learner.bc_loss,
            "bc_return": self.bc_return, "time_collect": t_collect, **self._phase_times,
            "time_total": time.time() - t0, "peak_rss_mb": peak_mb})
        self._say(f"deployment {d}: {len(self.data)} real samples, deployed policy {self.deployed['mean']:.1f}, "
                  f"after training {float(last['episode_mean']):.1f}; {FINAL_EPISODES} episodes: {final['mean']:.1f} "
                  f"± {final['stderr']:.1f} (best so far {self.best_return:.1f})")
        return True

    def _plot(self) -> None:
        """deployments.png: evaluation return against deployments and against real samples."""
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.deploy_log.rows()
        if not rows:
            return
        d = [int(r["deployment"]) for r in rows]
        samples = [float(r["real_samples"]) for r in rows]
        ev = [float(r["final_return"]) for r in rows]
        dep = [float(r["deployed_return"]) for r in rows]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, x, label in ((axes[0], d, "deployment"), (axes[1], samples, "real samples")):
            ax.plot(x, ev, "o-", label=f"after training ({FINAL_EPISODES} deterministic episodes)")
            ax.plot(x, dep, "s--", alpha=0.7, label="batch collected at this deployment (previous policy + noise; 0: random)")
            ax.set_xlabel(label)
            ax.set_ylabel("return")
            ax.grid(alpha=0.3)
        axes[0].set_xticks(d)
        axes[1].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
        fig.suptitle(f"{self.exp.flags['algorithm']} recursive on {self.exp.task}, seed {self.exp.seed}")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.savefig(self.dir / "deployments.png", dpi=90)
        plt.close(fig)

    def summary_extra(self) -> dict:
        return {"script": "recursive", "deployments": self.deployments, "batch_size": self.batch_size,
                "real_samples": len(self.data),
                "deployment_returns": [float(r["final_return"]) for r in self.deploy_log.rows()]}


def deployment_table(summaries: list[dict]) -> str:
    """Evaluation return after each deployment, one line per run."""
    if not summaries:
        return ""
    n = max(len(s["deployment_returns"]) for s in summaries)
    head = f"{'task':<14}{'algorithm':<10}{'seed':>5}" + "".join(f"{'dep ' + str(d):>10}" for d in range(n))
    lines = [head]
    for s in summaries:
        lines.append(f"{s['task']:<14}{s['algorithm']:<10}{s['seed']:>5}"
                     + "".join(f"{r:>10.1f}" for r in s["deployment_returns"]))
    return "\n".join(lines)
