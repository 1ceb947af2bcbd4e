"""Table of BREMEN offline runs: behavior data vs BC vs BREMEN (final and best), per seed and mean.

Usage: python bench/summarize_runs.py RUN_ROOT [--out FILE.json]
Reads every RUN_ROOT/**/summary.json written by offline.py.
"""

import argparse
import json
from pathlib import Path

import numpy as np

KEYS = ("behavior_return", "bc_return", "bremen_final_return", "bremen_best_return")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--out")
    args = p.parse_args()
    runs = [json.loads(f.read_text()) | {"path": str(f.parent)} for f in sorted(Path(args.root).rglob("summary.json"))]
    groups = {}
    for r in runs:
        groups.setdefault(str(Path(r["path"]).parent), []).append(r)
    out = {}
    for group, rs in groups.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in KEYS}
        m["final_over_bc"] = m["bremen_final_return"] / m["bc_return"]
        m["best_over_bc"] = m["bremen_best_return"] / m["bc_return"]
        out[group] = {"seeds": [r["seed"] for r in rs], "runs": [{k: r[k] for k in ("seed", *KEYS)} for r in rs],
                      "mean": m}
        print(f"{group}  (seeds {', '.join(str(r['seed']) for r in rs)})")
        print(f"  {'seed':>6}{'behavior':>10}{'BC':>9}{'final':>9}{'best':>9}")
        for r in rs:
            print(f"  {r['seed']:>6}" + "".join(f"{r[k]:>9.1f}" if i else f"{r[k]:>10.1f}" for i, k in enumerate(KEYS)))
        print(f"  {'mean':>6}{m['behavior_return']:>10.1f}{m['bc_return']:>9.1f}{m['bremen_final_return']:>9.1f}"
              f"{m['bremen_best_return']:>9.1f}   final/BC {m['final_over_bc']:.3f}, best/BC {m['best_over_bc']:.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
