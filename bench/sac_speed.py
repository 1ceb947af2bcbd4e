"""SAC update throughput on this machine (BRAC sizes: Q 2x300-300, actor 200-200, batch 256, hopper dims).

Measures updates/s for one jitted update per call and for K updates per call (``update_many``, lax.scan),
including the NumPy minibatch sampling from a filled replay buffer, and writes the medians to
bench/results/sac_speed.json. Run: ``python bench/sac_speed.py`` (``taskset -c 0`` to measure one core).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from bremen import __version__
from bremen.algos.sac import SAC, SACConfig
from bremen.data.replay import ReplayBuffer


def measure(fn, n_calls: int, repeats: int) -> float:
    """Median seconds of ``n_calls`` calls of fn over ``repeats`` timed runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_calls):
            fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--obs-dim", type=int, default=11)
    p.add_argument("--act-dim", type=int, default=3)
    p.add_argument("--updates", type=int, default=1000, help="updates per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "sac_speed.json"))
    args = p.parse_args()

    load_before = os.getloadavg()
    cfg = SACConfig()
    sac = SAC(args.obs_dim, args.act_dim, -1.0, 1.0, cfg)
    rb = ReplayBuffer(args.obs_dim, args.act_dim, 100_000)
    rng = np.random.default_rng(0)
    for _ in range(100_000):
        rb.add(rng.normal(size=args.obs_dim), rng.uniform(-1, 1, args.act_dim), rng.normal(),
               rng.normal(size=args.obs_dim), rng.random() < 0.01, False)
    holder = {"state": sac.init(jax.random.PRNGKey(0))}

    def one():
        holder["state"], info = sac.update(holder["state"], rb.sample(rng, cfg.batch_size))
        jax.block_until_ready(info)

    results = {}
    sec = measure(one, args.updates, args.repeats)
    results["update_k1"] = args.updates / sec
    for k in (10, 50, 100, 500):
        def many(k=k):
            holder["state"], info = sac.update_many(holder["state"], rb.sample(rng, cfg.batch_size, k))
            jax.block_until_ready(info)

        sec = measure(many, max(1, args.updates // k), args.repeats)
        results[f"update_many_k{k}"] = (max(1, args.updates // k) * k) / sec
    sample_sec = measure(lambda: rb.sample(rng, cfg.batch_size, 100), 10, args.repeats)
    out = {
        "what": "SAC updates/s (Q 2x300-300, actor 200-200, batch 256), incl. NumPy minibatch sampling",
        "obs_dim": args.obs_dim,
        "act_dim": args.act_dim,
        "updates_per_s": {k: round(v, 1) for k, v in results.items()},
        "numpy_sampling_us_per_batch": round(sample_sec / 1000 * 1e6, 1),
        "affinity_cores": len(os.sched_getaffinity(0)),
        "load_average_1_5_15min_before": [round(x, 2) for x in load_before],
        "note": "the machine is shared: other processes' load (see load average) lowers these numbers",
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "bremen": __version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, path)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
