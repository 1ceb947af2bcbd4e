"""How far the ensemble fit is from the bare Adam step XLA can do, at paper size, in one process.

Compares, interleaved over ``--rounds`` rounds (the machine's speed drifts by several percent a minute):
``train``: bremen's ``dynamics.train_epochs`` (per-member freeze mask, L2 on the hidden kernels, rows gathered
from a per-member permutation, the epoch inside ``lax.cond``), and ``bare``: the minimum of the same math — a
vmapped 2×1024 ReLU MLP per member, MSE, optax Adam, ``lax.scan`` over the same minibatches, no mask, no L2.
Both do ``--steps`` Adam steps per call with 5 members × batch 1000 (half_cheetah dims). FLOPs count the
forward and backward matrix products (as bench/ensemble_flops.py). If ``bare`` is not clearly faster than
``train``, the gap to the sgemm peak is XLA's, not bremen's. Writes bench/results/fit_ablation.json.
Run: ``python bench/fit_ablation.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ensemble_flops import OBS, ACT, best_time, mlp_flops, peak_gflops
from bremen.models.dynamics import DynamicsConfig, ensemble_init, epoch_orders, train_epochs
from bremen.models.nets import mlp_apply


def bare_epoch(config: DynamicsConfig):
    """One epoch of plain vmapped Adam steps over per-member permutations of the rows."""
    opt = optax.adam(config.lr)
    k, b = config.ensemble_size, config.batch_size

    def loss(params, xb, yb):
        return jnp.sum(jax.vmap(lambda p, u, v: jnp.mean((mlp_apply(p, u) - v) ** 2))(params, xb, yb))

    @jax.jit
    def run(params, opt_state, x, y, key):
        n = x.shape[0] // b
        perm = jax.vmap(lambda kk: jax.random.permutation(kk, x.shape[0]))(jax.random.split(key, k))
        batches = perm[:, : n * b].reshape(k, n, b).transpose(1, 0, 2)

        def step(carry, idx):
            p, s = carry
            updates, s = opt.update(jax.grad(loss)(p, x[idx], y[idx]), s, p)
            return (optax.apply_updates(p, updates), s), None

        return jax.lax.scan(step, (params, opt_state), batches)[0]

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="Adam steps per timed call")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "fit_ablation.json"))
    args = p.parse_args()

    cfg = DynamicsConfig(hidden=1024)
    n = args.steps * cfg.batch_size
    x = jax.random.normal(jax.random.PRNGKey(1), (n, OBS + ACT))
    y = jax.random.normal(jax.random.PRNGKey(2), (n, OBS))
    active = jnp.ones(cfg.ensemble_size, bool)
    sizes = [OBS + ACT, cfg.hidden, cfg.hidden, OBS]
    flops = args.steps * (3 * mlp_flops(sizes, cfg.batch_size) * cfg.ensemble_size
                          - 2 * cfg.batch_size * sizes[0] * sizes[1] * cfg.ensemble_size)
    state = {"train": ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg)}
    init = state["train"]
    state["bare"] = (init.params, init.opt_state)
    bare = bare_epoch(cfg)

    def call_train():
        orders = epoch_orders(jax.random.PRNGKey(3), 1, 1, cfg.ensemble_size, n)
        state["train"], _ = train_epochs(state["train"], active, x, y, orders, cfg.lr, 1e-6, 1, 1,
                                            cfg.batch_size)
        return state["train"].params

    def call_bare():
        state["bare"] = bare(*state["bare"], x, y, jax.random.PRNGKey(3))
        return state["bare"][0]

    rounds = []
    for _ in range(args.rounds):
        r = {"peak_gflops": peak_gflops(10)}
        for name, fn in (("train", call_train), ("bare", call_bare)):
            r[name] = flops / best_time(fn, args.repeats) / 1e9
        rounds.append(r)
        print(json.dumps({k: round(v, 1) for k, v in r.items()}), flush=True)
    res = {
        "steps_per_call": args.steps,
        "rounds": rounds,
        "median_gflops": {k: float(np.median([r[k] for r in rounds])) for k in ("peak_gflops", "train", "bare")},
        "median_bare_over_train": float(np.median([r["bare"] / r["train"] for r in rounds])),
        "median_fraction_of_peak": {k: float(np.median([r[k] / r["peak_gflops"] for r in rounds]))
                                    for k in ("train", "bare")},
        "meta": {"jax": jax.__version__, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                 "time": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: res[k] for k in ("median_gflops", "median_bare_over_train", "median_fraction_of_peak")},
                     indent=2))


if __name__ == "__main__":
    main()
