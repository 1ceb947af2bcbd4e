"""MOPO's two costly parts, bremen (JAX) against OfflineRL-Kit's PyTorch MOPO, at the same sizes, A/B interleaved.

Run with bremen's venv; OfflineRL-Kit (github.com/yihaosun1124/OfflineRL-Kit, not on PyPI) lives in its own venv
(``bench/offlinerlkit_setup.sh`` makes ``bench/.offlinerlkit-venv`` from a source tree named by OFFLINERLKIT_SRC)
and is never imported here: each of its measurements is a child process in that venv
(``bench/mopo_speed_kit.py``).

    OFFLINERLKIT_SRC=/work/offlinerlkit-src bash bench/offlinerlkit_setup.sh   # once
    .venv/bin/python bench/mopo_speed.py            # 3 interleaved rounds, ~7 min on 2 loaded cores

Measured, each side in its own process, rounds A (bremen, in this process) / B (kit child), alternating:

(a) SAC updates/s on MOPO's mixed minibatch (256 rows: 5% real, 95% model; actor and both critics 256-256 ReLU,
    automatic entropy temperature, target entropy -3, hopper's sizes obs 11 / act 3), 100,000 real rows and a
    model buffer of 250,000 rows.
    bremen: ``update_many_mixed(agent, state, real, model, 250000, 1000, 256, 13)`` with
    ``SAC(Spec.of(11, 3, -1, 1), MOPO_SAC)``: 1000 updates in one compiled call (MOPO's rollout_every), the
    minibatches drawn inside it; one untimed compile call, then ``--bremen-sac-calls`` timed calls, each ended by
    ``jax.block_until_ready`` on (state, info). Includes the sampling.
    kit: ``MOPOPolicy`` built as its run_example/run_mopo.py builds it (MLP backbones 256-256, TanhDiagGaussian
    head, two Critic modules, Adam lr 1e-4 actor / 3e-4 critics / 1e-4 alpha: its defaults, which do not change
    the speed), and per update what its MBPolicyTrainer does: ``real_buffer.sample(12)``, ``fake_buffer.sample(244)``
    (int(256·0.05) = 12 real rows: the kit truncates where bremen rounds to 13) and ``policy.learn({"real", "fake"})``
    (which concatenates them and runs SACPolicy.learn, loss .item()s included); the trainer's tqdm/logger calls are
    left out. 20 untimed updates first, then 1000 timed (with more than one torch thread the timing stops after
    ``--kit-sac-max-seconds``; ``timed_updates`` says how many). ``updates_per_s`` includes the sampling (as
    bremen's); the sampling and learn() times are also reported apart.

(b) model-rollout steps/s: MOPO's rollout of the current stochastic actor in a 7-member Gaussian ensemble (4 × 200
    swish, 5 elites, a random elite per row and step, reward penalized by the aleatoric uncertainty max_k ‖σ_k‖,
    λ = 1), from 50,000 start states (MOPO's rollout_batch_size), 5 steps, hopper's termination function; steps/s
    = 50,000·5 / seconds per call, whatever number of rows survive (``mean_rollout_length`` says how many did).
    bremen: ``model_rollout(state.actor, ens, norm, arange(5), starts, key, env=ModelEnv.from_task(hopper,
    activation="swish"), horizon=5, penalty_coef=1.0, ...)`` (one compiled call, rows compacted at the end; every
    row is computed at every step, terminated or not); one untimed compile call, then ``--rollout-calls`` timed
    calls blocked on the rows.
    kit: ``MOPOPolicy.rollout(starts, 5)``: ``select_action`` + ``EnsembleDynamics.step`` (torch forward of all 7
    members, then NumPy: Gaussian samples of every member, elite choice, termination, penalty) on the rows still
    alive, the transitions concatenated at the end; the fake buffer's add_batch is left out on both sides. One
    untimed rollout of 5,000 starts first.
    The ensemble has the same random weights on both sides: bremen's ``ensemble_init(PRNGKey(1), 11, 3,
    DynamicsConfig(7 members, 4×200 swish, probabilistic))`` copied into the kit's EnsembleDynamicsModel, the
    output layer folded with bremen's output denormalization (the kit predicts raw state deltas: mean columns
    W·σ_Δ, b·σ_Δ + μ_Δ; log-variance columns + 2·log σ_Δ before its soft clamp) plus the kit's learned-reward unit
    (zero weights). Inputs are normalized the same way (kit: its StandardScaler fit on the real (s, a)). So both
    sides move in steps of the data's delta scale and rows survive about as long (a trained model's regime: most
    5-step hopper rollouts of MOPO do not terminate).

torch threads: ``torch.set_num_threads(k)`` for k = the cores this process may use (``os.sched_getaffinity``) and,
where that is more than one, k = 1 as well (on this loaded 2-core machine one thread has measured faster for
small networks; bench/results/baselines_vs_d3rlpy.json); the order alternates by round and the ratio is taken
against the kit's better k. JAX runs with its defaults (XLA's CPU thread pool over the cores this process may use).
Under ``taskset -c 0`` both sides get one core (bench/results/mopo_speed_one_core.json): the per-core comparison.

Data (random, fixed seeds, hopper-like so the termination function applies): heights 1.25 ± 0.02, angles ± 0.02,
other joint angles ± 0.1, velocities ± 0.5, next states s + N(0, 0.01²), actions U[-1, 1], rewards N(0, 1),
terminals Bernoulli(1e-3); written as .npz in a temp dir and read by both sides.

The work is counted so that a faster program is told from a smaller one: matmul FLOPs (2·in·out per row and
layer) per SAC update and per rollout row-step, analytically from the layer sizes (``flops.analytic``: the passes
each side makes, listed there) and measured (bremen: ``dot_general``s of the jaxpr, bench/jaxpr_flops.py; kit:
torch's FlopCounterMode over one learn() and over one select_action + dynamics.step).
Output: ``bench/results/mopo_speed.json``.
"""

from __future__ import annotations

import argparse
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
KIT_PYTHON = HERE / ".offlinerlkit-venv" / "bin" / "python"
OUT = HERE / "results" / "mopo_speed.json"

OBS_DIM, ACT_DIM = 11, 3
N_REAL, N_MODEL = 100_000, 250_000
BATCH, REAL_RATIO = 256, 0.05
N_REAL_BREMEN = round(REAL_RATIO * BATCH)  # 13 (bremen's MOPO learner rounds)
N_REAL_KIT = int(BATCH * REAL_RATIO)  # 12 (OfflineRL-Kit's MBPolicyTrainer truncates)
SAC_UPDATES = 1000  # MOPO's rollout_every: updates per bremen call and per kit timing
ROLLOUT_BATCH, HORIZON, PENALTY = 50_000, 5, 1.0
ENSEMBLE, ELITES, LAYERS, HIDDEN = 7, 5, 4, 200
HIDDEN_SAC = (256, 256)
WEIGHT_DECAYS = [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]  # the kit's run_mopo.py default (no effect on speed)
TARGET_RATIO = 3.0


# ----------------------------------------------------------------------------------------------- shared data
def make_data(path: Path, seed: int = 0) -> dict:
    """Hopper-like random data (see the module docstring) and the rollout start states, saved to ``path``."""
    rng = np.random.default_rng(seed)

    def states(n):
        s = np.empty((n, OBS_DIM), np.float32)
        s[:, 0] = 1.25 + 0.02 * rng.standard_normal(n)
        s[:, 1] = 0.02 * rng.standard_normal(n)
        s[:, 2:5] = 0.1 * rng.standard_normal((n, 3))
        s[:, 5:] = 0.5 * rng.standard_normal((n, OBS_DIM - 5))
        return s

    def transitions(n):
        obs = states(n)
        return {"observations": obs,
                "actions": rng.uniform(-1.0, 1.0, (n, ACT_DIM)).astype(np.float32),
                "rewards": rng.standard_normal(n).astype(np.float32),
                "next_observations": (obs + 0.01 * rng.standard_normal(obs.shape)).astype(np.float32),
                "terminals": (rng.random(n) < 1e-3).astype(np.float32)}

    real, model = transitions(N_REAL), transitions(N_MODEL)
    starts = real["observations"][rng.integers(0, N_REAL, ROLLOUT_BATCH)]
    arrays = {**{f"real_{k}": v for k, v in real.items()}, **{f"model_{k}": v for k, v in model.items()},
              "starts": starts}
    np.savez(path, **arrays)
    return arrays


# ----------------------------------------------------------------------------------------------- analytic FLOPs
def mlp_flops(sizes) -> int:
    """Forward matmul FLOPs of one MLP per row: 2·in·out summed over its layers."""
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def analytic_flops() -> dict:
    """Per-row forward costs from the layer sizes, and the passes each side makes (convention: a trained net's
    forward + backward = 3 forwards; a net only differentiated through, its inputs' gradients = 2 forwards)."""
    a = mlp_flops([OBS_DIM, *HIDDEN_SAC, 2 * ACT_DIM])
    q = mlp_flops([OBS_DIM + ACT_DIM, *HIDDEN_SAC, 1])
    m_bremen = mlp_flops([OBS_DIM + ACT_DIM, *([HIDDEN] * LAYERS), 2 * OBS_DIM])
    m_kit = mlp_flops([OBS_DIM + ACT_DIM, *([HIDDEN] * LAYERS), 2 * (OBS_DIM + 1)])
    # bremen SAC.update: π(s') + 2 Q̄(s', a'); 2 Q fwd+bwd; actor: π fwd+bwd, 2 Q fwd + input grads;
    # temperature: a fresh π(s) of the updated actor.  = 5 π + 12 Q per row.
    bremen_update = BATCH * (a + 2 * q + 6 * q + 3 * a + 4 * q + a)
    # kit SACPolicy.learn: π(s') + 2 Q̄(s', a') (no_grad); 2 Q fwd+bwd; actor: π fwd+bwd, 2 Q fwd + bwd with the
    # critics' weight gradients too (they require grad; zeroed before their next step); temperature uses the
    # actor step's log π.  = 4 π + 14 Q per row.
    kit_update = BATCH * (a + 2 * q + 6 * q + 3 * a + 6 * q)
    return {
        "convention": "2*in*out per row per layer; trained net fwd+bwd = 3x fwd; differentiated-through net "
                      "(input grads only) = 2x fwd",
        "actor_fwd_per_row": a, "q_fwd_per_row": q,
        "ensemble_member_fwd_per_row": {"bremen": m_bremen, "kit": m_kit},
        "sac_update": {"bremen": bremen_update, "kit": kit_update,
                       "bremen_passes_per_row": "5 actor + 12 Q", "kit_passes_per_row": "4 actor + 14 Q"},
        "rollout_row_step": {"bremen": a + ENSEMBLE * m_bremen, "kit": a + ENSEMBLE * m_kit,
                             "passes": "actor fwd + 7 members fwd (every member, not only the elites: the "
                                       "penalty needs every σ_k on both sides)"},
        "rollout_call_nominal_50000x5": {"bremen": ROLLOUT_BATCH * HORIZON * (a + ENSEMBLE * m_bremen),
                                         "kit": ROLLOUT_BATCH * HORIZON * (a + ENSEMBLE * m_kit)},
    }


# ----------------------------------------------------------------------------------------------- bremen side
class BremenBench:
    """bremen's SAC mixed-batch updates and model rollout, compiled once, state carried across rounds."""

    def __init__(self, arrays: dict, ens_npz: Path):
        import jax
        import jax.numpy as jnp

        import bremen.tasks as T
        from bremen.algos.agent import Spec, batch_from_arrays, update_many_mixed
        from bremen.algos.mopo import MOPO_SAC, model_rollout
        from bremen.algos.sac import SAC
        from bremen.models.dynamics import DynamicsConfig, ensemble_init
        from bremen.models.model_env import ModelEnv
        from bremen.models.normalizer import fit_normalization

        sys.path.insert(0, str(HERE))
        from jaxpr_flops import count

        self.jax, self.update_many_mixed, self.model_rollout = jax, update_many_mixed, model_rollout
        self.spec = Spec.of(OBS_DIM, ACT_DIM, -1.0, 1.0)
        self.agent = SAC(self.spec, MOPO_SAC)
        self.sac_config = MOPO_SAC
        self.state = self.agent.init(jax.random.PRNGKey(0))
        r = {k[5:]: v for k, v in arrays.items() if k.startswith("real_")}
        m = {k[6:]: v for k, v in arrays.items() if k.startswith("model_")}
        fields = ("observations", "actions", "rewards", "next_observations", "terminals")
        self.real = batch_from_arrays(*(r[f] for f in fields))
        self.model = batch_from_arrays(*(m[f] for f in fields))
        self.model_rows = jnp.asarray(N_MODEL, jnp.int32)

        t0 = time.perf_counter()
        self._sac_call()
        self.sac_compile_call_s = time.perf_counter() - t0

        self.dyn_config = DynamicsConfig(ensemble_size=ENSEMBLE, elites=ELITES, n_layers=LAYERS, hidden=HIDDEN,
                                         activation="swish", probabilistic=True)
        self.ens = ensemble_init(jax.random.PRNGKey(1), OBS_DIM, ACT_DIM, self.dyn_config).params
        self.norm = fit_normalization(r["observations"], r["actions"], r["next_observations"])
        self.env = ModelEnv.from_task(T.make("hopper"), activation="swish")
        self.elites = jnp.arange(ELITES)
        self.starts = jnp.asarray(arrays["starts"])
        self.rollout_kw = dict(env=self.env, spec=self.spec, horizon=HORIZON, penalty_coef=PENALTY,
                               log_std_min=MOPO_SAC.log_std_min, log_std_max=MOPO_SAC.log_std_max)
        self.n_rollouts = 0
        t0 = time.perf_counter()
        self._rollout_call()
        self.rollout_compile_call_s = time.perf_counter() - t0
        self._export_ensemble(ens_npz)

        batch = jax.tree.map(lambda x: x[:BATCH], self.real)
        self.update_flops = count(jax.make_jaxpr(self.agent.update)(self.state, batch).jaxpr, lambda k, b: 1, {})
        roll = lambda actor, ens, norm, elites, starts, key: model_rollout(  # noqa: E731
            actor, ens, norm, elites, starts, key, **self.rollout_kw)
        jaxpr = jax.make_jaxpr(roll)(self.state.actor, self.ens, self.norm, self.elites, self.starts,
                                     jax.random.PRNGKey(0)).jaxpr
        self.rollout_flops = count(jaxpr, lambda k, b: 1, {})
        self.n_params = {"actor": _size(jax, self.state.actor), "q": _size(jax, self.state.q),
                         "ensemble": _size(jax, self.ens)}

    def _sac_call(self):
        self.state, info = self.update_many_mixed(self.agent, self.state, self.real, self.model, self.model_rows,
                                                  SAC_UPDATES, BATCH, N_REAL_BREMEN)
        self.jax.block_until_ready((self.state, info))
        return info

    def _rollout_call(self):
        key = self.jax.random.fold_in(self.jax.random.PRNGKey(2), self.n_rollouts)
        self.n_rollouts += 1
        rows, count, info = self.model_rollout(self.state.actor, self.ens, self.norm, self.elites, self.starts, key,
                                               **self.rollout_kw)
        self.jax.block_until_ready((rows, count, info))
        return int(count), {k: float(v) for k, v in info.items()}

    def time_sac(self, calls: int) -> dict:
        rates = []
        for _ in range(calls):
            t0 = time.perf_counter()
            info = self._sac_call()
            rates.append(SAC_UPDATES / (time.perf_counter() - t0))
        return {"updates_per_s_per_call": rates, "updates_per_s": statistics.median(rates),
                "last_info": {k: float(v) for k, v in info.items()}}

    def time_rollout(self, calls: int) -> dict:
        rates, counts, info = [], [], {}
        for _ in range(calls):
            t0 = time.perf_counter()
            count, info = self._rollout_call()
            rates.append(ROLLOUT_BATCH * HORIZON / (time.perf_counter() - t0))
            counts.append(count)
        return {"steps_per_s_per_call": rates, "steps_per_s": statistics.median(rates), "transitions": counts,
                "mean_rollout_length": statistics.mean(counts) / ROLLOUT_BATCH, "last_info": info}

    def _export_ensemble(self, path: Path):
        """The ensemble and the normalization, for the kit child to load the same weights."""
        out = {"n_layers": np.asarray(len(self.ens["mlp"]))}
        for i, layer in enumerate(self.ens["mlp"]):
            out[f"w{i}"] = np.asarray(layer["w"], np.float32)
            out[f"b{i}"] = np.asarray(layer["b"], np.float32)
        out["logvar_max"] = np.asarray(self.ens["logvar_max"], np.float32)
        out["logvar_min"] = np.asarray(self.ens["logvar_min"], np.float32)
        for f in ("delta_mean", "delta_std"):
            out[f] = np.asarray(getattr(self.norm, f), np.float32)
        np.savez(path, **out)


def _size(jax, tree) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


# ----------------------------------------------------------------------------------------------- parent
def run_kit(npz: Path, ens: Path, threads: str, args, seed: int) -> dict:
    cmd = [str(KIT_PYTHON), str(HERE / "mopo_speed_kit.py"), "--npz", str(npz), "--ens", str(ens),
           "--threads", threads, "--updates", str(args.kit_updates), "--rollout-calls", str(args.rollout_calls),
           "--sac-max-seconds", str(args.kit_sac_max_seconds), "--seed", str(seed)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"OfflineRL-Kit child failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["child_wall_s"] = time.perf_counter() - t0
    return out


def versions(kit_src: str) -> dict:
    import jax
    import jaxlib

    import bremen

    child = subprocess.run([str(KIT_PYTHON), "-c", "import torch, numpy, sys; "
                            "print(torch.__version__, numpy.__version__, sys.version.split()[0])"],
                           capture_output=True, text=True)
    torch_v, np_v, py_v = child.stdout.split()[-3:]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bremen", "bench"],
                             capture_output=True, text=True)
    changed = [line[3:] for line in changed.stdout.splitlines()
               if not line[3:].startswith(("bench/results", "bench/.offlinerlkit-venv"))]
    kit_commit = subprocess.run(["git", "-C", kit_src, "rev-parse", "HEAD"], capture_output=True, text=True)
    kit_dirty = subprocess.run(["git", "-C", kit_src, "status", "--porcelain"], capture_output=True, text=True)
    return {"bremen": str(Path(bremen.__file__).parent), "bremen_commit": commit.stdout.strip(),
            "uncommitted_changes": changed, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "numpy_bremen": np.__version__, "python": platform.python_version(), "jax_backend": jax.default_backend(),
            "torch": torch_v, "numpy_kit_venv": np_v, "python_kit_venv": py_v, "offlinerlkit_src": kit_src,
            "offlinerlkit_commit": kit_commit.stdout.strip() or "unknown (not a git checkout)",
            "offlinerlkit_src_modified": bool(kit_dirty.stdout.strip()),
            "machine": platform.machine(), "cpu_count": os.cpu_count()}


def kit_source() -> str:
    out = subprocess.run([str(KIT_PYTHON), "-c", "import offlinerlkit, os; "
                          "print(os.path.dirname(os.path.dirname(offlinerlkit.__file__)))"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"offlinerlkit is not importable in {KIT_PYTHON}: rerun bench/offlinerlkit_setup.sh\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bremen-sac-calls", type=int, default=2, help="timed calls of 1000 updates per round")
    p.add_argument("--kit-updates", type=int, default=SAC_UPDATES, help="timed kit updates per round and thread count")
    p.add_argument("--kit-sac-max-seconds", type=float, default=10.0,
                   help="wall-clock cap of the kit's SAC timing with more than one torch thread (measured 10x "
                        "slower than one thread on the loaded 2-core machine)")
    p.add_argument("--rollout-calls", type=int, default=2, help="timed rollouts per round (and kit thread count)")
    p.add_argument("--torch-threads", default="auto",
                   help="comma list of torch thread counts, or auto: the affinity count and 1")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()

    if not KIT_PYTHON.exists():
        sys.exit(f"{KIT_PYTHON} is missing: run `OFFLINERLKIT_SRC=... bash bench/offlinerlkit_setup.sh` first")
    sys.path.insert(0, str(ROOT))  # the bremen of this checkout
    kit_src = kit_source()
    cores = len(os.sched_getaffinity(0))
    threads = [cores, 1] if args.torch_threads == "auto" and cores > 1 else (
        [cores] if args.torch_threads == "auto" else [int(v) for v in args.torch_threads.split(",")])
    t_start = time.perf_counter()
    results = {
        "what": "MOPO: SAC updates/s on the 5%/95% real/model minibatch and model-rollout steps/s (50,000 starts x "
                "5 steps, 7x4x200 swish Gaussian ensemble), bremen (JAX) vs OfflineRL-Kit (PyTorch), same data, "
                "same ensemble weights, same run, interleaved rounds; see bench/mopo_speed.py's docstring",
        "target_ratio": TARGET_RATIO, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args),
        "versions": versions(kit_src), "affinity_cores": cores, "torch_threads": threads,
        "jax_threads": f"XLA default (CPU thread pool over the {cores} core(s) of this process's affinity)",
        "load_avg_start": os.getloadavg(),
        "sizes": {"obs_dim": OBS_DIM, "act_dim": ACT_DIM, "real_rows": N_REAL, "model_rows": N_MODEL,
                  "batch": BATCH, "real_rows_per_batch": {"bremen": N_REAL_BREMEN, "kit": N_REAL_KIT},
                  "sac_hidden": list(HIDDEN_SAC), "sac_updates_per_timing": SAC_UPDATES,
                  "rollout_batch": ROLLOUT_BATCH, "horizon": HORIZON, "penalty_coef": PENALTY,
                  "ensemble": ENSEMBLE, "elites": ELITES, "ensemble_layers": LAYERS, "ensemble_hidden": HIDDEN},
        "flops": {"analytic": analytic_flops()}, "rounds": [], "summary": {}}
    with tempfile.TemporaryDirectory() as tmp:
        npz, ens_npz = Path(tmp) / "data.npz", Path(tmp) / "ensemble.npz"
        arrays = make_data(npz)
        bench = None
        for r in range(args.rounds):
            order = threads if r % 2 == 0 else threads[::-1]
            la0 = os.getloadavg()
            if bench is None:
                bench = BremenBench(arrays, ens_npz)
                results["bremen_setup"] = {"sac_compile_call_s": bench.sac_compile_call_s,
                                           "rollout_compile_call_s": bench.rollout_compile_call_s,
                                           "params": bench.n_params, "sac_config": {
                                               k: list(v) if isinstance(v, tuple) else v
                                               for k, v in vars(bench.sac_config).items()}}
                results["flops"]["measured"] = {
                    "sac_update": {"bremen": bench.update_flops},
                    "rollout_row_step": {"bremen": bench.rollout_flops / (ROLLOUT_BATCH * HORIZON)}}
            sac = bench.time_sac(args.bremen_sac_calls)
            roll = bench.time_rollout(args.rollout_calls)
            la1 = os.getloadavg()
            kit = run_kit(npz, ens_npz, ",".join(map(str, order)), args, seed=r)
            la2 = os.getloadavg()
            per = kit["per_threads"]
            best_sac = max(per, key=lambda k: per[k]["updates_per_s"])
            best_roll = max(per, key=lambda k: per[k]["rollout_steps_per_s"])
            results["flops"]["measured"]["sac_update"]["kit"] = kit["matmul_flops_per_update"]
            results["flops"]["measured"]["rollout_row_step"]["kit"] = kit["matmul_flops_per_rollout_row_step"]
            results["kit_setup"] = {k: kit[k] for k in ("stubbed", "kit_root", "real_rows_per_batch",
                                                        "fake_rows_per_batch", "params", "torch_interop_threads")}
            rnd = {"round": r, "kit_thread_order": order,
                   "bremen": {"sac": sac, "rollout": roll},
                   "kit": {"per_threads": per, "best_threads_sac": int(best_sac),
                           "best_threads_rollout": int(best_roll), "child_wall_s": kit["child_wall_s"]},
                   "ratio_sac": sac["updates_per_s"] / per[best_sac]["updates_per_s"],
                   "ratio_rollout": roll["steps_per_s"] / per[best_roll]["rollout_steps_per_s"],
                   "load_avg_before_bremen": la0, "load_avg_before_kit": la1, "load_avg_after_kit": la2}
            results["rounds"].append(rnd)
            print(f"round {r}: SAC bremen {sac['updates_per_s']:.0f}/s, kit "
                  + ", ".join(f"{k} thr {v['updates_per_s']:.0f}/s" for k, v in per.items())
                  + f" (x{rnd['ratio_sac']:.2f}); rollout bremen {roll['steps_per_s']:.0f} steps/s (len "
                  f"{roll['mean_rollout_length']:.2f}), kit "
                  + ", ".join(f"{k} thr {v['rollout_steps_per_s']:.0f}/s (len {v['mean_rollout_length']:.2f})"
                              for k, v in per.items())
                  + f" (x{rnd['ratio_rollout']:.2f}); load {os.getloadavg()[0]:.1f}, "
                  f"t={time.perf_counter() - t_start:.0f}s", flush=True)
            _write(results, args.out)  # partial results survive an interrupted run

    results["summary"] = summarize(results)
    results["load_avg_end"] = os.getloadavg()
    results["total_wall_s"] = time.perf_counter() - t_start
    _write(results, args.out)
    for name, s in results["summary"].items():
        if isinstance(s, dict) and "ratio_median" in s:
            print(f"{name}: bremen median {s['bremen_median']:.0f} (best {s['bremen_best']:.0f}), kit median "
                  f"{s['kit_median']:.0f} (best {s['kit_best']:.0f}) {s['unit']}; ratio per round "
                  + ", ".join(f"{v:.2f}" for v in s["ratio_per_round"])
                  + f", median {s['ratio_median']:.2f} (target >= {TARGET_RATIO}: "
                  f"{'met' if s['target_met'] else 'NOT met'}); matmul work per unit bremen/kit "
                  f"{s['work_ratio_bremen_over_kit']:.2f}, GFLOP/s bremen {s['matmul_gflops_per_s']['bremen']:.1f}, "
                  f"kit {s['matmul_gflops_per_s']['kit']:.1f}")
    print(f"wrote {args.out} in {results['total_wall_s']:.0f} s")


def summarize(results: dict) -> dict:
    rounds = results["rounds"]
    measured = results["flops"]["measured"]
    out = {}
    for name, unit, b_get, k_get, k_best, ratio_key, flops in (
            ("sac", "updates/s", lambda r: r["bremen"]["sac"]["updates_per_s"],
             lambda r, k: r["kit"]["per_threads"][k]["updates_per_s"], "best_threads_sac", "ratio_sac",
             measured["sac_update"]),
            ("rollout", "steps/s (50,000x5 nominal per call)", lambda r: r["bremen"]["rollout"]["steps_per_s"],
             lambda r, k: r["kit"]["per_threads"][k]["rollout_steps_per_s"], "best_threads_rollout",
             "ratio_rollout", measured["rollout_row_step"])):
        b = [b_get(r) for r in rounds]
        kb = [k_get(r, str(r["kit"][k_best])) for r in rounds]
        per_k = {k: [k_get(r, k) for r in rounds] for k in rounds[0]["kit"]["per_threads"]}
        ratios = [r[ratio_key] for r in rounds]
        bm, km = statistics.median(b), statistics.median(kb)
        out[name] = {"unit": unit, "bremen_per_round": b, "kit_best_threads_per_round": kb,
                     "kit_per_threads_per_round": per_k, "bremen_best": max(b), "bremen_median": bm,
                     "kit_best": max(kb), "kit_median": km, "ratio_per_round": ratios,
                     "ratio_median": statistics.median(ratios), "ratio_of_medians": bm / km,
                     "ratio_of_bests": max(b) / max(kb), "target_met": statistics.median(ratios) >= TARGET_RATIO,
                     "work_ratio_bremen_over_kit": flops["bremen"] / flops["kit"],
                     "matmul_gflops_per_s": {"bremen": bm * flops["bremen"] / 1e9, "kit": km * flops["kit"] / 1e9}}
    roll = out["rollout"]
    lengths = {"bremen": statistics.mean(r["bremen"]["rollout"]["mean_rollout_length"] for r in rounds),
               "kit": statistics.mean(v["mean_rollout_length"] for r in rounds
                                      for v in r["kit"]["per_threads"].values())}
    roll["mean_rollout_length"] = lengths
    # bremen computes every row at every step (its measured count is of all 50,000x5 row-steps); the kit only the
    # rows still alive: its matmul work per nominal step is scaled by mean_rollout_length / 5.
    kit_work = measured["rollout_row_step"]["kit"] * lengths["kit"] / HORIZON
    roll["work_ratio_bremen_over_kit"] = measured["rollout_row_step"]["bremen"] / kit_work
    roll["matmul_gflops_per_s"]["kit"] = roll["kit_median"] * kit_work / 1e9
    roll["note"] = ("steps/s are nominal (50,000x5 per call) on both sides; the kit computes only the rows still "
                    "alive, bremen every row at every step: work_ratio and the kit's GFLOP/s use the kit's "
                    "measured per-row-step FLOPs times mean_rollout_length / 5")
    return out


def _write(results: dict, path: str):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
