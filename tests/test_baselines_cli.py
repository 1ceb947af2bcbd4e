"""The model-free baselines through offline.py / recursive.py: runs, exact resume, and bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error

ROOT = Path(__file__).resolve().parent.parent
TIMING = ("time_train", "time_eval", "time_total")


def script(name, *args):
    return subprocess.run([sys.executable, str(ROOT / name), *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def smoke(data, run_dir, algorithm, *extra):
    return ["--env", "hopper", "--preset", "smoke", "--seed", "0", "--data_path", data, "--log_dir", run_dir,
            "--algorithm", algorithm, *extra]


def progress(run_dir):
    with open(run_dir / "progress.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


@pytest.mark.parametrize("args, fragments", [
    (["--algorithm", "bcqq"], ["--algorithm 'bcqq' is not one of", "bremen", "bcq", "bear", "brac_dual"]),
    (["--algorithm", "bcq", "--lagrange_thresh", "5"], ["--lagrange_thresh is an option of bear, not of bcq"]),
    (["--algorithm", "bremen", "--mmd_sigma", "5"], ["--mmd_sigma is an option of bear"]),
    (["--algorithm", "bear", "--lagrange_thresh", "-1"], ["bear:", "lagrange_thresh"]),
    (["--algorithm", "bear", "--kernel_type", "cosine"], ["bear:", "cosine", "laplacian", "gaussian"]),
    (["--algorithm", "brac_primal", "--alpha", "-1"], ["--alpha must be >= 0"]),
    (["--algorithm", "brac_primal", "--set", "algo.alpha=-2"], ["brac_primal: alpha must be >= 0, got -2.0"]),
    (["--algorithm", "brac_primal", "--set", "algo.divergence=w"], ["brac_primal: unknown divergence 'w'; valid: kl, mmd"]),
    (["--algorithm", "bcq", "--set", "algo.no_such_key=1"], ["no_such_key", "is not a setting of BCQConfig"]),
    (["--algorithm", "bremen", "--set", "algo.batch_size=64"], ["algo.* settings belong to bc,", "bremen is set through the flags"]),
    (["--algorithm", "brac_primal", "--behavior_ckpt_file", "weights/walker2d"],
     ["--behavior_ckpt_file weights/walker2d: the policy has obs_dim 17 and act_dim 6 (task walker2d), task hopper "
      "has 11 and 3"]),
    (["--algorithm", "brac_primal", "--behavior_ckpt_file", "no/such/run"], ["no exported policy there"]),
    (["--algorithm", "brac_dual", "--behavior_ckpt_file", "weights/hopper"], ["brac_dual has no behavior policy"]),
])
def test_bad_baseline_input_is_one_line_and_creates_nothing(hopper_data, tmp_path, args, fragments):
    out = script("offline.py", "--env", "hopper", "--preset", "smoke", "--seed", "0", "--data_path", hopper_data,
                 "--log_dir", tmp_path / "run", *args)
    one_line_error(out, *fragments)
    assert not (tmp_path / "run").exists()


def test_offline_bcq_resumes_exactly_after_sigkill(hopper_data, tmp_path):
    extra = ["--set", "algo.steps=600"]
    full = script("offline.py", *smoke(hopper_data, tmp_path / "full", "bcq", *extra))
    assert full.returncode == 0, full.stderr[-3000:]
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["algorithm"] == "bcq" and summary["updates"] == 600
    assert len(progress(tmp_path / "full")) == 6

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "offline.py"), *map(str, smoke(hopper_data, killed, "bcq",
                                                                                       *extra))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (killed / "progress.csv").exists() and len(progress(killed)) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(progress(killed)) < 6
    resumed = script("offline.py", *smoke(hopper_data, killed, "bcq", *extra, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert progress(killed) == progress(tmp_path / "full")
    a, b = (np.load(d / "policy_final" / "policy.npz") for d in (tmp_path / "full", killed))
    assert set(a.files) == set(b.files) and {"proposal/layers/0/w", "perturb/layers/0/w", "q/layers/0/w"} <= set(a.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_recursive_brac_trains_on_the_data_so_far(tmp_path):
    out = script("recursive.py", "--env", "hopper", "--preset", "smoke", "--seed", "0", "--algorithm", "brac_primal",
                 "--log_dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "r" / "deployments.csv")))
    assert [int(r["real_samples"]) for r in rows] == [1000, 2000, 3000]
    assert all(np.isfinite(float(r["final_return"])) for r in rows)
    prog = list(csv.DictReader(open(tmp_path / "r" / "progress.csv")))
    # smoke: 100 behavior-cloning + 200 BRAC updates per deployment, evaluated every 100
    assert [int(r["deployment"]) for r in prog] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    agent = list(csv.DictReader(open(tmp_path / "r" / "agent.csv")))
    assert [float(r["behavior_phase"]) for r in agent][:4] == [1.0, 0.0, 0.0, 1.0]  # π_b re-cloned each deployment
    assert (tmp_path / "r" / "policy_deployment2" / "policy.json").is_file()


def test_recursive_sac_collects_with_its_own_actor(tmp_path):
    out = script("recursive.py", "--env", "hopper", "--preset", "smoke", "--seed", "0", "--algorithm", "sac",
                 "--log_dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr[-3000:]
    from bremen.data import load_dataset

    meta = load_dataset(str(tmp_path / "r" / "deployments" / "deployment_1.h5")).metadata
    assert meta["policy"] == "sac after deployment 0"
    assert meta["sampling_noise"] == "the tanh_gaussian policy's own samples"
    rows = list(csv.DictReader(open(tmp_path / "r" / "deployments.csv")))
    assert [int(r["real_samples"]) for r in rows] == [1000, 2000, 3000]
    agent = list(csv.DictReader(open(tmp_path / "r" / "agent.csv")))
    assert {"q_loss", "actor_loss", "alpha"} <= set(agent[0]) and len(agent) == 6  # 2 chunks per deployment
    assert all(np.isfinite(float(r["q_loss"])) for r in agent)


def test_brac_takes_its_behavior_policy_from_a_file(hopper_data, tmp_path):
    """--behavior_ckpt_file: π_b is the given policy (here the shipped hopper behavior policy), no cloning phase."""
    out = script("offline.py", *smoke(hopper_data, tmp_path / "r", "brac_primal", "--behavior_ckpt_file",
                                      ROOT / "weights" / "hopper"))
    assert out.returncode == 0, out.stderr[-3000:]
    agent = list(csv.DictReader(open(tmp_path / "r" / "agent.csv")))
    assert [float(r["behavior_phase"]) for r in agent] == [0.0, 0.0] and int(agent[-1]["updates"]) == 200
    params = json.loads((tmp_path / "r" / "params.json").read_text())["agent"]
    assert params["behavior_steps"] == 0 and params["behavior_hidden"] == [200, 200]
    from bremen.io.checkpoint import load_checkpoint

    arrays, _ = load_checkpoint(tmp_path / "r" / "checkpoint.npz")
    shipped = np.load(ROOT / "weights" / "hopper" / "policy.npz")
    np.testing.assert_array_equal(arrays["agent/.behavior[0]['w']"], shipped["layers/0/w"])


def test_a_dataset_of_another_task_is_one_line_and_creates_nothing(hopper_data, tmp_path):
    out = script("offline.py", "--env", "walker2d", "--preset", "smoke", "--seed", "0", "--data_path", hopper_data,
                 "--log_dir", tmp_path / "run", "--algorithm", "bc")
    one_line_error(out, "do not match task 'walker2d'")
    assert not (tmp_path / "run").exists()
