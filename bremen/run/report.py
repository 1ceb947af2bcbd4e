"""What a run reports: the per-deployment table and plot of a recursive run, the console tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEPLOYMENT_KEYS = ["deployment", "real_samples", "batch_size", "deployed_return", "deployed_episodes",
                   "eval_return", "final_return", "final_return_stderr", "final_episodes", "best_return",
                   "model_val_loss", "bc_loss", "bc_return", "time_collect", "time_model", "time_bc", "time_trpo",
                   "time_train", "time_eval", "time_total", "peak_rss_mb"]  # time_train: a model-free agent's updates
# Every deployment ends with this many deterministic episodes of the trained policy on env seeds shared by
# every run (bremen.evaluation.evaluate_policy with seed 0): final_return in deployments.csv.
FINAL_EPISODES = 10


def plot_deployments(rows: list[dict], path: Path, title: str) -> None:
    """deployments.png: evaluation return against deployments and against real samples."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary_table(summaries: list[dict], label: str) -> str:
    """Behavior data vs BC vs the algorithm's (``label``) final and best returns, one line per seed plus the
    mean."""
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
