"""Where the ensemble fit's time goes at the ``cpu`` size (5 members × 2×200, batch 1000), side by side.

Interleaved over ``--rounds`` rounds, each timed call doing ``--steps`` Adam steps on the same data:
``peak``: the 2048² sgemm (as bench/ensemble_flops.py); ``matmul``: the fit's largest product alone
(5 × [1000×200]·[200×200], batched); ``train``: bremen's ``dynamics.train_epochs`` with its host-side
shuffles (``epoch_orders``); ``per_step_gather``: the fit as it was (per-member shuffles by
``jax.random.permutation`` inside the compiled call, each minibatch gathered inside its step, the members'
freeze mask applied at every step); ``bare``: vmapped MLP, MSE, Adam on pre-gathered minibatches (no L2, no
mask): the least this math can cost. FLOPs count forward and backward matrix products. Other processes
lower every figure; the load average is recorded. Writes bench/results/fit_cpu_size.json.
Run: ``python bench/fit_cpu_size.py``.
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

from ensemble_flops import ACT, OBS, best_time, mlp_flops, peak_gflops
from bremen.models.dynamics import (DynamicsConfig, _mse, _select, ensemble_init, epoch_orders, l2_hidden,
                                    train_epochs)
from bremen.models.nets import mlp_apply


def per_step_gather(cfg: DynamicsConfig):
    """The fit as it was: each step gathers its rows and re-applies the freeze mask to params and Adam moments."""
    opt, k, b = optax.adam(cfg.lr), cfg.ensemble_size, cfg.batch_size

    def loss_fn(params, xb, yb):
        mse = jax.vmap(_mse, (0, 0, 0, None))(params, xb, yb, "relu")
        return jnp.sum(mse + 1e-6 * jax.vmap(l2_hidden)(params)), mse

    @jax.jit
    def run(params, opt_state, active, x, y, key):
        n = x.shape[0] // b
        perm = jax.vmap(lambda kk: jax.random.permutation(kk, x.shape[0]))(jax.random.split(key, k))

        def step(carry, idx):
            p, s = carry
            grads, _ = jax.grad(loss_fn, has_aux=True)(p, x[idx], y[idx])
            u, s2 = opt.update(grads, s, p)
            return (_select(active, optax.apply_updates(p, u), p), _select(active, s2, s)), None

        return jax.lax.scan(step, (params, opt_state), perm[:, : n * b].reshape(k, n, b).transpose(1, 0, 2))[0]

    return run


def bare(cfg: DynamicsConfig):
    opt = optax.adam(cfg.lr)

    def loss(params, xb, yb):
        return jnp.sum(jax.vmap(lambda p, u, v: jnp.mean((mlp_apply(p, u) - v) ** 2))(params, xb, yb))

    @jax.jit
    def run(params, opt_state, xs, ys):
        def step(carry, xy):
            p, s = carry
            u, s = opt.update(jax.grad(loss)(p, *xy), s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, opt_state), (xs, ys))[0]

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50, help="Adam steps per timed call")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "fit_cpu_size.json"))
    args = p.parse_args()

    cfg = DynamicsConfig(hidden=200)
    k, b, h = cfg.ensemble_size, cfg.batch_size, cfg.hidden
    n = args.steps * b
    x = jax.random.normal(jax.random.PRNGKey(1), (n, OBS + ACT))
    y = jax.random.normal(jax.random.PRNGKey(2), (n, OBS))
    idx = jax.vmap(lambda kk: jax.random.permutation(kk, n))(jax.random.split(jax.random.PRNGKey(4), k))
    idx = idx.reshape(k, args.steps, b).transpose(1, 0, 2)
    xs, ys = x[idx], y[idx]
    active = jnp.ones(k, bool)
    sizes = [OBS + ACT, h, h, OBS]
    flops = args.steps * (3 * mlp_flops(sizes, b) * k - 2 * b * sizes[0] * sizes[1] * k)
    init = ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg)
    state = {"train": init, "per_step_gather": (init.params, init.opt_state), "bare": (init.params, init.opt_state)}
    old, plain = per_step_gather(cfg), bare(cfg)
    a = jax.random.normal(jax.random.PRNGKey(5), (k, b, h))
    w = jax.random.normal(jax.random.PRNGKey(6), (k, h, h))
    bmm = jax.jit(lambda u, v: jnp.einsum("kbi,kio->kbo", u, v))

    def call_train():
        orders = epoch_orders(jax.random.PRNGKey(3), 1, 1, k, n)  # host-side shuffles: part of the timed fit
        state["train"], _ = train_epochs(state["train"], active, x, y, orders, cfg.lr, 1e-6, 1, 1, b)
        return state["train"].params

    def call_old():
        state["per_step_gather"] = old(*state["per_step_gather"], active, x, y, jax.random.PRNGKey(3))
        return state["per_step_gather"][0]

    def call_bare():
        state["bare"] = plain(*state["bare"], xs, ys)
        return state["bare"][0]

    rounds = []
    for _ in range(args.rounds):
        r = {"peak": peak_gflops(10), "matmul": 2 * k * b * h * h / best_time(lambda: bmm(a, w), 20) / 1e9}
        for name, fn in (("train", call_train), ("per_step_gather", call_old), ("bare", call_bare)):
            r[name] = flops / best_time(fn, args.repeats) / 1e9
        rounds.append(r)
        print(json.dumps({key: round(v / r["peak"], 3) for key, v in r.items()} | {"peak": round(r["peak"], 1)}),
              flush=True)
    names = list(rounds[0])
    res = {
        "config": {"members": k, "hidden": h, "batch": b, "steps_per_call": args.steps},
        "rounds_gflops": rounds,
        "median_fraction_of_peak": {n_: float(np.median([r[n_] / r["peak"] for r in rounds])) for n_ in names},
        "median_steps_per_s": {n_: float(np.median([r[n_] for r in rounds])) * 1e9 / (flops / args.steps)
                               for n_ in ("train", "per_step_gather", "bare")},
        "meta": {"jax": jax.__version__, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                 "time": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({key: res[key] for key in ("median_fraction_of_peak", "median_steps_per_s")}, indent=2))


if __name__ == "__main__":
    main()
