"""--policy_validation (ME-TRPO's model-side stopping rule, bremen.algos.policy_validation): the per-member
returns by hand, the rule's counting, a run that stops and goes back, its resume, and its bad settings."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos import policy_validation as pv
from bremen.models.model_env import ModelEnv
from bremen.models.normalizer import Normalization, running_stats_init
from bremen.models.policy import policy_init

ROOT = Path(__file__).resolve().parent.parent


def constant_members(drifts):
    """Members that ignore their input and move state 0 by ``drifts[k]`` per step (one linear layer, w = 0)."""
    k = len(drifts)
    b = np.zeros((k, 2), np.float32)
    b[:, 0] = drifts
    return [{"w": jnp.zeros((k, 3, 2)), "b": jnp.asarray(b)}]


IDENTITY = Normalization(*(jnp.asarray(v, jnp.float32) for v in
                           (np.zeros(2), np.ones(2), np.zeros(1), np.ones(1), np.zeros(2), np.ones(2), 0.0, 1.0)))


def returns_of(drifts, env, horizon=4, n_envs=3):
    policy = policy_init(jax.random.PRNGKey(0), 2, 1, (8,), 0)
    return np.asarray(pv.member_returns(policy, running_stats_init(2), constant_members(drifts), IDENTITY,
                                        jnp.zeros((5, 2)), jax.random.PRNGKey(1), env=env, n_envs=n_envs,
                                        horizon=horizon, sampling_std=0.1, const_sampling=True))


def test_member_returns_are_each_members_own_return_by_hand():
    # reward = state 0 after the step; from 0 with drift c: c + 2c + 3c + 4c over H = 4
    env = ModelEnv(reward_fn=lambda s, a, s2: s2[..., 0])
    np.testing.assert_allclose(returns_of([1.0, -1.0, 0.5], env), [10.0, -10.0, 5.0], rtol=1e-6)
    # an episode that terminates counts up to its last step only (no reset after it): 1 + 2 + 3 for drift 1
    stop = ModelEnv(reward_fn=lambda s, a, s2: s2[..., 0], termination_fn=lambda s2: s2[..., 0] > 2.5)
    np.testing.assert_allclose(returns_of([1.0, 0.5], stop), [6.0, 5.0], rtol=1e-6)


def state(ref):
    zero = jnp.zeros((), jnp.int32)
    return pv.ValidationState(jnp.asarray(ref, jnp.float32), "ref policy", "ref stats", zero, jnp.zeros((), bool),
                              jax.random.PRNGKey(0), zero)


def test_check_passes_at_the_threshold_counts_misses_in_a_row_and_stops_at_patience():
    s = state([1.0, 2.0, 3.0])
    # 2 of 3 members improved: a miss at 0.7, a pass at 0.6 (which makes the current policy the reference)
    missed, ratio, stop = pv.check(s, jnp.asarray([2.0, 1.0, 4.0]), "new", "new stats", 0.7, 2)
    assert ratio == pytest.approx(2 / 3) and not stop and int(missed.misses) == 1
    assert missed.ref_policy == "ref policy" and list(missed.ref_returns) == [1.0, 2.0, 3.0]
    passed, _, stop = pv.check(missed, jnp.asarray([2.0, 1.0, 4.0]), "new", "new stats", 0.6, 2)
    assert not stop and int(passed.misses) == 0 and passed.ref_policy == "new" and passed.ref_stats == "new stats"
    assert list(passed.ref_returns) == [2.0, 1.0, 4.0]
    # equal is not better; the second miss in a row reaches patience 2
    again, ratio, stop = pv.check(missed, jnp.asarray([1.0, 2.0, 3.0]), "newer", None, 0.7, 2)
    assert ratio == 0.0 and stop and bool(again.stopped) and again.ref_policy == "ref policy"


def command(run: Path, data: Path, *extra) -> list:
    return [sys.executable, str(ROOT / "offline.py"), "--env", "hopper", "--preset", "smoke", "--seed", "0",
            "--data_path", str(data), "--log_dir", str(run), *extra]


def progress(run: Path) -> list[dict]:
    with open(run / "progress.csv") as f:
        return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in csv.DictReader(f)]


def test_a_run_stops_where_the_members_disagree_goes_back_and_resumes_identically(hopper_data, tmp_path):
    # every member must see an improvement after each 2-iteration chunk, or TRPO stops at once: on a smoke
    # ensemble of random hopper data that fails at some check
    flags = ("--onpol_iters", "4", "--policy_validation", "1.0", "--validation_patience", "1")
    full = tmp_path / "full"
    out = subprocess.run(command(full, hopper_data, *flags), capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = progress(full)
    stopped = [r["validation_stopped"] == "True" for r in rows]
    assert any(stopped), "no check stopped TRPO at RATIO 1.0: the test needs another seed"
    first = stopped.index(True)
    assert all(stopped[first:]), "a stop lasts to the end of the deployment"
    assert float(rows[first]["validation_ratio"]) < 1.0
    for r in rows[first + 1:]:  # no TRPO after the stop: nothing logged, nothing counted
        assert r["kl_after"] == "nan" and r["validation_ratio"] == "nan"
        assert r["trpo_iterations"] == rows[first]["trpo_iterations"]
    with open(full / "trpo.csv") as f:
        assert {int(r["Iteration"]) for r in csv.DictReader(f)} == set(range(first + 1))
    # back to the last policy that passed: BC's at the first check, else the policy after outer iteration
    # first - 1, which the same run cut to `first` outer iterations exports as its final one
    if first == 0:
        reference = full / "policy_bc"
    else:
        cut = tmp_path / "cut"
        out = subprocess.run(command(cut, hopper_data, *flags[2:], "--onpol_iters", str(first)), capture_output=True,
                             text=True, timeout=600, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        reference = cut / "policy_final"
    with np.load(full / "policy_final" / "policy.npz") as a, np.load(reference / "policy.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)

    # a kill after the first outer iteration, then --resume: the same logs and policy
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed, hopper_data, *flags), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 300
    while not (killed / "progress.csv").exists() or len((killed / "progress.csv").read_bytes().splitlines()) < 2:
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first outer iteration"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = subprocess.run(command(killed, hopper_data, *flags, "--resume"), capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert progress(killed) == rows
    with np.load(full / "policy_final" / "policy.npz") as a, np.load(killed / "policy_final" / "policy.npz") as b:
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("extra,says", [
    (("--policy_validation", "1.5"), "--policy_validation is a share"),
    (("--policy_validation", "0.7", "--validation_patience", "0"), "--validation_patience must be at least 1"),
    (("--policy_validation", "0.7", "--algorithm", "mopo"), "--policy_validation watches TRPO"),
])
def test_bad_validation_settings_are_one_line(hopper_data, tmp_path, extra, says):
    run = tmp_path / "run"
    out = subprocess.run(command(run, hopper_data, *extra), capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not run.exists()
