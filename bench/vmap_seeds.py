"""Three seeds of a model-free baseline as one vmapped program against three sequential runs (``--vmap_seeds``).

    .venv/bin/python bench/vmap_seeds.py [--algorithms bc bcq bear brac_primal brac_dual] [--rounds 3]

One random dataset at half_cheetah's sizes (obs 17, act 6, 100k transitions, fixed seed) on the device. For each
algorithm, its ``cpu`` preset config (the sizes offline.py --preset cpu trains) and, per round, in alternating
order:

(a) sequential: for each of 3 seeds, ``update_many(agent, state_seed, data, n, batch)`` (what three runs
    without --vmap_seeds do, one after another);
(b) vmapped: ``update_many_seeds(agent, stacked_states, data, n, batch, shared_data=True)`` (one call for all
    three seeds, what --vmap_seeds does).

Each side is compiled before timing and every timed call ends with ``jax.block_until_ready``. Throughput is seed-
updates per second (3·n per side and round); the ratio is vmapped over sequential, the median over rounds.
BRAC's updates are timed after its behavior-cloning phase (the state's step counter set past it).

To say how far from the machine's limit the updates run, each algorithm also gets its matrix-product FLOPs per
update (``dot_flops`` of bench/baselines_vs_d3rlpy.py, 2·m·n·k per dot of the compiled update's jaxpr) and the
achieved GFLOP/s of both sides, and the run ends with the rate of plain chained matmuls (+ReLU) at these
networks' shapes: updates already near that rate cannot get much faster by stacking seeds on 2 cores. Output:
``bench/results/vmap_seeds.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos import registry
from bremen.algos.agent import Spec, batch_from_arrays, update_many
from bremen.learners.actor_critic import update_many_seeds

from baselines_vs_d3rlpy import dot_flops

OUT = Path(__file__).resolve().parent / "results" / "vmap_seeds.json"
OBS_DIM, ACT_DIM, N, SEEDS = 17, 6, 100_000, 3
TARGET = 1.5


def dataset():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(N, OBS_DIM)).astype(np.float32)
    return batch_from_arrays(obs, rng.uniform(-1, 1, (N, ACT_DIM)), rng.normal(size=N),
                             obs + 0.1 * rng.normal(size=(N, OBS_DIM)).astype(np.float32),
                             (rng.random(N) < 1e-3).astype(np.float32))


def timed(fn) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def matmul_rates(repeats: int = 200) -> dict:
    """GFLOP/s of ``repeats`` chained ``relu(x @ w) + x`` at batch × width shapes of the cpu presets' networks
    (BC 256 × 200, BCQ 100 × 256, BEAR and BRAC 256 × 64 and 128; and 3× the rows), and of the batched product
    that vmap makes of three seeds' layers ([3, m, k] × [3, k, k]), the best of 3 timings."""
    rates = {}
    for m, k in [(256, 64), (768, 64), (256, 128), (256, 200), (768, 200), (100, 256), (300, 256)]:
        x, w = jnp.full((m, k), 0.01), jnp.full((k, k), 0.001)
        f = jax.jit(lambda x, w: jax.lax.fori_loop(0, repeats, lambda i, y: jnp.maximum(y @ w, 0.0) + x, x))
        jax.block_until_ready(f(x, w))
        best = min(timed(lambda: f(x, w)) for _ in range(3))
        rates[f"{m}x{k}x{k}"] = 2 * m * k * k * repeats / best / 1e9
        print(f"matmul {m}x{k}x{k} (+relu): {rates[f'{m}x{k}x{k}']:.0f} GFLOP/s", flush=True)
    for m, k in [(256, 64), (256, 200), (100, 256)]:  # what vmap makes of 3 seeds' products: a batched dot
        x, w = jnp.full((SEEDS, m, k), 0.01), jnp.full((SEEDS, k, k), 0.001)
        f = jax.jit(lambda x, w: jax.lax.fori_loop(
            0, repeats, lambda i, y: jnp.maximum(jnp.einsum("smk,skn->smn", y, w), 0.0) + x, x))
        jax.block_until_ready(f(x, w))
        best = min(timed(lambda: f(x, w)) for _ in range(3))
        key = f"{SEEDS} seeds batched {m}x{k}x{k}"
        rates[key] = SEEDS * 2 * m * k * k * repeats / best / 1e9
        print(f"matmul {key} (+relu): {rates[key]:.0f} GFLOP/s", flush=True)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--algorithms", nargs="+", default=["bc", "bcq", "bear", "brac_primal", "brac_dual"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--updates", type=int, default=500, help="updates per seed per timed call")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    spec = Spec.of(OBS_DIM, ACT_DIM, -1.0, 1.0)
    data = dataset()
    results = {}
    for name in args.algorithms:
        cfg = registry.agent_config(name, "cpu")
        agent = registry.make_agent(name, spec, cfg)
        states = [agent.init(jax.random.PRNGKey(s)) for s in range(SEEDS)]
        skip = getattr(cfg, "behavior_steps", 0)
        states = [s._replace(step=jnp.asarray(skip, s.step.dtype)) for s in states]
        stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)
        n, b = args.updates, cfg.batch_size
        seq = lambda: [update_many(agent, s, data, n, b) for s in states]
        vm = lambda: update_many_seeds(agent, stacked, data, n, b, True)
        t_compile = {"sequential": timed(seq), "vmapped": timed(vm)}
        rounds = []
        for r in range(args.rounds):
            order = ("sequential", "vmapped") if r % 2 == 0 else ("vmapped", "sequential")
            t = {k: timed(seq if k == "sequential" else vm) for k in order}
            rounds.append({k: SEEDS * n / v for k, v in t.items()})
            print(f"{name} round {r}: sequential {rounds[-1]['sequential']:.0f}, vmapped {rounds[-1]['vmapped']:.0f} "
                  f"seed-updates/s", flush=True)
        ratio = statistics.median(x["vmapped"] / x["sequential"] for x in rounds)
        flops = dot_flops(jax.make_jaxpr(lambda s: update_many(agent, s, data, n, b))(states[0]).jaxpr) / n
        results[name] = {"batch_size": b, "updates_per_call": n, "compile_s": t_compile, "rounds": rounds,
                         "sequential_median": statistics.median(x["sequential"] for x in rounds),
                         "vmapped_median": statistics.median(x["vmapped"] for x in rounds),
                         "ratio_median": ratio, "target": TARGET, "met": ratio >= TARGET,
                         "matmul_mflop_per_update": flops / 1e6}
        for side in ("sequential", "vmapped"):
            results[name][f"{side}_gflop_per_s"] = flops * results[name][f"{side}_median"] / 1e9
        print(f"{name}: vmapped / sequential = {ratio:.2f} (target {TARGET}); {flops / 1e6:.0f} MFLOP/update, "
              f"{results[name]['sequential_gflop_per_s']:.0f} / {results[name]['vmapped_gflop_per_s']:.0f} GFLOP/s",
              flush=True)
    reference = matmul_rates()
    out = {"what": "3 seeds vmapped vs 3 sequential runs, cpu-preset configs, seed-updates per second",
           "seeds": SEEDS, "dataset": {"obs_dim": OBS_DIM, "act_dim": ACT_DIM, "transitions": N},
           "jax": jax.__version__, "platform": platform.platform(), "cpus": os.cpu_count(),
           "load_average_at_end": os.getloadavg(), "results": results,
           "matmul_reference_gflop_per_s": reference}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
