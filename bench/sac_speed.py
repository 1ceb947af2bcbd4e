"""SAC update throughput on this machine (BRAC sizes: Q 2x300-300, actor 200-200, batch 256, hopper dims).

Measures updates/s of K updates per compiled call from a filled 100k-row replay buffer, two ways, A/B
interleaved: ``device`` is what the package does (bremen.algos.agent.update_many: minibatch indices drawn
and rows gathered inside the compiled call from the device-resident buffer, bremen.algos.replay);
``host`` draws the indices with NumPy, gathers the K stacked minibatches on the host and passes them in
(the shape of the earlier dict-batch SAC). Writes the medians to bench/results/sac_speed.json.
Run: ``python bench/sac_speed.py`` (``taskset -c 0`` to measure one core).
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
from bremen.algos.agent import Batch, Spec, update_many
from bremen.algos.replay import ReplayBuffer
from bremen.algos.sac import SAC, SACConfig


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
    sac = SAC(Spec.of(args.obs_dim, args.act_dim, -1.0, 1.0), cfg)
    n = 100_000
    rb = ReplayBuffer(args.obs_dim, args.act_dim, n)
    rng = np.random.default_rng(0)
    rb.add(rng.normal(size=(n, args.obs_dim)), rng.uniform(-1, 1, (n, args.act_dim)), rng.normal(size=n),
           rng.normal(size=(n, args.obs_dim)), rng.random(n) < 0.01)
    host = {f: np.asarray(getattr(rb.data, f)) for f in Batch._fields}
    scan = jax.jit(lambda st, batches: jax.lax.scan(sac.update, st, batches))
    holder = {"state": sac.init(jax.random.PRNGKey(0))}

    def device(k):
        sizes = np.full(k, n, np.int32)
        holder["state"], info = update_many(sac, holder["state"], rb.data, k, cfg.batch_size, sizes)
        jax.block_until_ready(info)

    def on_host(k):
        idx = rng.integers(0, n, (k, cfg.batch_size))
        holder["state"], info = scan(holder["state"], Batch(**{f: host[f][idx] for f in Batch._fields}))
        jax.block_until_ready(info)

    results = {}
    for k in (1, 10, 50, 100, 500):
        calls = max(1, args.updates // k)
        for _ in range(2):  # A/B/A/B: each way measured twice, interleaved, the better kept
            for name, fn in (("device", device), ("host", on_host)):
                sec = measure(lambda fn=fn: fn(k), calls, args.repeats)
                key = f"{name}_k{k}"
                results[key] = max(results.get(key, 0.0), calls * k / sec)
    ratios = {f"k{k}": round(results[f"device_k{k}"] / results[f"host_k{k}"], 3) for k in (1, 10, 50, 100, 500)}
    out = {
        "what": "SAC updates/s (Q 2x300-300, actor 200-200, batch 256), K updates per compiled call, minibatches "
                "drawn on the device (the package) or on the host (NumPy), A/B interleaved, best of 2",
        "obs_dim": args.obs_dim,
        "act_dim": args.act_dim,
        "updates_per_s": {k: round(v, 1) for k, v in results.items()},
        "device_over_host": ratios,
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
