"""One TRPO iteration on imaginary rollouts: seconds, matmul GFLOP and fraction of the sgemm peak, two commits.

Each measurement is a child process that imports ``bremen`` from one code tree: this checkout ("after") or a
git worktree of ``--before`` (default: the commit before the TRPO pass-count work). Both trace, compile
and time ``trpo_iteration`` on the same state and keys:

* state: what an offline BREMEN run holds when TRPO starts, built once per task and size by this checkout
  and cached in bench/.cache/: 20k transitions of the shipped SAC policy (``pure``), an ensemble (5 × 2
  hidden layers; ``cpu`` 200 units, ``paper`` 1024) fit on them for ``FIT_EPOCHS`` epochs, a BC policy
  cloned for 30k steps (the ``cpu`` preset's), which leaves σ(s) at its floor (quirk 1), as π_β, the target
  policy and linear baseline after 25 TRPO iterations from it (``cpu`` settings), the task's model env (closed-form reward and
  termination) and the data's states as start states;
* seconds: the median of ``--repeats`` calls after a compile and a warm-up call, every call from the
  same state with its own key;
* matmul GFLOP: ``dot_general`` FLOPs counted from the iteration's jaxpr (bench/jaxpr_flops.py), with the
  conjugate gradient counted at its iteration count and the line search at the tries the timed calls
  made; ``policy_passes`` divides it by one forward pass of the policy over all rows;
* fraction of peak: matmul GFLOP / seconds over the best 2048² float32 matmul measured in the same process.

Rounds interleave the two trees (A B, then B A) because this machine's speed drifts; the summary is the
median per tree. Writes bench/results/trpo_iteration.json. Run: ``python bench/trpo_iteration.py``
(``--sizes cpu_half_cheetah`` for one size; ``--rounds``, ``--repeats``). One child alone:
``python bench/trpo_iteration.py --child CODE SIZE``; ``BENCH_TRPO_CONFIG='{"rows_per_chunk": 2000}'`` sets
TRPOConfig fields in it (how the chunk sizes were chosen).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEFORE_COMMIT = "def98fce890ea0dbdc979f5b4f37135152feb0cd"  # the TRPO iteration as it was before its passes were counted
SIZES = {
    # name: (task, dynamics hidden, batch_size, horizon, fisher_subsample, target_kl)
    "cpu_half_cheetah": ("half_cheetah", 200, 20_000, 250, 5, 0.1),
    "cpu_hopper": ("hopper", 200, 20_000, 250, 5, 0.05),
    "cpu_hopper_h1000": ("hopper", 200, 20_000, 1000, 5, 0.05),  # the paper's H on the cpu batch (deployment study)
    "paper_h250": ("half_cheetah", 1024, 50_000, 250, 1, 0.1),
    "paper_h1000": ("hopper", 1024, 50_000, 1000, 1, 0.05),
}
FIELDS = ("one_try_median_s", "one_try_calls", "one_try_matmul_gflop", "one_try_policy_passes",
          "one_try_fraction_of_peak", "mean_s", "mean_tries", "mean_matmul_gflop", "mean_fraction_of_peak", "peak_gflops")
TARGETS = {"speedup_cpu_half_cheetah": 1.5, "fraction_of_peak_cpu_half_cheetah": 0.70}


def child(code: str, size: str, repeats: int) -> dict:
    sys.path.insert(0, code)
    sys.path.insert(1, str(HERE))
    import jax
    import jax.numpy as jnp
    import numpy as np

    import bremen
    from bremen.algos.trpo import TRPOConfig, trpo_init, trpo_iteration
    from bremen.models.model_env import ModelEnv
    from bremen.tasks import make
    from ensemble_flops import mlp_flops, peak_gflops
    from jaxpr_flops import matmul_flops

    assert Path(bremen.__file__).resolve().is_relative_to(Path(code).resolve()), bremen.__file__
    task_name, hidden, batch, horizon, k, target_kl = SIZES[size]
    with open(state_path(task_name, hidden), "rb") as f:
        st = pickle.load(f)
    cfg = TRPOConfig(batch_size=batch, horizon=horizon, fisher_subsample=k, target_kl=target_kl,
                     **json.loads(os.environ.get("BENCH_TRPO_CONFIG", "{}")))
    mev = ModelEnv.from_task(make(task_name))
    state = trpo_init(st["policy"], st["stats"], st["behavior"], st["stats"], st["ens"], st["norm"], st["start"],
                      jax.random.PRNGKey(2), cfg)._replace(baseline=jnp.asarray(st["baseline"]))
    d, a = st["start"].shape[-1], st["policy"][-1]["w"].shape[-1] // 2

    def call(key):
        return trpo_iteration(state, key, config=cfg, env=mev)

    t0 = time.perf_counter()
    jax.block_until_ready(call(jax.random.PRNGKey(100)))
    compile_s = time.perf_counter() - t0
    hlo = jax.jit(call).lower(jax.random.PRNGKey(0)).compile().as_text()
    peak_before = peak_gflops(10)
    seconds, tries, valid = [], [], []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        _, info = jax.block_until_ready(call(jax.random.PRNGKey(r)))
        if r:  # the first call is a warm-up
            seconds.append(time.perf_counter() - t0)
        frac = float(info["step_fraction"])
        tries.append(cfg.backtrack_iters if frac == 0 else int(round(np.log(frac) / np.log(cfg.backtrack_ratio))) + 1)
        valid.append(int(info["valid_steps"]))
    peak = max(peak_before, peak_gflops(10))
    tries, valid = tries[1:], valid[1:]
    one_try = [t for t, n in zip(seconds, tries) if n == 1]
    counted = matmul_flops(call, jax.random.PRNGKey(0), trips=lambda kind, b: 1 if kind != "bounded" else b)
    per_try = counted.get("line_search", 0)
    flops_one = counted["total"]  # an iteration whose line search accepts the first try
    mean_tries = float(np.mean(tries))
    flops_mean = flops_one + (mean_tries - 1) * per_try
    rows = cfg.n_envs * horizon
    pass_flops = mlp_flops([d, 200, 200, 2 * a], rows)
    sec1 = float(np.median(one_try)) if one_try else float("nan")
    return {
        "code": code, "version": bremen.__version__, "size": size, "rows": rows, "compile_s": compile_s,
        "seconds": seconds, "tries": tries, "peak_gflops": peak,
        # iterations that took the full step at the first try (most of them in a run): the same work in both trees
        "one_try_median_s": sec1, "one_try_calls": len(one_try), "one_try_matmul_gflop": flops_one / 1e9,
        "one_try_policy_passes": flops_one / pass_flops, "one_try_fraction_of_peak": flops_one / 1e9 / sec1 / peak,
        # every call: the line search's tries vary with the key (and, for fisher_subsample > 1, with the code)
        "mean_s": float(np.mean(seconds)), "mean_tries": mean_tries, "mean_matmul_gflop": flops_mean / 1e9,
        "mean_fraction_of_peak": flops_mean / 1e9 / float(np.mean(seconds)) / peak,
        "line_search_gflop_per_try": per_try / 1e9, "cg_gflop": counted.get("bounded", 0) / 1e9,
        "valid_steps": float(np.mean(valid)),
        "hlo_products_over_the_batch": hlo_row_products(hlo, rows),
    }


FIT_EPOCHS, BC_STEPS, DATA_ROWS, TRPO_WARMUP = 20, 30_000, 20_000, 25


def state_path(task: str, hidden: int) -> Path:
    return HERE / ".cache" / f"trpo_state_{task}_{hidden}.pkl"


def build_state(task_name: str, hidden: int) -> None:
    """SAC-policy data, a fitted ensemble, a BC policy and the target policy and baseline 25 TRPO iterations
    later (see the module docstring), pickled as plain pytrees."""
    import jax
    import numpy as np

    from bremen.algos.bc import BCConfig, fit_bc
    from bremen.algos.trpo import TRPOConfig, trpo_init, trpo_run
    from bremen.data.collect import collect, default_policy_path
    from bremen.io.policy_io import load_policy
    from bremen.models.dynamics import DynamicsConfig, ensemble_init, fit
    from bremen.models.model_env import ModelEnv
    from bremen.models.normalizer import fit_normalization
    from bremen.tasks import make

    task = make(task_name)
    ds = collect(task, "pure", DATA_ROWS, load_policy(default_policy_path(task_name)), seed=0, progress=False)
    obs, act, nxt = ds.observations, ds.actions, ds.next_observations
    dcfg = DynamicsConfig(hidden=hidden, epochs=FIT_EPOCHS)
    norm = fit_normalization(obs, act, nxt)
    ens, _ = fit(ensemble_init(jax.random.PRNGKey(0), task.obs_dim, task.act_dim, dcfg), norm, (obs, act, nxt), None,
                 jax.random.PRNGKey(1), dcfg)
    bc, _ = fit_bc(jax.random.PRNGKey(2), obs, act, BCConfig(steps=BC_STEPS, act_low=task.act_low,
                                                             act_high=task.act_high))
    # the first iterations after BC backtrack ~5 times; later ones mostly take the full step, as in the runs' logs
    cfg = TRPOConfig(batch_size=20_000, horizon=250, fisher_subsample=5)
    trpo = trpo_init(bc.params, bc.stats, bc.params, bc.stats, ens.params, norm, obs, jax.random.PRNGKey(3), cfg)
    trpo, info = trpo_run(trpo, jax.random.PRNGKey(4), config=cfg, env=ModelEnv.from_task(task), n_iters=TRPO_WARMUP)
    print(f"{task_name} state: step fractions of the warm-up iterations {np.round(np.asarray(info['step_fraction']), 3)}")
    to_np = lambda t: jax.tree.map(np.asarray, t)  # noqa: E731
    out = state_path(task_name, hidden)
    out.parent.mkdir(exist_ok=True)
    with open(out, "wb") as f:
        pickle.dump({"policy": to_np(trpo.policy), "baseline": to_np(trpo.baseline), "behavior": to_np(bc.params),
                     "stats": to_np(bc.stats), "ens": to_np(ens.params), "norm": to_np(norm),
                     "start": np.asarray(obs, np.float32)}, f)


def hlo_row_products(hlo: str, rows: int) -> dict:
    """Matrix products in the compiled iteration whose output has ``rows`` (the whole batch) or a Fisher or
    chunk share of it as its leading dimension, by output shape: static instructions (a loop body counts once),
    what XLA left after its own common-subexpression elimination and fusion."""
    import re

    out: dict = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%[\w.\-]+ = f32\[(\d+),(\d+)\]\S* (dot|fusion)\(", line)
        if not m or (m.group(3) == "fusion" and "__ynn_fusion" not in line):
            continue
        n = int(m.group(1))
        if n >= 1000 and rows % n == 0 or n == rows:
            key = f"[{n},{m.group(2)}]"
            out[key] = out.get(key, 0) + 1
    return out


def worktree(commit: str) -> Path:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bremen-bench-{commit[:12]}"
    if not (path / "bremen").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--before", default=BEFORE_COMMIT, help="commit to compare with (a git worktree of it is made)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=12, help="timed calls per child process (keys 1..repeats)")
    p.add_argument("--out", default=str(HERE / "results" / "trpo_iteration.json"))
    p.add_argument("--child", nargs=2, metavar=("CODE", "SIZE"), help="one measurement, printed as JSON")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.repeats)))
        return

    for size in args.sizes:
        task, hidden = SIZES[size][:2]
        if not state_path(task, hidden).exists():
            print(f"building the {task} state (hidden {hidden}) once", flush=True)
            build_state(task, hidden)
    trees = {"before": str(worktree(args.before)), "after": str(ROOT)}
    runs = {s: {t: [] for t in trees} for s in args.sizes}
    for r in range(args.rounds):
        for size in args.sizes:
            for tree in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                out = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--child", trees[tree],
                                      size], capture_output=True, text=True, cwd=trees[tree])
                if out.returncode:
                    sys.exit(f"{tree} {size}: {out.stderr[-3000:]}")
                m = json.loads(out.stdout.strip().splitlines()[-1])
                runs[size][tree].append(m)
                print(json.dumps({"round": r, "size": size, "tree": tree,
                                  **{k: round(m[k], 3) for k in FIELDS}}), flush=True)

    import numpy as np

    summary = {}
    for size, by_tree in runs.items():
        s = {t: {k: float(np.nanmedian([m[k] for m in ms])) for k in FIELDS + ("compile_s",)}
             for t, ms in by_tree.items()}
        # speedups per round (the two trees ran back to back), then the median over rounds
        for k in ("one_try_median_s", "mean_s"):
            s[f"speedup_{k[:-2]}"] = float(np.nanmedian([b[k] / a[k] for b, a in zip(by_tree["before"],
                                                                                   by_tree["after"])]))
        summary[size] = s
    res = {"before_commit": args.before, "after_commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                                                                         capture_output=True, text=True).stdout.strip(),
           "sizes": {k: dict(zip(("task", "dynamics_hidden", "batch_size", "horizon", "fisher_subsample",
                                  "target_kl"), SIZES[k])) for k in args.sizes},
           "summary": summary, "targets": TARGETS, "runs": runs,
           "meta": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "time": time.strftime("%Y-%m-%d %H:%M:%S")}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
