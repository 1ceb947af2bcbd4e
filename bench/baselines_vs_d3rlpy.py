"""Updates per second of bremen's BC, BCQ and BEAR against d3rlpy 2.8.1's, at d3rlpy's DEFAULT configuration.

Run with bremen's venv; d3rlpy lives in its own venv (``bash bench/d3rlpy_setup.sh`` makes
``bench/.d3rlpy-venv``) and is never imported here: each d3rlpy measurement is a child process
(``bench/d3rlpy_update_speed.py``) in that venv.

    bash bench/d3rlpy_setup.sh                               # once: bench/.d3rlpy-venv
    .venv/bin/python bench/baselines_vs_d3rlpy.py            # 3 interleaved rounds, ~13-14 min on 2 cores

One random dataset at hopper's sizes (obs 11, act 3, 100k transitions, actions uniform in [-1, 1], rewards
N(0, 1), terminals Bernoulli(1e-3), a timeout every 1000 steps; fixed seed) is written as .npz in a temp dir
and read by both sides. For each round and each algorithm (bc, bcq, bear), in that order:

(a) bremen: ``agent_config(name, "paper")`` overridden to d3rlpy 2.8.1's defaults (``D3RLPY_DEFAULTS`` below),
    one compile call of ``update_many(agent, state, data, n, batch)`` (first round only; later rounds reuse
    the compiled program), then ``--bremen-calls`` timed calls, each ended by ``jax.block_until_ready``;
    minibatches are drawn inside the compiled call (uniform with replacement, on the device).
(b) d3rlpy: the child builds ``{BC,BCQ,BEAR}Config()`` untouched on "cpu:0", ``build_with_dataset`` on an
    MDPDataset of the same arrays, pre-draws minibatches with ``dataset.sample_transition_batch`` (timed
    apart) and times ``algo.update(batch)`` with ``torch.set_num_threads(k)``, k = 1 and 2 (order alternates
    by round). BEAR's grad step is set to its warm-up length (40000) so every timed update is post-warm-up.

The ratio is bremen updates/s over the best d3rlpy updates/s (update calls only, sampling excluded, which
favours d3rlpy; ``fit_loop_updates_per_s`` adds its sampling time back). The work of one update is counted on
both sides as the FLOPs of its matrix products (2·m·n·k, forward and backward): ``dot_flops`` over the jaxpr of
bremen's update, torch's FlopCounterMode over one d3rlpy update; ``work_ratio_bremen_over_d3rlpy`` and
``matmul_gflops_per_s`` tell a faster program from a smaller computation. d3rlpy's BEAR actor evaluates Q at one
policy sample (its SAC actor loss), as rlkit's does, so bremen's BEAR runs with ``q_samples="first"`` here, not the
original repository's mean over the ``num_samples_match`` samples (its default; ``--q-samples all`` measures that).
The algorithms still differ in detail: d3rlpy's BEAR adds SAC's entropy term. Output:
``bench/results/baselines_vs_d3rlpy.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the bremen of this checkout, not whichever one the venv has installed
from jaxpr_flops import count  # noqa: E402  (bench/ is the script's folder)

D3RLPY_PYTHON = HERE / ".d3rlpy-venv" / "bin" / "python"
CHILD = HERE / "d3rlpy_update_speed.py"
OUT = HERE / "results" / "baselines_vs_d3rlpy.json"
OBS_DIM, ACT_DIM, N = 11, 3, 100_000
ALGOS = ("bc", "bcq", "bear")
TARGET_RATIO = 2.0

H = (256, 256)
# bremen config fields set to d3rlpy 2.8.1's defaults (d3rlpy.algos.{BC,BCQ,BEAR}Config(); DefaultEncoderFactory
# = VectorEncoderFactory hidden_units [256, 256] for every network, VAE included; Adam β (0.9, 0.999), eps 1e-8).
D3RLPY_DEFAULTS = {
    # d3rlpy BC: deterministic tanh policy, MSE loss: bremen's bc with loss "mse" (eq. 3 of bremen.algos.bc_baseline;
    # its actor keeps the 2·|A| output head of the tanh-Gaussian, the σ half unused).
    "bc": {"actor_hidden": H, "lr": 1e-3, "batch_size": 100, "loss": "mse"},
    # d3rlpy BCQ: n_action_samples=100 is used both for the critic target and for action selection.
    "bcq": {"vae_hidden": H, "actor_hidden": H, "q_hidden": H, "n_q": 2, "vae_lr": 1e-3, "actor_lr": 1e-3,
            "q_lr": 1e-3, "batch_size": 100, "discount": 0.99, "tau": 0.005, "lam": 0.75, "phi": 0.05,
            "kl_weight": 0.5, "n_target_samples": 100, "n_action_samples": 100},
    # d3rlpy BEAR; warmup_steps 0 instead of 40000 so every timed update is a post-warm-up one (bremen computes
    # both actor losses and selects with jnp.where, so its cost does not depend on the step anyway). q_samples
    # "first": d3rlpy's actor loss takes min_k Q_k at one policy sample (SACImpl.compute_actor_loss).
    "bear": {"actor_hidden": H, "q_hidden": H, "vae_hidden": H, "n_q": 2, "actor_lr": 1e-4, "q_lr": 3e-4,
             "vae_lr": 3e-4, "alpha_lr": 1e-3, "batch_size": 256, "num_samples_match": 4, "kernel": "laplacian",
             "mmd_sigma": 20.0, "num_target_samples": 10, "num_action_samples": 100, "lam": 0.75,
             "mmd_target": 0.05, "tau": 0.005, "discount": 0.99, "warmup_steps": 0, "q_samples": "first"},
}
# d3rlpy updates timed per thread count and round: (k=1 count, k=2 count). Two threads on the loaded 2-core
# machine measured 10-100x slower than one (4.7-46 vs 586-627 BC updates/s, 0.4-0.6 vs 18-22 BEAR), so k=2 gets a
# wall-clock cap (--d3rlpy-k2-seconds) and fewer updates; k=1, the faster, always times >= 200 updates.
D3RLPY_UPDATES = {"bc": (1000, 200), "bcq": (200, 200), "bear": (300, 200)}
# bremen updates per update_many call (n is static: one compiled program per algorithm). 1000 for BC; BCQ with
# d3rlpy's 100 target samples runs ~10 updates/s here and BEAR ~21/s, so 1000-update calls would not fit the
# 15-minute budget: 200 and 300 (still >= 200 timed post-warm-up updates per call).
BREMEN_UPDATES = {"bc": 1000, "bcq": 200, "bear": 300}


def make_dataset(path: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((N, OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1.0, 1.0, (N, ACT_DIM)).astype(np.float32)
    rew = rng.standard_normal(N).astype(np.float32)
    term = (rng.random(N) < 1e-3).astype(np.float32)
    timeouts = np.zeros(N, np.float32)
    timeouts[999::1000] = 1.0
    timeouts[term > 0] = 0.0
    timeouts[-1] = 1.0 - term[-1]
    arrays = {"observations": obs, "actions": act, "rewards": rew, "terminals": term, "timeouts": timeouts}
    np.savez(path, **arrays)
    return arrays


def bremen_data(arrays: dict):
    from bremen.algos.agent import batch_from_arrays

    obs = arrays["observations"]
    # next observation: the following row (the episode boundaries do not matter for a speed test)
    next_obs = np.concatenate([obs[1:], obs[-1:]], axis=0)
    return batch_from_arrays(obs, arrays["actions"], arrays["rewards"], next_obs, arrays["terminals"])


def dot_flops(jaxpr) -> int:
    """2·m·n·k summed over the matrix products (``dot_general``) of a jaxpr, sub-jaxprs included (a scan's body
    times its length, the costliest branch of a cond, a while body once): the count torch's FlopCounterMode
    makes of d3rlpy."""
    return count(jaxpr, lambda kind, bound: 1, {})


class BremenBench:
    """One agent per algorithm, compiled once, its state carried across rounds."""

    def __init__(self, name: str, data, n: int, seed: int = 0):
        import jax

        from bremen.algos import registry
        from bremen.algos.agent import Spec, update_many

        self.name, self.data, self.n = name, data, n
        self.config = registry.agent_config(name, "paper", settings=D3RLPY_DEFAULTS[name])
        self.agent = registry.make_agent(name, Spec.of(OBS_DIM, ACT_DIM, -1.0, 1.0), self.config)
        self.batch = int(self.config.batch_size)
        self.update_many = update_many
        self.state = self.agent.init(jax.random.PRNGKey(seed))
        t0 = time.perf_counter()
        self.state, info = update_many(self.agent, self.state, data, n, self.batch)
        jax.block_until_ready((self.state, info))
        self.compile_call_s = time.perf_counter() - t0
        self.n_params = int(sum(np.size(x) for x in jax.tree.leaves(self.state)))
        batch = jax.tree.map(lambda a: a[: self.batch], data)
        self.matmul_flops = dot_flops(jax.make_jaxpr(self.agent.update)(self.state, batch).jaxpr)

    def time_calls(self, calls: int) -> list:
        import jax

        rates = []
        for _ in range(calls):
            t0 = time.perf_counter()
            self.state, info = self.update_many(self.agent, self.state, self.data, self.n, self.batch)
            jax.block_until_ready((self.state, info))
            rates.append(self.n / (time.perf_counter() - t0))
        self.last_info = {k: float(v) for k, v in info.items()}
        return rates


def run_d3rlpy(npz: Path, name: str, threads: str, counts: tuple, k2_seconds: float, seed: int) -> dict:
    cmd = [str(D3RLPY_PYTHON), str(CHILD), "--npz", str(npz), "--algo", name, "--threads", threads,
           "--n-updates-k1", str(counts[0]), "--n-updates-k2", str(counts[1]), "--k2-max-seconds", str(k2_seconds),
           "--seed", str(seed)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"d3rlpy child failed ({name}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["child_wall_s"] = time.perf_counter() - t0
    return out


def versions() -> dict:
    import jax
    import jaxlib

    child = subprocess.run([str(D3RLPY_PYTHON), "-c", "import torch, d3rlpy, gymnasium, numpy, sys; "
                            "print(torch.__version__, d3rlpy.__version__, gymnasium.__version__, numpy.__version__, "
                            "sys.version.split()[0])"], capture_output=True, text=True)
    torch_v, d3_v, gym_v, np_v, py_v = child.stdout.split()[-5:]
    import bremen

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bremen", "bench"],
                             capture_output=True, text=True)
    changed = [line[3:] for line in changed.stdout.splitlines() if not line[3:].startswith("bench/results")]
    return {"bremen": str(Path(bremen.__file__).parent), "bremen_commit": commit.stdout.strip(),
            "uncommitted_changes": changed, "jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy_bremen": np.__version__,
            "python": platform.python_version(), "torch": torch_v, "d3rlpy": d3_v, "gymnasium_d3rlpy_venv": gym_v,
            "numpy_d3rlpy_venv": np_v, "python_d3rlpy_venv": py_v, "jax_backend": jax.default_backend(),
            "machine": platform.machine(), "cpu_count": os.cpu_count()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--bremen-updates", type=int, default=None,
                   help="updates per update_many call (default: BREMEN_UPDATES per algorithm)")
    p.add_argument("--bremen-calls", type=int, default=2, help="timed update_many calls per round")
    p.add_argument("--d3rlpy-k2-seconds", type=float, default=10.0,
                   help="wall-clock cap of the 2-thread d3rlpy timing per round (it is 30-100x slower here)")
    p.add_argument("--q-samples", choices=("first", "all"), default="first",
                   help="bremen BEAR's q_samples: first (as d3rlpy's actor) or all (the original's mean over n)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()
    D3RLPY_DEFAULTS["bear"]["q_samples"] = args.q_samples
    if not D3RLPY_PYTHON.exists():
        sys.exit(f"{D3RLPY_PYTHON} is missing: run `bash bench/d3rlpy_setup.sh` first")
    algos = tuple(a for a in args.algos.split(",") if a)
    t_start = time.perf_counter()

    results = {"what": "updates per second at d3rlpy 2.8.1's default config, same data, same run, interleaved rounds",
               "target_ratio": TARGET_RATIO, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "args": vars(args), "bremen_updates_per_call": {a: args.bremen_updates or BREMEN_UPDATES[a] for a in algos},
               "d3rlpy_requested_updates_k1_k2": {a: D3RLPY_UPDATES[a] for a in algos},
               "versions": versions(), "load_avg_start": os.getloadavg(), "dataset": {}, "bremen_config": {},
               "bremen_overrides": {a: {k: list(v) if isinstance(v, tuple) else v for k, v in D3RLPY_DEFAULTS[a].items()}
                                    for a in algos},
               "matmul_flops_per_update": {}, "rounds": [], "summary": {}}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "random_hopper.npz"
        arrays = make_dataset(npz)
        results["dataset"] = {"obs_dim": OBS_DIM, "act_dim": ACT_DIM, "transitions": N, "seed": 0,
                              "terminals": int(arrays["terminals"].sum()), "timeouts": int(arrays["timeouts"].sum())}
        data = bremen_data(arrays)
        benches = {}
        for r in range(args.rounds):
            threads = "1,2" if r % 2 == 0 else "2,1"
            rnd = {"round": r, "d3rlpy_thread_order": threads, "algos": {}}
            for name in algos:
                la0 = os.getloadavg()
                if name not in benches:
                    benches[name] = BremenBench(name, data, args.bremen_updates or BREMEN_UPDATES[name])
                    results["bremen_config"][name] = {k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in dataclasses.asdict(benches[name].config).items()}
                    results["bremen_config"][name]["_compile_call_s"] = benches[name].compile_call_s
                    results["bremen_config"][name]["_state_size_floats"] = benches[name].n_params
                    results["matmul_flops_per_update"][name] = {"bremen": benches[name].matmul_flops}
                b = benches[name]
                rates = b.time_calls(args.bremen_calls)
                d3 = run_d3rlpy(npz, name, threads, D3RLPY_UPDATES[name], args.d3rlpy_k2_seconds, seed=r)
                d3_rates = {k: v["updates_per_s"] for k, v in d3["per_threads"].items()}
                results["matmul_flops_per_update"][name]["d3rlpy"] = d3["matmul_flops_per_update"]
                best_k = max(d3_rates, key=d3_rates.get)
                bremen_rate = statistics.median(rates)
                entry = {"bremen_updates_per_s": bremen_rate, "bremen_call_rates": rates,
                         "bremen_batch": b.batch, "bremen_updates_per_call": b.n,
                         "bremen_last_info": b.last_info,
                         "d3rlpy_updates_per_s": d3_rates,
                         "d3rlpy_fit_loop_updates_per_s": {k: v["fit_loop_updates_per_s"]
                                                           for k, v in d3["per_threads"].items()},
                         "d3rlpy_timed_updates": {k: v["timed_updates"] for k, v in d3["per_threads"].items()},
                         "d3rlpy_best_threads": int(best_k),
                         "ratio_bremen_over_best_d3rlpy": bremen_rate / d3_rates[best_k],
                         "load_avg_before": la0, "load_avg_after": os.getloadavg(), "d3rlpy_child": d3}
                rnd["algos"][name] = entry
                print(f"round {r} {name}: bremen {bremen_rate:.1f}/s, d3rlpy "
                      + ", ".join(f"{k} thr {v:.1f}/s" for k, v in d3_rates.items())
                      + f", ratio {entry['ratio_bremen_over_best_d3rlpy']:.2f}, load {os.getloadavg()[0]:.1f}, "
                      f"t={time.perf_counter() - t_start:.0f}s", flush=True)
            results["rounds"].append(rnd)
            _write(results, args.out)  # partial results survive an interrupted run

    for name in algos:
        per = [rnd["algos"][name] for rnd in results["rounds"]]
        br = statistics.median(e["bremen_updates_per_s"] for e in per)
        d3 = {k: statistics.median(e["d3rlpy_updates_per_s"][k] for e in per) for k in per[0]["d3rlpy_updates_per_s"]}
        ratios = [e["ratio_bremen_over_best_d3rlpy"] for e in per]
        med_ratio = statistics.median(ratios)
        results["summary"][name] = {
            "bremen_updates_per_s_median": br, "d3rlpy_updates_per_s_median": d3,
            "d3rlpy_fit_loop_updates_per_s_median": {
                k: statistics.median(e["d3rlpy_fit_loop_updates_per_s"][k] for e in per) for k in d3},
            "ratio_per_round": ratios, "ratio_median": med_ratio,
            "ratio_of_medians": br / max(d3.values()), "target_met": med_ratio >= TARGET_RATIO}
        flops = results["matmul_flops_per_update"][name]
        results["summary"][name].update(
            work_ratio_bremen_over_d3rlpy=flops["bremen"] / flops["d3rlpy"],
            matmul_gflops_per_s={"bremen": br * flops["bremen"] / 1e9, "d3rlpy": max(d3.values()) * flops["d3rlpy"] / 1e9})
    results["load_avg_end"] = os.getloadavg()
    results["total_wall_s"] = time.perf_counter() - t_start
    _write(results, args.out)
    for name, s in results["summary"].items():
        print(f"{name}: bremen {s['bremen_updates_per_s_median']:.1f}/s, d3rlpy "
              + ", ".join(f"{k} thr {v:.1f}/s" for k, v in s["d3rlpy_updates_per_s_median"].items())
              + f", median ratio {s['ratio_median']:.2f} (target >= {TARGET_RATIO}: "
              f"{'met' if s['target_met'] else 'NOT met'}); matmul work per update {s['work_ratio_bremen_over_d3rlpy']:.2f}x "
              f"d3rlpy's, matmul GFLOP/s bremen {s['matmul_gflops_per_s']['bremen']:.0f}, d3rlpy "
              f"{s['matmul_gflops_per_s']['d3rlpy']:.0f}")
    print(f"wrote {args.out} in {results['total_wall_s']:.0f} s")


def _write(results: dict, path: str):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
