"""Recursive runs side by side: return after each deployment, mean ± standard error over seeds, per task and
algorithm, and the per-deployment wall time split and peak memory.

Reads ``<root>/<task>/<algorithm>/seed<S>/deployments.csv`` (the layout bench/recursive_queue.sh writes); the
return is ``final_return``, the 10-episode evaluation every deployment ends with (env seeds shared by every
run). Writes ``--out`` (JSON) and ``--plot`` (PNG: one panel per task, return against deployment).
Run: ``python bench/recursive_summary.py log/recursive``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

PHASES = ("time_collect", "time_model", "time_bc", "time_trpo", "time_train", "time_eval", "time_total")


def read_runs(root: Path) -> dict:
    """{task: {algorithm: {seed: [deployment rows]}}} of every finished deployment."""
    out: dict = {}
    for path in sorted(root.glob("*/*/seed*/deployments.csv")):
        seed_dir = path.parent
        task, algorithm, seed = seed_dir.parent.parent.name, seed_dir.parent.name, int(seed_dir.name[4:])
        with open(path) as f:
            rows = list(csv.DictReader(f))
        if rows:
            out.setdefault(task, {}).setdefault(algorithm, {})[seed] = rows
    return out


def summarize(runs: dict) -> dict:
    res: dict = {}
    for task, algs in runs.items():
        for algorithm, seeds in algs.items():
            n_dep = min(len(r) for r in seeds.values())
            ret = np.array([[float(r[d]["final_return"]) for d in range(n_dep)] for r in seeds.values()])
            se = ret.std(axis=0, ddof=1) / np.sqrt(len(ret)) if len(ret) > 1 else np.full(n_dep, np.nan)
            num = lambda v: float(v) if v not in ("", None) else 0.0  # a phase a learner does not have  # noqa: E731
            times = {k: [float(np.mean([num(r[d][k]) for r in seeds.values()])) for d in range(n_dep)]
                     for k in PHASES if k in next(iter(seeds.values()))[0]}
            res.setdefault(task, {})[algorithm] = {
                "seeds": sorted(seeds), "complete": [len(r) for r in seeds.values()],
                "real_samples": [int(float(next(iter(seeds.values()))[d]["real_samples"])) for d in range(n_dep)],
                "return_mean": ret.mean(axis=0).round(1).tolist(), "return_stderr": [None if np.isnan(v) else round(float(v), 1) for v in se],
                "return_per_seed": {s: ret[i].round(1).tolist() for i, s in enumerate(seeds)},
                "seconds_mean": {k: np.round(v, 1).tolist() for k, v in times.items()},
                "peak_rss_mb": max(float(r[-1]["peak_rss_mb"]) for r in seeds.values()),
            }
    return res


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(res), figsize=(5 * len(res), 3.8), squeeze=False)
    colors = {a: f"C{i}" for i, a in enumerate(sorted({a for algs in res.values() for a in algs}))}
    for ax, (task, algs) in zip(axes[0], sorted(res.items())):
        for algorithm, r in sorted(algs.items()):
            d = np.arange(len(r["return_mean"]))
            m = np.array(r["return_mean"])
            se = np.array([0.0 if v is None else v for v in r["return_stderr"]])
            ax.plot(d, m, "o-", color=colors[algorithm],
                    label=f"{algorithm} ({len(r['seeds'])} seed{'s' if len(r['seeds']) > 1 else ''})")
            ax.fill_between(d, m - se, m + se, color=colors[algorithm], alpha=0.25)
        ax.set_xticks(d)
        ax.set_title(f"{task}: return after each deployment")
        ax.set_xlabel(f"deployment ({r['real_samples'][0] // 1000}k real steps each)")
        ax.set_ylabel("return (10 episodes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "recursive_cpu_summary.json")
    p.add_argument("--plot", type=Path, default=Path(__file__).parent.parent / "docs" / "recursive" / "cpu_summary.png")
    args = p.parse_args()
    res = summarize(read_runs(args.root))
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(res, args.plot)
    for task, algs in res.items():
        for algorithm, r in algs.items():
            print(task, algorithm, "seeds", r["seeds"], "return", r["return_mean"], "±", r["return_stderr"])


if __name__ == "__main__":
    main()
