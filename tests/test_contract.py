"""One contract for every algorithm on the one run driver: a run SIGKILLed in any phase and continued with
``--resume`` ends identical to an uninterrupted run (progress.csv, the learner's own log, deployments.csv, the
final policy), offline and deployment-limited, at smoke size.

The kill lands while a phase runs: the ensemble fit (its dynamics.csv has a row), BC (bc.csv has a row),
the policy updates (progress.csv has a row: a later chunk, its evaluation or the deployment's report), or a
recursive run's second collection. The whole matrix is marked slow; CI runs one case per model-free
algorithm and one each for MOPO and MOReL (BREMEN and ME-TRPO have their own resume tests in test_offline.py
and test_recursive.py).
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_BASED = ("bremen", "me_trpo", "mopo", "morel")
MODEL_FREE = ("bc", "bcq", "bear", "brac_primal", "brac_dual", "sac")
DROP = {"peak_rss_mb"}  # and every time_* column


def phases(algorithm: str, script: str) -> list[str]:
    out = ["model", "updates"] if algorithm == "mopo" else ["model", "bc", "updates"] if algorithm in MODEL_BASED \
        else ["updates"]
    return out + ["collection"] if script == "recursive" else out


# one case per model-free algorithm in CI, alternating the scripts
CI_CASES = {("bc", "recursive", "collection"), ("bcq", "offline", "updates"), ("bear", "recursive", "updates"),
            ("brac_primal", "offline", "updates"), ("brac_dual", "recursive", "collection"),
            ("sac", "offline", "updates"), ("mopo", "recursive", "updates"), ("morel", "offline", "updates")}
CASES = [pytest.param(a, s, p, marks=() if (a, s, p) in CI_CASES else pytest.mark.slow, id=f"{a}-{s}-{p}")
         for a in MODEL_BASED + MODEL_FREE for s in ("offline", "recursive") for p in phases(a, s)]


def command(algorithm: str, script: str, run: Path, data: Path) -> list[str]:
    args = [sys.executable, str(ROOT / f"{script}.py"), "--env", "hopper", "--preset", "smoke", "--seed", "0",
            "--algorithm", algorithm, "--log_dir", str(run)]
    return args + (["--data_path", str(data)] if script == "offline" else [])


def has_row(path: Path) -> bool:
    try:
        return len(path.read_bytes().splitlines()) >= 2
    except FileNotFoundError:
        return False


def reached(phase: str, run: Path, err: Path) -> bool:
    if phase == "collection":
        return b"deployment 1: collecting" in err.read_bytes()
    return has_row(run / {"model": "dynamics.csv", "bc": "bc.csv", "updates": "progress.csv"}[phase])


def kill_in(phase: str, cmd: list, run: Path, err: Path, timeout: float = 300) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(err, "wb"), cwd=ROOT)
    deadline = time.time() + timeout
    while not reached(phase, run, err):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before its {phase} phase (rc {proc.poll()}): "
                        f"{err.read_text()[-2000:]}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run / "summary.json").exists() is False, f"the run had finished before the kill in {phase}"


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in r.items() if not k.startswith("time_") and k not in DROP} for r in csv.DictReader(f)]


_full: dict = {}


def full_run(algorithm: str, script: str, data: Path, root: Path) -> Path:
    """The uninterrupted run of (algorithm, script), made once per test process."""
    key = (algorithm, script)
    if key not in _full:
        run = root / f"{algorithm}-{script}-full"
        out = subprocess.run(command(algorithm, script, run, data), capture_output=True, text=True, timeout=900,
                             cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        _full[key] = run
    return _full[key]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("contract")


@pytest.mark.parametrize("algorithm,script,phase", CASES)
def test_kill_in_any_phase_then_resume_ends_as_an_uninterrupted_run(algorithm, script, phase, hopper_data,
                                                                     runs_root, tmp_path):
    full = full_run(algorithm, script, hopper_data, runs_root)
    run = tmp_path / "killed"
    cmd = command(algorithm, script, run, hopper_data)
    kill_in(phase, cmd, run, tmp_path / "stderr.txt")
    out = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not list(run.rglob(".*.tmp")) + list(run.rglob(".*.old")), "the resume cleared what the kill cut short"
    logs = ["progress.csv", "dynamics.csv"] if algorithm == "mopo" else \
        ["progress.csv", "trpo.csv" if algorithm in MODEL_BASED else "agent.csv"]
    logs += ["deployments.csv"] if script == "recursive" else []
    for name in logs:
        assert rows(run / name) == rows(full / name), f"{name} differs after a kill in {phase}"
    if script == "recursive":  # the time spent before the kill is counted too
        phases_timed = (("time_model", "time_train") if algorithm == "mopo" else
                        ("time_model", "time_bc", "time_trpo") if algorithm in MODEL_BASED else ("time_train",))
        with open(run / "deployments.csv") as f:
            for r in csv.DictReader(f):
                assert all(r[k] not in ("", "0.0") for k in phases_timed + ("time_eval", "time_total")), r
    with np.load(full / "policy_final" / "policy.npz") as a, np.load(run / "policy_final" / "policy.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


class SameNoise:
    """A NumPy-generator stand-in whose standard normals are given: the exported argmax-Q policy draws
    [B, n, d], the agent [n, B, d] from its key."""

    def __init__(self, eps):
        self.eps = np.asarray(eps, np.float32).transpose(1, 0, 2)

    def standard_normal(self, shape, dtype=np.float32):
        assert tuple(shape) == self.eps.shape, (shape, self.eps.shape)
        return self.eps.astype(dtype)


@pytest.mark.parametrize("algorithm,settings", [(a, {}) for a in MODEL_FREE] + [("brac_primal", {"eval_policy": "max_q"})],
                         ids=[*MODEL_FREE, "brac_primal-max_q"])
def test_the_exported_policy_acts_as_the_agent(algorithm, settings, tmp_path):
    """policy_final/ as a user loads it takes the agent's own test-time actions: the same deterministic action,
    or, for an argmax-Q policy, the same best proposal given the same noise."""
    import jax

    import bremen.tasks as T
    from bremen.algos import registry
    from bremen.algos.agent import batch_from_arrays, update_many
    from bremen.io.policy_io import load_policy, policy_from_export, save_policy
    from bremen.learners.actor_critic import spec_of

    task = T.make("hopper")
    agent = registry.make_agent(algorithm, spec_of(task), registry.agent_config(algorithm, "smoke", settings=settings))
    rng = np.random.default_rng(0)
    n = 512
    obs = rng.normal(size=(n, task.obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, task.act_dim)).astype(np.float32)
    data = batch_from_arrays(obs, act, rng.normal(size=n), obs + 0.01 * rng.normal(size=obs.shape),
                             np.zeros(n, bool))
    state, _ = update_many(agent, agent.init(jax.random.PRNGKey(0)), data, 50, 64)
    fields, arrays = agent.export(state)
    save_policy(tmp_path / "p", policy_from_export(fields, arrays, {"algorithm": algorithm}), {"task": "hopper"})
    policy = load_policy(tmp_path / "p")

    x = obs[:64]
    key = jax.random.PRNGKey(7)
    want = np.asarray(agent.act(state, x, key))
    if fields["kind"] == "argmax_q":
        dim = fields["latent_dim"] if fields["proposal"] == "vae" else task.act_dim
        eps = jax.random.normal(key, (fields["n_samples"], len(x), dim))
        got = policy.act(x, deterministic=True, rng=SameNoise(eps))
    else:
        got = policy.act(x, deterministic=True)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
    assert np.std(want, axis=0).min() > 1e-3, "the actions depend on the observation"


def test_a_resume_removes_what_killed_atomic_writes_left_and_keeps_the_rest(tmp_path):
    from bremen.run.directory import prepare_run_dir

    run = tmp_path / "run"
    (run / "policy_best").mkdir(parents=True)
    for name in ("checkpoint.npz", "params.json", "progress.csv", "policy_best/policy.json"):
        (run / name).write_text("x")
    stale = [run / ".checkpoint.npz.0a1b.tmp", run / "deployments" / ".deployment_1.h5.2c3d.tmp"]
    stale[1].parent.mkdir()
    for f in stale:
        f.write_text("partial")
    (run / ".policy_best.4e5f.tmp").mkdir()
    (run / ".policy_final.6a7b.old").mkdir()
    assert prepare_run_dir(run, resume=True, force=False) is True
    assert not list(run.rglob(".*.tmp")) + list(run.rglob(".*.old"))
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) == [
        "checkpoint.npz", "params.json", "policy_best/policy.json", "progress.csv"]
