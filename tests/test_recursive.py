"""recursive.py end to end with the smoke preset: deployments, logs, exact resume, bad input."""

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

from bremen.run.driver import TIMING_KEYS

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["--env", "hopper", "--preset", "smoke", "--seed", "0"]


def recursive(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "recursive.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def rows(path: Path, drop=TIMING_KEYS):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k not in drop and not k.startswith("time_") and k != "peak_rss_mb"}
                for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("recursive") / "full"
    out = recursive(*SMOKE, "--log_dir", run)
    assert out.returncode == 0, out.stderr[-3000:]
    return run, out


def test_smoke_run_collects_each_deployment_once_and_logs_it(full_run):
    from bremen.data import load_dataset

    run, out = full_run
    dep = rows(run / "deployments.csv")
    assert [r["deployment"] for r in dep] == ["0", "1", "2"]
    assert [r["real_samples"] for r in dep] == ["1000", "2000", "3000"]
    prog = rows(run / "progress.csv")
    assert [(r["Iteration"], r["deployment"], r["real_samples"]) for r in prog] == [
        ("0", "0", "1000"), ("1", "1", "2000"), ("2", "2", "3000")]
    for d in range(3):
        ds = load_dataset(str(run / "deployments" / f"deployment_{d}.h5"))
        assert len(ds) == 1000 and ds.metadata["deployment"] == d
        assert (ds.metadata["policy"] == "uniform random") == (d == 0)
        assert float(dep[d]["deployed_return"]) == pytest.approx(float(prog[d]["deployed_return"]))
    assert (run / "deployments.png").stat().st_size > 10_000
    summary = json.loads((run / "summary.json").read_text())
    assert summary["deployments"] == 3 and summary["real_samples"] == 3000 and len(summary["deployment_returns"]) == 3
    assert (run / "policy_final" / "policy.json").is_file()
    assert out.stdout.splitlines()[0].split()[:3] == ["task", "algorithm", "seed"]


def test_bremen_deploys_a_policy_that_differs_from_random_actions(full_run):
    from bremen.data import load_dataset

    run, _ = full_run
    first, second = (load_dataset(str(run / "deployments" / f"deployment_{d}.h5")) for d in (0, 1))
    # uniform random actions have std 0.577; BC-initialized policies with 0.1 sampling noise are narrower
    assert first.actions.std() == pytest.approx(1 / np.sqrt(3), abs=0.03)
    assert second.actions.std() < 0.5


def kill_when(args, log: Path, marker: str, timeout=300):
    proc = subprocess.Popen([sys.executable, str(ROOT / "recursive.py"), *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"), cwd=ROOT)
    deadline = time.time() + timeout
    while marker.encode() not in log.read_bytes():
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("marker", ["deployment 1: collecting", "deployment 1: 2000 real samples"])
def test_resume_after_kill_matches_an_uninterrupted_run(marker, full_run, tmp_path):
    full, _ = full_run
    run = tmp_path / "killed"
    kill_when([*SMOKE, "--log_dir", run], tmp_path / "err.txt", marker)
    out = recursive(*SMOKE, "--log_dir", run, "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not list(run.rglob(".*.tmp")), "the resume cleared what the kill cut short"
    assert rows(run / "progress.csv") == rows(full / "progress.csv")
    assert rows(run / "deployments.csv") == rows(full / "deployments.csv")
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (full, run))
    assert (sa["final_return"], sa["eval_return"]) == (sb["final_return"], sb["eval_return"])
    from bremen.data import load_dataset

    for d in range(3):
        a, b = (load_dataset(str(r / "deployments" / f"deployment_{d}.h5")) for r in (full, run))
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
    pa, pb = (np.load(r / "policy_final" / "policy.npz") for r in (full, run))
    for k in pa.files:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


@pytest.mark.parametrize("extra,fragment", [
    (["--deployments", "0"], "--deployments must be positive"),
    (["--batch_size", "500"], "--batch_size 500"),
    (["--batch_size", "-1000"], "--batch_size -1000"),
    (["--deployments", "4", "--onpol_iters", "7"], "give one of --deployments and --onpol_iters"),
    (["--n_train", "100"], "less than one 1000-step path"),
    (["--log_dir", "/proc/bremen_run"], "cannot write there"),
    (["--data_path", "nope/none.h5"], "no such dataset"),
])
def test_bad_input_is_one_line_error(extra, fragment, tmp_path):
    args = [*SMOKE, *extra] if "--log_dir" in extra else [*SMOKE, "--log_dir", tmp_path / "r", *extra]
    one_line_error(recursive(*args), fragment)
    assert not (tmp_path / "r" / "deployments").exists()


def test_resume_with_other_settings_is_refused(full_run):
    full, _ = full_run
    before = (full / "deployments.csv").read_bytes(), (full / "checkpoint.npz").read_bytes()
    one_line_error(recursive(*SMOKE, "--log_dir", full, "--resume", "--target_kl", "0.2"),
                   "was started with other settings", "flags.target_kl: 0.05 -> 0.2", "params.json")
    assert ((full / "deployments.csv").read_bytes(), (full / "checkpoint.npz").read_bytes()) == before


def test_resume_refuses_a_run_of_the_other_script(full_run, hopper_data, tmp_path):
    full, _ = full_run
    out = subprocess.run([sys.executable, str(ROOT / "offline.py"), *SMOKE, "--data_path", str(hopper_data),
                          "--log_dir", str(tmp_path / "off"), "--onpol_iters", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    one_line_error(recursive(*SMOKE, "--log_dir", tmp_path / "off", "--resume"), "offline run", "offline.py")
    out = subprocess.run([sys.executable, str(ROOT / "offline.py"), *SMOKE, "--data_path", str(hopper_data),
                          "--log_dir", str(full), "--resume"], capture_output=True, text=True)
    one_line_error(out, "recursive run", "recursive.py")


# The original README's recursive commands (ORIGINAL.md §2.2): n_train / onpol_iters / interval per task.
ORIGINAL_COMMANDS = {
    "ant": ["--target_kl", "0.05", "--max_path_length", "250"],
    "half_cheetah": ["--target_kl", "0.1", "--max_path_length", "250"],
    "cheetah_run": ["--target_kl", "0.1", "--max_path_length", "250"],
    "hopper": ["--target_kl", "0.05", "--max_path_length", "1000", "--n_train", "2000000", "--onpol_iters", "2400",
               "--interval", "240"],
    "walker2d": ["--target_kl", "0.05", "--max_path_length", "1000", "--n_train", "2000000", "--onpol_iters", "800"],
}


@pytest.mark.parametrize("env", list(ORIGINAL_COMMANDS))
def test_original_readme_recursive_commands_resolve_to_their_deployment_plan(env, tmp_path):
    from bremen.cli.recursive import build_parser
    from bremen.experiment import resolve

    cmd = ["--env", env, "--exp_name", f"{env}_recursive", "--param_path", f"configs/params_{env}_offline.json",
           "--bc_init", *ORIGINAL_COMMANDS[env], "--random_seeds", "0", "--gaussian", "0.1", "--const_sampling"]
    exp = resolve(build_parser().parse_args(cmd + ["--log_dir", str(tmp_path)]), "recursive")[0]
    deployments = 10 if env in ("hopper", "walker2d") else 5
    assert (exp.flags["deployments"], exp.flags["batch_size"]) == (deployments, 200_000)
    assert exp.trpo.target_kl == float(ORIGINAL_COMMANDS[env][1]) and exp.flags["bc_init"]


@pytest.mark.parametrize("env", list(ORIGINAL_COMMANDS))
def test_original_readme_recursive_commands_run_unchanged_under_smoke(env, tmp_path):
    """Each README command with only ``--preset smoke --log_dir`` added runs: the deployments it asks for (hopper
    and walker2d give their plan; the others leave it to the preset, and smoke's is 3), one path each."""
    cmd = ["--env", env, "--exp_name", f"{env}_recursive", "--param_path", f"configs/params_{env}_offline.json",
           "--bc_init", *ORIGINAL_COMMANDS[env], "--random_seeds", "0", "--gaussian", "0.1", "--const_sampling"]
    out = recursive(*cmd, "--preset", "smoke", "--log_dir", tmp_path / "run")
    assert out.returncode == 0, out.stderr[-2000:]
    deployments = 10 if env in ("hopper", "walker2d") else 3
    rows = list(csv.DictReader(open(tmp_path / "run" / "deployments.csv")))
    assert [int(r["deployment"]) for r in rows] == list(range(deployments))
    assert len(list((tmp_path / "run" / "deployments").glob("deployment_*.h5"))) == deployments
    params = json.loads((tmp_path / "run" / "params.json").read_text())
    assert params["flags"]["target_kl"] == float(ORIGINAL_COMMANDS[env][1]) and params["flags"]["bc_init"]


def test_every_deployment_ends_with_a_ten_episode_evaluation_and_its_policy(full_run):
    full, _ = full_run
    rows = list(csv.DictReader(open(full / "deployments.csv")))
    for r in rows:
        assert int(r["final_episodes"]) == 10 and float(r["final_return_stderr"]) >= 0
        assert float(r["peak_rss_mb"]) > 100
        meta = json.loads((full / f"policy_deployment{r['deployment']}" / "policy.json").read_text())
        assert meta["return"]["episode_mean"] == pytest.approx(float(r["final_return"]), rel=1e-5)
    summary = json.loads((full / "summary.json").read_text())
    assert summary["deployment_returns"] == pytest.approx([float(r["final_return"]) for r in rows], rel=1e-5)
    # the final return is the last deployment's 10-episode one everywhere; the last outer iteration's own is eval_return
    assert summary["final_return"] == pytest.approx(float(rows[-1]["final_return"]), rel=1e-5)
    assert summary["final_return_stderr"] == pytest.approx(float(rows[-1]["final_return_stderr"]), rel=1e-5)
    assert summary["eval_return"] == pytest.approx(float(rows[-1]["eval_return"]), rel=1e-5)
    final = json.loads((full / "policy_final" / "policy.json").read_text())
    assert final["return"] == meta["return"] and final["return_protocol"] == meta["return_protocol"]


def test_recursive_warm_start_from_a_dataset(hopper_data, tmp_path):
    """--data_path: deployment 0 is that dataset (written once into the run), later ones are collected."""
    out = recursive(*SMOKE, "--log_dir", tmp_path / "w", "--data_path", hopper_data, "--deployments", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    from bremen.data import load_dataset

    first = load_dataset(str(tmp_path / "w" / "deployments" / "deployment_0.h5"))
    assert len(first) == 6000 and first.metadata["policy"] == f"dataset {hopper_data}"
    rows = list(csv.DictReader(open(tmp_path / "w" / "deployments.csv")))
    assert [int(r["real_samples"]) for r in rows] == [6000, 7000]
    assert "deployment 0: the dataset" in out.stderr


def test_shipping_a_policy_checks_that_its_command_reproduces_the_run(full_run, tmp_path):
    """bench/ship_recursive_policy.py writes weights/<task>/recursive/ with a command that resolves to the run's
    own settings; plan flags the run did not use are refused (exit 2, one line) and nothing is written."""
    run, _ = full_run
    ship = [sys.executable, str(ROOT / "bench" / "ship_recursive_policy.py"), str(run), "a note"]
    bad = subprocess.run([*ship, "--target_kl", "0.02"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr[-2000:]
    assert "does not reproduce" in bad.stderr and "target_kl" in bad.stderr, bad.stderr
    assert not (tmp_path / "weights").exists()
    good = subprocess.run(ship, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
    meta = json.loads((tmp_path / "weights" / "hopper" / "recursive" / "policy.json").read_text())
    assert meta["command"] == "python recursive.py --env hopper --preset smoke --seed 0 --algorithm bremen"
    deployments = list(csv.DictReader(open(run / "deployments.csv")))
    assert meta["return"]["stderr"] == float(deployments[-1]["final_return_stderr"]) and meta["note"] == "a note"
    assert meta["deployments"] == len(deployments)
