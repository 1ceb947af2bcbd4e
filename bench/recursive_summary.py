"""Recursive runs side by side: return after each deployment, mean ± standard error over seeds, per task and
algorithm, and the per-deployment wall time split and peak memory.

Reads ``<root>/<task>/<algorithm>/seed<S>/deployments.csv`` (the layout bench/recursive_queue.sh writes); the
return is ``final_return``, the 10-episode evaluation every deployment ends with (env seeds shared by every
run). Where the run's progress.csv is there too (model-based learners), it adds per deployment the TRPO
iterations, the KL to BC (``behavior_policy_kl_mean``) and the imagined return of the deployment's last outer
iteration that ran TRPO. Writes ``--out`` (JSON), ``--plot`` (PNG: one panel per task and batch size, return
against deployment) and, with ``--markdown``, one table per task and algorithm: per deployment the return, TRPO
iterations run in it, KL to BC, imagined return and the wall time split (means over seeds).
Run: ``python bench/recursive_summary.py log/recursive``, or several roots, each named:
``python bench/recursive_summary.py cpu500=bench/results/recursive_cpu it2000=bench/results/deployment_study/it2000``
(the curves are then named ``PLAN/algorithm``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

PHASES = ("time_collect", "time_model", "time_bc", "time_trpo", "time_train", "time_eval", "time_total")


END_OF_DEPLOYMENT = {"trpo_iterations": "trpo_iterations", "kl_to_bc": "behavior_policy_kl_mean",
                     "imagined_return": "imagined_return"}


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def read_runs(root: Path, label: str = "", out: dict | None = None) -> dict:
    """{task: {algorithm: {seed: [deployment rows]}}} of every finished deployment; each row also holds the
    last progress.csv row of its deployment (``progress_*`` keys) where the run has one."""
    out = {} if out is None else out
    for path in sorted(Path(root).glob("*/*/seed*/deployments.csv")):
        seed_dir = path.parent
        task, algorithm, seed = seed_dir.parent.parent.name, seed_dir.parent.name, int(seed_dir.name[4:])
        rows = read_csv(path)
        progress = read_csv(seed_dir / "progress.csv") if (seed_dir / "progress.csv").is_file() else []
        for row in rows:
            mine = [r for r in progress if r.get("deployment") == row["deployment"]]
            if mine:
                row.update({f"progress_{k}": last_number(mine, v) for k, v in END_OF_DEPLOYMENT.items()})
        if rows:
            out.setdefault(task, {}).setdefault(f"{label}/{algorithm}" if label else algorithm, {})[seed] = rows
    return out


def last_number(rows: list[dict], key: str) -> str:
    """The last finite value of ``key`` in ``rows``: outer iterations after a policy-validation stop run no TRPO
    and log it empty or nan, so a deployment's end is its last outer iteration that ran TRPO."""
    for r in reversed(rows):
        v = r.get(key, "")
        if v not in ("", None) and np.isfinite(float(v)):
            return v
    return ""


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
                **{f"{k}_at_deployment_end": [mean_of(seeds, d, f"progress_{k}") for d in range(n_dep)]
                   for k in END_OF_DEPLOYMENT},
            }
    return res


def mean_of(seeds: dict, d: int, key: str):
    """The mean over seeds of deployment ``d``'s ``key``, or None where a run has no such value."""
    vals = [r[d].get(key, "") for r in seeds.values()]
    return None if any(v in ("", None) for v in vals) else round(float(np.mean([float(v) for v in vals])), 4)


def _cell(v, digits: int = 0) -> str:
    return "" if v is None else f"{v:.{digits}f}".replace("-", "\u2212")


def markdown(res: dict, command: str) -> str:
    """Per-deployment tables of ``summarize``'s result: a phase a learner does not have shows 0 (``summarize``
    counts it so), a column its runs never logged is left empty."""
    out = ["# Recursive runs, deployment by deployment", "",
           f"Generated by `{command}`. Return: the 10-episode evaluation after the deployment (mean \u00b1 "
           "standard error over seeds); TRPO iterations run in the deployment, KL to BC and imagined return at its "
           "last outer iteration that ran TRPO; seconds per phase, means over seeds (a resumed deployment's phases "
           "before its checkpoint count 0).", ""]
    for task, algs in sorted(res.items()):
        for algorithm, r in sorted(algs.items()):
            out += [f"## {task} {algorithm} ({len(r['seeds'])} seed{'s' if len(r['seeds']) > 1 else ''}: "
                    f"{', '.join(map(str, r['seeds']))})", "",
                    "| deployment | real steps | return | TRPO iterations | KL to BC | imagined return | collect s | "
                    "model s | BC s | TRPO / train s | eval s | total s |", "|" + "---|" * 12]
            its = r["trpo_iterations_at_deployment_end"]
            t = r["seconds_mean"]
            for d, ret in enumerate(r["return_mean"]):
                se = r["return_stderr"][d]
                n_it = None if its[d] is None else its[d] - (its[d - 1] if d else 0)
                phase = lambda k: t[k][d] if k in t else None  # noqa: E731
                train = phase("time_trpo") or phase("time_train")  # TRPO for model-based learners, else the updates
                row = [str(d + 1), str(r["real_samples"][d]), _cell(ret) + ("" if se is None else f" \u00b1 {se:.0f}"),
                       _cell(n_it), _cell(r["kl_to_bc_at_deployment_end"][d], 1),
                       _cell(r["imagined_return_at_deployment_end"][d])] + \
                      [_cell(phase(k)) for k in ("time_collect", "time_model", "time_bc")] + [_cell(train)] + \
                      [_cell(phase(k)) for k in ("time_eval", "time_total")]
                out.append("| " + " | ".join(row) + " |")
            out.append("")
    return "\n".join(out)


def plot_panels(res: dict) -> dict:
    """{(task, real steps per deployment): {curve: summary}}: runs of 20k and 100k real steps a deployment are
    not drawn on one x-axis."""
    panels: dict = {}
    for task, algs in sorted(res.items()):
        for algorithm, r in sorted(algs.items()):
            panels.setdefault((task, r["real_samples"][0]), {})[algorithm] = r
    return panels


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = plot_panels(res)
    crowded = max(len(algs) for algs in panels.values()) > 8  # then each legend goes under its panel
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 6.4 if crowded else 4.4), squeeze=False)
    names = sorted({a for algs in res.values() for a in algs})
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colors = {a: cmap(i % cmap.N) for i, a in enumerate(names)}
    for ax, ((task, batch), algs) in zip(axes[0], sorted(panels.items())):
        longest = max(len(r["return_mean"]) for r in algs.values())
        for algorithm, r in algs.items():
            d = np.arange(1, len(r["return_mean"]) + 1)  # deployments done
            m = np.array(r["return_mean"])
            se = np.array([0.0 if v is None else v for v in r["return_stderr"]])
            model_based = algorithm.split("/")[-1] in ("bremen", "me_trpo", "mopo", "morel")
            ax.plot(d, m, "o-" if model_based else "s--", color=colors[algorithm], alpha=1.0 if model_based else 0.8,
                    label=f"{algorithm} ({len(r['seeds'])} seed{'s' if len(r['seeds']) > 1 else ''})")
            ax.fill_between(d, m - se, m + se, color=colors[algorithm], alpha=0.2 if model_based else 0.1)
        ax.set_xticks(np.arange(1, longest + 1))
        ax.set_title(f"{task}: return after each deployment")
        ax.set_xlabel(f"deployments ({batch // 1000}k real steps each)")
        ax.set_ylabel("return (10 episodes)")
        ax.grid(alpha=0.3)
        if crowded:
            ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
        else:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("roots", nargs="+", help="ROOT, or LABEL=ROOT (several)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "recursive_cpu_summary.json")
    p.add_argument("--plot", type=Path, default=None, help="the plot (default: --out's path with .png)")
    p.add_argument("--markdown", type=Path, default=None, help="also write the per-deployment tables here")
    args = p.parse_args()
    runs: dict = {}
    for root in args.roots:
        label, _, path = root.rpartition("=")
        read_runs(Path(path), label, runs)
    res = summarize(runs)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    plot_path = args.plot or args.out.with_suffix(".png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot(res, plot_path)
    if args.markdown:
        args.markdown.write_text(markdown(res, "python bench/recursive_summary.py " + " ".join(sys.argv[1:])) + "\n")
    for task, algs in res.items():
        for algorithm, r in algs.items():
            print(task, algorithm, "seeds", r["seeds"], "return", r["return_mean"], "±", r["return_stderr"])


if __name__ == "__main__":
    main()
