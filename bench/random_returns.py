"""Mean return of uniform random actions per built-in task (the reference for normalized scores).

Usage: python bench/random_returns.py [--episodes 50]  ->  bench/results/random_returns.json
Episode i uses env seed i and action seed i; episodes run to termination or the 1000-step limit.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import bremen.tasks as T


def random_return(task, episodes: int) -> dict:
    env = task.make_env()
    returns, lengths = [], []
    for i in range(episodes):
        env.reset(seed=i)
        rng = np.random.default_rng(i)
        ret, t, done = 0.0, 0, False
        while not done:
            _, r, term, trunc, _ = env.step(rng.uniform(-1, 1, task.act_dim).astype(np.float32))
            ret, t, done = ret + r, t + 1, term or trunc
        returns.append(ret)
        lengths.append(t)
    env.close()
    r = np.asarray(returns)
    return {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "max": float(r.max()),
            "episodes": episodes, "mean_length": float(np.mean(lengths))}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "random_returns.json"))
    args = p.parse_args()
    out = {}
    for name in T.names():
        t0 = time.time()
        out[name] = random_return(T.make(name), args.episodes)
        out[name]["seconds"] = round(time.time() - t0, 1)
        print(name, out[name], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
