"""Table of BREMEN offline runs: behavior data vs BC vs BREMEN (final and best), per seed and mean.

Usage: python bench/summarize_runs.py RUN_ROOT [--out FILE.json] [--episodes N]
Reads every RUN_ROOT/**/summary.json written by offline.py. The in-run figures average the original's
evaluation budget (>= 3000 real steps: 3 episodes of half_cheetah, ~8-10 of hopper). With --episodes N the
exported policy_bc/, policy_final/ and policy_best/ of every run are also re-evaluated over N full episodes
on env seeds shared by all policies (`bremen evaluate`), which separates methods far more sharply.
"""

import argparse
import json
from pathlib import Path

import numpy as np

KEYS = ("behavior_return", "bc_return", "final_return", "best_return")


def _current_keys(summary: dict) -> dict:
    """Summaries written before 2026-12 named the returns bremen_final_return etc. for every algorithm."""
    return {k.removeprefix("bremen_"): v for k, v in summary.items()}


def reeval(entry: dict, runs: list, episodes: int) -> None:
    """Add every run's N-episode returns of policy_bc / policy_final / policy_best (those that exist)."""
    from bremen.loops.evaluation import evaluate_policy
    from bremen.io.policy_io import load_policy
    from bremen.tasks import make

    per_kind = {}
    for r, row in zip(runs, entry["runs"]):
        for kind in ("bc", "final", "best"):
            path = Path(r["path"]) / f"policy_{kind}"
            if (path / "policy.json").is_file():
                res = evaluate_policy(load_policy(path), make(r["task"]), episodes, seed=0)
                row[f"{kind}_{episodes}ep"] = {k: res[k] for k in ("mean", "stderr", "std", "mean_length")}
                per_kind.setdefault(kind, []).append(res)
    entry["reevaluated"] = {kind: {"mean": float(np.mean([x["mean"] for x in v])),
                                   "stderr": float(np.mean([x["stderr"] for x in v])), "runs": len(v)}
                            for kind, v in per_kind.items() if len(v) == len(runs)}
    entry["reevaluated"]["episodes"] = episodes


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--out")
    p.add_argument("--episodes", type=int, default=0, help="re-evaluate the exported policies over N episodes")
    args = p.parse_args()
    runs = [_current_keys(json.loads(f.read_text())) | {"path": str(f.parent)}
            for f in sorted(Path(args.root).rglob("summary.json"))]
    groups = {}
    for r in runs:
        groups.setdefault(str(Path(r["path"]).parent), []).append(r)
    out = {}
    for group, rs in groups.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in KEYS}
        m["final_over_bc"] = m["final_return"] / m["bc_return"]
        m["best_over_bc"] = m["best_return"] / m["bc_return"]
        out[group] = {"seeds": [r["seed"] for r in rs], "runs": [{k: r[k] for k in ("seed", *KEYS)} for r in rs],
                      "mean": m}
        if args.episodes:
            reeval(out[group], rs, args.episodes)
        print(f"{group}  (seeds {', '.join(str(r['seed']) for r in rs)})")
        print(f"  {'seed':>6}{'behavior':>10}{'BC':>9}{'final':>9}{'best':>9}")
        for r in rs:
            print(f"  {r['seed']:>6}" + "".join(f"{r[k]:>9.1f}" if i else f"{r[k]:>10.1f}" for i, k in enumerate(KEYS)))
        print(f"  {'mean':>6}{m['behavior_return']:>10.1f}{m['bc_return']:>9.1f}{m['final_return']:>9.1f}"
              f"{m['best_return']:>9.1f}   final/BC {m['final_over_bc']:.3f}, best/BC {m['best_over_bc']:.3f}")
        if args.episodes:
            e = out[group]["reevaluated"]
            print(f"  re-evaluated over {args.episodes} episodes each (mean of seeds ± mean s.e.): "
                  + ", ".join(f"{k} {e[k]['mean']:.1f} ± {e[k]['stderr']:.1f}" for k in ("bc", "final", "best") if k in e)
                  + (f"   final/BC {e['final']['mean'] / e['bc']['mean']:.3f}, best/BC {e['best']['mean'] / e['bc']['mean']:.3f}"
                     if "bc" in e else ""))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
