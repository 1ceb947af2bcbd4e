"""Average episode return of each noise dataset, per task, collected with the shipped behavior policies.

Usage: python bench/noise_datasets.py [--tasks hopper ...] [--noises pure ...] [--n 100000] [--seed 0]
       ->  data/<task>/<noise>.h5 (the default dataset locations of offline.py; existing files are reused)
       ->  bench/results/noise_datasets.json (the table of docs/datasets.md)

Each dataset is what `bremen collect --task T --noise X --n N --seed S --out data/T/X.h5` writes. Returns are
undiscounted sums over complete episodes (ended by a terminal or at the 1000-step limit), the same definition
as the "behavior data" return that offline.py reports; `all_episodes_mean` also counts the episodes cut by
a block boundary or by the end of the data (what `bremen dataset info` prints).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import bremen.tasks as T
from bremen.data import load_dataset
from bremen.data.collect import NOISES, default_policy_path, run_collect
from bremen.io.policy_io import load_policy
from bremen.evaluation import dataset_return


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=T.names())
    p.add_argument("--noises", nargs="+", default=list(NOISES))
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_dir", default="data")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "noise_datasets.json"))
    args = p.parse_args()
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    for task in args.tasks:
        policy_dir = default_policy_path(task)
        if not policy_dir.is_dir():
            print(f"{task}: no shipped policy at {policy_dir}, skipped", flush=True)
            continue
        meta = load_policy(policy_dir).metadata
        entry = results.setdefault(task, {})
        entry["policy_return"] = meta["return"]["mean"]
        entry["policy_env_steps"] = meta["return"].get("measured_at_env_step")
        for noise in args.noises:
            path = Path(args.data_dir) / task / f"{noise}.h5"
            seconds = entry.get(noise, {}).get("collect_seconds")  # kept from the run that collected it
            if not path.is_file():
                t0 = time.perf_counter()
                run_collect(task, noise, args.n, path, seed=args.seed, progress=False)
                seconds = round(time.perf_counter() - t0, 1)
            ds = load_dataset(str(path), task)
            if len(ds) != args.n or ds.metadata.get("seed") != args.seed:
                raise SystemExit(f"{path}: holds {len(ds)} transitions with seed {ds.metadata.get('seed')}, "
                                 f"not {args.n} with seed {args.seed}; move it away and run again")
            horizon = T.make(task).horizon
            ret = dataset_return(ds, horizon)
            entry[noise] = {"complete_episodes_mean": ret["mean"], "complete_episodes": ret["episodes"],
                            "blocks": block_returns(ds, horizon),
                            "all_episodes_mean": float(np.mean(ds.episode_returns())),
                            "reward_per_step": float(ds.rewards.mean()), "n": len(ds),
                            "collect_seconds": seconds, "path": str(path)}
            print(task, noise, entry[noise], flush=True)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def block_returns(ds, horizon: int) -> dict:
    """Mean return of the complete episodes inside each collection block (random / pure / noisy part)."""
    ends = ds.episode_ends()
    starts = np.concatenate([[0], ends[:-1] + 1])
    rets = ds.episode_returns()
    complete = ds.terminals[ends] | (ends - starts + 1 == horizon)
    out = {}
    for b in ds.metadata["blocks"]:
        inside = (starts >= b["start"]) & (ends < b["stop"]) & complete
        out[b["name"]] = {"mean": float(rets[inside].mean()) if inside.any() else None,
                          "episodes": int(inside.sum()), "rows": b["stop"] - b["start"]}
    return out


def markdown(results: dict) -> str:
    """The docs/datasets.md table: policy return, then each dataset's complete-episode mean (episodes)."""
    noises = list(NOISES)
    lines = ["| task | behavior policy | " + " | ".join(noises) + " |", "| --- " * (len(noises) + 2) + "|"]
    for task, entry in results.items():
        cells = [f"{entry[n]['complete_episodes_mean']:.1f} ({entry[n]['complete_episodes']})" if n in entry else "—"
                 for n in noises]
        lines.append(f"| {task} | {entry['policy_return']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "| task | noise | " + " | ".join(["block", "rows", "mean return (episodes)"] * 3) + " |",
              "| --- " * 11 + "|"]
    for task, entry in results.items():
        for n in noises:
            if n not in entry or len(entry[n]["blocks"]) < 2:
                continue
            cells = [f"{name} | {b['rows']} | {b['mean']:.1f} ({b['episodes']})" for name, b in entry[n]["blocks"].items()]
            lines.append(f"| {task} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
