"""offline.py end to end with the smoke preset: outputs, bad input, and exact resume after a kill."""

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

import bremen.tasks as T
from bremen.data import load_dataset
from bremen.learners.trpo_optimizer import imaginary_starts
from bremen.run.driver import TIMING_KEYS

ROOT = Path(__file__).resolve().parent.parent


def offline(*args, **kw):
    return subprocess.run([sys.executable, str(ROOT / "offline.py"), *args], capture_output=True, text=True,
                          timeout=600, cwd=kw.get("cwd", ROOT))


def smoke_args(data, run_dir, *extra):
    return ["--env", "hopper", "--preset", "smoke", "--seed", "0", "--data_path", str(data), "--log_dir", str(run_dir),
            *extra]


def read_progress(run_dir):
    with open(run_dir / "progress.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in csv.DictReader(f)]


def test_offline_smoke_writes_logs_policies_and_summary(hopper_data, tmp_path):
    out = offline(*smoke_args(hopper_data, tmp_path / "run"))
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "run"
    for name in ("params.json", "progress.csv", "trpo.csv", "dynamics.csv", "bc.csv", "checkpoint.npz", "summary.json",
                 "policy_final/policy.npz", "policy_final/policy.json", "policy_best/policy.json"):
        assert (run / name).exists(), name
    rows = read_progress(run)
    assert [r["Iteration"] for r in rows] == ["0", "1"]
    assert all(np.isfinite(float(rows[-1][k])) for k in ("episode_mean", "advantages_mean", "behavior_policy_kl_mean"))
    # TensorBoard (installed by the set-up) reads the events: one evaluation return per outer iteration
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    returns = [e.value for e in events.Scalars("eval/episode_mean")]
    assert returns == pytest.approx([float(r["episode_mean"]) for r in rows], rel=1e-5)
    # the run directory is named at the start and the end
    assert f"run directory: {run}" in out.stderr and f"run directory {run}/" in out.stdout
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["task", "seed", "behavior", "data"] and lines[1].startswith("hopper")
    # the exported policy runs with NumPy alone and acts in [-1, 1]
    from bremen.io.policy_io import load_policy

    pol = load_policy(run / "policy_final")
    assert pol.kind == "gaussian" and pol.obs_mean is not None
    act = pol.act(np.zeros(11, np.float32))
    assert act.shape == (3,) and np.all(np.abs(act) <= 1)
    # the BC policy is exported too, with the BC return the summary reports
    bc = load_policy(run / "policy_bc")
    summary = json.loads((run / "summary.json").read_text())
    assert bc.metadata["algorithm"] == "bc" and bc.metadata["return"]["episode_mean"] == summary["bc_return"]


def test_resume_after_kill_matches_uninterrupted_run(hopper_data, tmp_path):
    extra = ["--onpol_iters", "4"]
    full = offline(*smoke_args(hopper_data, tmp_path / "full", *extra))
    assert full.returncode == 0, full.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "offline.py"), *smoke_args(hopper_data, killed_dir, *extra)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (killed_dir / "progress.csv").exists() and len(read_progress(killed_dir)) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(read_progress(killed_dir)) < 4

    resumed = offline(*smoke_args(hopper_data, killed_dir, *extra, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_progress(killed_dir) == read_progress(tmp_path / "full")
    a = np.load(tmp_path / "full" / "policy_final" / "policy.npz")
    b = np.load(killed_dir / "policy_final" / "policy.npz")
    assert set(a.files) == set(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    ca, cb = np.load(tmp_path / "full" / "checkpoint.npz"), np.load(killed_dir / "checkpoint.npz")
    for k in ca.files:
        if k != "__meta_json__":
            np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)


def test_missing_dataset_names_the_collect_command(tmp_path):
    out = offline("--env", "hopper", "--preset", "smoke", "--seed", "0", "--data_path", str(tmp_path / "none.h5"),
                  "--log_dir", str(tmp_path / "run"))
    one_line_error(out, "none.h5 not found", f"bremen collect --task hopper --noise pure --n 5000 --out {tmp_path / 'none.h5'}")
    assert not (tmp_path / "run").exists()


def test_existing_run_dir_is_not_overwritten(hopper_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    one_line_error(offline(*smoke_args(hopper_data, run)), "already exists", "--resume")
    assert (run / "keep.txt").read_text() == "x"


def test_resume_with_other_settings_is_refused_and_changes_nothing(hopper_data, tmp_path):
    run = tmp_path / "run"
    first = offline(*smoke_args(hopper_data, run, "--algorithm", "bc"))
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    out = offline(*smoke_args(hopper_data, run, "--algorithm", "bc", "--set", "algo.batch_size=32", "--resume"))
    one_line_error(out, "was started with other settings", "agent.batch_size: 256 -> 32", "--force")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # another algorithm is named first, then the same settings again resume (the finished run is re-exported)
    out = offline(*smoke_args(hopper_data, run, "--algorithm", "bcq", "--resume"))
    one_line_error(out, 'other settings (flags.algorithm: "bc" -> "bcq";')
    again = offline(*smoke_args(hopper_data, run, "--algorithm", "bc", "--resume"))
    assert again.returncode == 0, again.stderr[-3000:]


def test_resume_with_more_outer_iterations_trains_the_run_further(hopper_data, tmp_path):
    run = tmp_path / "run"
    assert offline(*smoke_args(hopper_data, run, "--onpol_iters", "1")).returncode == 0
    out = offline(*smoke_args(hopper_data, run, "--onpol_iters", "2", "--resume"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["Iteration"] for r in read_progress(run)] == ["0", "1"]


@pytest.mark.parametrize("args,fragment", [
    (["--env", "hoper"], "unknown task 'hoper'"),
    (["--env", "hopper", "--param_path", "configs/params_ant_offline.json"], "env_name is 'ant' but --env is 'hopper'"),
    (["--env", "hopper", "--target_kl", "-1"], "--target_kl must be positive"),
    (["--env", "hopper", "--algo", "ppo"], "--algo 'ppo' is not available"),
    (["--env", "hopper", "--noise", "medium"], "--noise 'medium' is not one of"),
    (["--env", "hopper", "--use_s_t", "--use_s_0"], "exclusive"),
    (["--env", "hopper", "--param_path", "nope.json"], "param file nope.json does not exist"),
    (["--env", "hopper", "--set", "dynamics.epoch=5"], "--set: unknown key 'dynamics.epoch'"),
    (["--env", "hopper", "--set", "dynamics.hidden_size=big"], "--set: key 'dynamics.hidden_size' must be int"),
    (["--env", "hopper", "--set", "dynamics"], "expected SECTION.KEY=VALUE"),
    (["--env", "hopper", "--set", "model.epochs=5"], "unknown section 'model'"),
])
def test_bad_flags_are_one_line_errors(args, fragment, tmp_path):
    one_line_error(offline(*args, "--preset", "smoke", "--log_dir", str(tmp_path / "r")), fragment)


def test_original_readme_offline_command_is_accepted(tmp_path):
    # The original README's offline command for hopper (its dataset is absent here, so the run stops at the
    # dataset check with the collect command: every flag was accepted). Run from a copy of the layout.
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "params_hopper_offline.json").write_bytes(
        (ROOT / "configs" / "params_hopper_offline.json").read_bytes())
    out = offline("--env", "hopper", "--exp_name", "hopper_offline", "--param_path", "configs/params_hopper_offline.json",
                  "--bc_init", "--target_kl", "0.05", "--max_path_length", "1000", "--onpol_iters", "250",
                  "--n_train", "1000000", "--random_seeds", "0", "--gaussian", "0.1", "--const_sampling",
                  "--noise", "pure", "--log_dir", str(tmp_path / "log"), cwd=tmp_path)
    one_line_error(out, "data/hopper/pure.h5 not found", "bremen collect --task hopper --noise pure --n 1000000")


def test_restore_parts_pretrain_value_eval_model_and_video(hopper_data, tmp_path):
    first = offline(*smoke_args(hopper_data, tmp_path / "a", "--onpol_iters", "1"))
    assert first.returncode == 0, first.stderr[-3000:]
    out = offline(*smoke_args(hopper_data, tmp_path / "b", "--onpol_iters", "1", "--restore_path", str(tmp_path / "a"),
                              "--restore_dynamics_variables", "--restore_bc_variables", "--pretrain_value",
                              "--eval_model", "--video_dir", str(tmp_path / "vid")))
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = read_progress(tmp_path / "a")[0], read_progress(tmp_path / "b")[0]
    assert not (tmp_path / "b" / "dynamics.csv").exists() and not (tmp_path / "b" / "bc.csv").exists()
    assert a["model_val_loss"] == b["model_val_loss"] and a["bc_loss"] == b["bc_loss"]
    assert a["bc_return"] == b["bc_return"], "the restored BC policy evaluates exactly as the original"
    assert np.isfinite(float(b["step_wise_mse"])) and a["step_wise_mse"] == ""
    assert (tmp_path / "vid" / "hopper_seed0_episode0.mp4").stat().st_size > 1000
    bad = offline(*smoke_args(hopper_data, tmp_path / "c", "--restore_bc_variables"))
    one_line_error(bad, "--restore_bc_variables needs --restore_path")


def test_fidelity_switches_run(hopper_data, tmp_path):
    out = offline(*smoke_args(hopper_data, tmp_path / "f", "--onpol_iters", "1", "--member_mode", "rollout",
                              "--padded_batch", "--consistent_likelihood", "--bootstrap_truncation", "--line_search_kl",
                              "1.5", "--restore_best_model", "--subsample", "episodes", "--param_value", "--no_bc_init"))
    assert out.returncode == 0, out.stderr[-3000:]
    params = (tmp_path / "f" / "params.json").read_text()
    for frag in ('"member_mode": "rollout"', '"padded_batch": true', '"baseline": "mlp"', '"bc_init": false',
                 '"subsample": "episodes"', '"restore_best": true'):
        assert frag in params, frag
    assert np.isfinite(float(read_progress(tmp_path / "f")[0]["episode_mean"]))


def test_imaginary_start_states_follow_use_s_t_and_use_s_0(hopper_data):
    data, task = load_dataset(str(hopper_data)), T.make("hopper")
    reset = imaginary_starts("reset", data, task, 50, seed=0)
    assert reset.shape == (50, task.obs_dim)
    # reset states sit near the standing pose: height 1.25 and every other coordinate within the reset noise
    np.testing.assert_allclose(reset[:, 0], 1.25, atol=0.006)
    assert np.abs(reset[:, 1:]).max() <= 0.0051
    s_t = imaginary_starts("s_t", data, task, 50, seed=0)
    np.testing.assert_array_equal(s_t, data.observations)
    assert np.abs(s_t[:, 1:]).max() > 0.1, "dataset states reach far from the reset pose"
    s_0 = imaginary_starts("s_0", data, task, 50, seed=0)
    firsts = [ep.start for ep in data.episodes()]
    assert len(s_0) == len(firsts) > 1
    np.testing.assert_array_equal(s_0, data.observations[firsts])


def test_tensorboard_skips_non_finite_scalars_quietly(tmp_path, capfd):
    from bremen.io.tensorboard import TensorBoard

    tb = TensorBoard(tmp_path / "tb", purge_step=None)
    tb.add_scalar("trpo/surrogate_after", float("inf"), 0)
    tb.add_scalar("trpo/surrogate_after", float("nan"), 1)
    tb.add_scalar("trpo/surrogate_after", 0.5, 2)
    tb.close()
    out, err = capfd.readouterr()
    assert "NaN or Inf" not in out + err
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0


def _resolve(*argv):
    from bremen.experiment import resolve
    from bremen.cli.offline import build_parser

    return resolve(build_parser().parse_args(list(argv)), "offline")[0]


def test_cpu_preset_starts_hopper_rollouts_from_dataset_states():
    assert _resolve("--env", "hopper", "--preset", "cpu").flags["use_s_t"]
    assert not _resolve("--env", "half_cheetah", "--preset", "cpu").flags["use_s_t"]
    assert not _resolve("--env", "hopper").flags["use_s_t"], "paper: the original's reset starts"
    assert not _resolve("--env", "hopper", "--preset", "cpu", "--no_use_s_t").flags["use_s_t"]
    f = _resolve("--env", "hopper", "--preset", "cpu", "--use_s_0").flags
    assert f["use_s_0"] and not f["use_s_t"], "an explicit --use_s_0 replaces the preset's --use_s_t"


def test_me_trpo_settings_and_flag_precedence():
    bremen_f = _resolve("--env", "hopper", "--preset", "cpu").flags
    f = _resolve("--env", "hopper", "--preset", "cpu", "--algorithm", "me_trpo").flags
    assert (bremen_f["algorithm"], f["algorithm"]) == ("bremen", "me_trpo")
    assert bremen_f["bc_init"] and bremen_f["const_sampling"] and bremen_f["gaussian"] == 0.1
    assert not f["bc_init"] and not f["const_sampling"] and f["gaussian"] == 1.0 and f["alpha"] == 0.0
    assert f["target_kl"] == bremen_f["target_kl"] and f["max_path_length"] == bremen_f["max_path_length"]
    assert f["exp_name"] == "me_trpo" and bremen_f["exp_name"] == "bremen"
    assert _resolve("--env", "hopper", "--algorithm", "me_trpo", "--gaussian", "0.5").flags["gaussian"] == 0.5


def test_me_trpo_with_bc_init_is_a_one_line_error(tmp_path):
    one_line_error(offline("--env", "hopper", "--preset", "smoke", "--algorithm", "me_trpo", "--bc_init",
                           "--log_dir", str(tmp_path / "r")), "--algorithm me_trpo starts from a fresh policy")
    assert not (tmp_path / "r").exists()


def test_me_trpo_runs_from_a_fresh_policy_with_the_dataset_normalizer(hopper_data, tmp_path):
    out = offline(*smoke_args(hopper_data, tmp_path / "m", "--algorithm", "me_trpo", "--onpol_iters", "1"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ME-TRPO final" in out.stdout and "BREMEN" not in out.stdout
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["algorithm"] == "me_trpo" and np.isfinite(summary["final_return"])
    meta = json.loads((tmp_path / "m" / "policy_final" / "policy.json").read_text())
    assert meta["algorithm"] == "me_trpo"
    assert json.loads((tmp_path / "m" / "policy_bc" / "policy.json").read_text())["algorithm"] == "bc"


def test_me_trpo_policy_is_fresh_and_normalized_like_bc_while_no_bc_init_keeps_quirk_9(hopper_data, tmp_path):
    from bremen.build import build_run
    from bremen.models.normalizer import mean_std

    runs = {}
    for name, extra in (("me_trpo", ["--algorithm", "me_trpo"]), ("no_bc_init", ["--no_bc_init"])):
        run = build_run(_resolve(*smoke_args(hopper_data, tmp_path / name, *extra)), progress=False)
        data = run.plan.data_so_far(0)
        learner = run.learner
        learner.fit_model(data.train, data.val)
        learner.optimizer.fit_bc(data.all)
        learner.optimizer.init_policy(learner.model(), data.all)
        runs[name] = learner.optimizer
    m, q = runs["me_trpo"], runs["no_bc_init"]
    assert not np.allclose(jax_leaves(m.trpo.policy)[-2], jax_leaves(m.bc.params)[-2]), "not the BC weights"
    for a, b in zip(jax_leaves(m.trpo.policy), jax_leaves(q.trpo.policy)):
        np.testing.assert_array_equal(a, b)  # the same fresh initialization in both
    for a, b in zip(m.trpo.stats, m.bc.stats):
        np.testing.assert_array_equal(a, b)
    assert float(np.abs(np.asarray(m.trpo.stats.mean)).max()) > 0.1
    np.testing.assert_array_equal(np.asarray(q.trpo.stats.mean), 0.0)  # quirk 9: mean 0 / std 1
    np.testing.assert_array_equal(np.asarray(mean_std(q.trpo.stats)[1]), 1.0)


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def pendulum_data(tmp_path_factory):
    """5,000 random-action transitions of gymnasium's Pendulum-v1, a task bremen knows no reward for."""
    from bremen.data.collect import run_collect

    path = tmp_path_factory.mktemp("pendulum") / "random.h5"
    run_collect("Pendulum-v1", "random", 5000, path, seed=0, progress=False)
    return path


def test_gymnasium_task_trains_a_reward_head_that_predicts_the_reward(pendulum_data, tmp_path):
    import jax.numpy as jnp

    from bremen.build import build_run
    from bremen.models import dynamics as D

    exp = _resolve("--env", "Pendulum-v1", "--preset", "smoke", "--seed", "0", "--data_path", str(pendulum_data),
                   "--log_dir", str(tmp_path / "fit"), "--set", "dynamics.epochs=100")
    assert exp.dynamics.learn_reward and not _resolve("--env", "hopper").dynamics.learn_reward
    run = build_run(exp, progress=False)
    data = run.plan.data_so_far(0)
    run.learner.fit_model(data.train, data.val)
    va = data.val
    _, r = D.predict_reward(run.learner.ens.params, run.learner.norm, jnp.asarray(va.observations), jnp.asarray(va.actions), 0,
                            exp.dynamics.activation)
    r2 = 1 - np.mean((np.asarray(r) - va.rewards) ** 2) / np.var(va.rewards)
    assert r2 > 0.9, f"held-out R^2 of the learned reward {r2:.3f}"  # measured 0.99


def test_offline_runs_on_a_gymnasium_task_with_the_learned_reward(pendulum_data, tmp_path):
    out = offline("--env", "Pendulum-v1", "--preset", "smoke", "--seed", "0", "--data_path", str(pendulum_data),
                  "--log_dir", str(tmp_path / "run"), "--onpol_iters", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    params = json.loads((tmp_path / "run" / "params.json").read_text())
    assert params["dynamics"]["learn_reward"] is True
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert np.isfinite(summary["final_return"]) and summary["task"] == "Pendulum-v1"
