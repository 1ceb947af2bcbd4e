"""``bremen train-behavior``: bad input, kill + --resume equals an uninterrupted run, exports, and learning."""

import csv
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bremen.io.checkpoint import load_checkpoint
from bremen.io.policy_io import load_policy
from bremen.run.online import SMOKE, OnlineRunConfig, online_run, resume_online, train_online

TIMING = {"env_steps_per_s", "time_train", "time_eval", "time_total"}


def cli(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "bremen.cli", *args], capture_output=True, text=True, cwd=cwd, **kw)


def smoke_args(out, steps=1200):
    return ["train-behavior", "--task", "hopper", "--eval-target", "1e9", "--steps", str(steps), "--preset", "smoke",
            "--eval-every", "200", "--eval-episodes", "2", "--out", str(out), "--no-progress"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "nope", "--eval-target", "1"], "unknown task 'nope'"),
        (["--task", "hopper", "--eval-target", "1", "--steps", "-5"], "--steps must be positive"),
        (["--task", "hopper"], "--eval-target is required"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    r = cli("train-behavior", *args, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_existing_run_needs_resume_or_force_and_is_left_alone(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "progress.csv").write_text("keep me\n")
    r = cli(*smoke_args(out))
    assert r.returncode == 2 and "--resume" in r.stderr and "--force" in r.stderr
    assert (out / "progress.csv").read_text() == "keep me\n"
    r = cli("train-behavior", "--task", "hopper", "--resume", "--out", str(tmp_path / "none"))
    assert r.returncode == 2 and "no checkpoint to resume" in r.stderr


def _csv_without_timing(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    ref = tmp_path / "ref"
    cfg = OnlineRunConfig(task="hopper", eval_target=1e9, env_steps=1200, eval_every=200, eval_episodes=2, **SMOKE)
    train_online(cfg, ref, progress=False)

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bremen.cli", *smoke_args(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "progress.csv").exists() and len((out / "progress.csv").read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    arrays, meta = load_checkpoint(out / "checkpoint.npz")
    assert 0 < meta["env_steps"] < 1200, "the run was not killed mid-way; make it longer"
    r = cli("train-behavior", "--task", "hopper", "--resume", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr

    a, ma = load_checkpoint(ref / "checkpoint.npz")
    b, mb = load_checkpoint(out / "checkpoint.npz")
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for k in ("env_steps", "updates", "episode", "rng", "best_return", "best_iteration", "target"):
        assert ma[k] == mb[k], k
    assert _csv_without_timing(ref / "progress.csv") == _csv_without_timing(out / "progress.csv")
    # TensorBoard (the run driver's writer): the resumed run's events purge what came after its checkpoint
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    curve = [(e.step, e.value) for e in events.Scalars("eval/episode_mean")]
    rows = _csv_without_timing(out / "progress.csv")
    assert [s for s, _ in curve] == [int(r["Iteration"]) for r in rows] == list(range(6))
    assert [int(r["env_steps"]) for r in rows] == list(range(200, 1201, 200))
    np.testing.assert_allclose([v for _, v in curve], [float(r["episode_mean"]) for r in rows], rtol=1e-5)
    for which in ("policy_best", "policy_final"):
        pa, pb = load_policy(ref / which), load_policy(out / which)
        for (wa, ba), (wb, bb) in zip(pa.layers, pb.layers):
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(ba, bb)


def test_partial_target_is_the_first_of_two_consecutive_hits(tmp_path, monkeypatch):
    """Evaluations are replaced by a script; the partial target is exported at the second hit in a row."""
    script = iter([5.0, 12.0, 3.0, 11.0, 15.0, 20.0, 1.0])
    cfg = OnlineRunConfig(task="hopper", eval_target=10.0, env_steps=1400, eval_every=200, eval_episodes=1, **SMOKE)
    run = online_run(cfg, tmp_path, progress=False)
    real = run.evaluate

    def scripted(policy, index, record=False):
        ev = real(policy, index, record)
        ev["episode_mean"] = next(script)
        return ev

    monkeypatch.setattr(run, "evaluate", scripted)
    from bremen.run.online import _with_steps

    summary = _with_steps(run.execute(), cfg)
    assert summary["partial_target"] == {"iteration": 4, "step": 1000, "mean": 15.0, "previous_mean": 11.0}
    assert (summary["best_step"], summary["best_return"]) == (1200, 20.0)
    pt = load_policy(tmp_path / "partial_target")
    assert pt.metadata["env_steps"] == 1000 and pt.metadata["return"]["episode_mean"] == 15.0
    assert pt.metadata["previous_eval_return"] == 11.0 and pt.metadata["eval_target"] == 10.0
    assert len(pt.metadata["return"]["env_seeds"]) == 1
    assert load_policy(tmp_path / "policy_final").metadata["env_steps"] == 1400
    rows = list(csv.DictReader(open(tmp_path / "progress.csv")))
    assert [int(r["env_steps"]) for r in rows] == list(range(200, 1401, 200))
    assert float(rows[-1]["updates"]) == 1400 - SMOKE["warmup_steps"]


def test_stop_at_target_and_extending_with_resume(tmp_path, monkeypatch):
    cfg = OnlineRunConfig(task="hopper", eval_target=-1e9, env_steps=5000, eval_every=200, eval_episodes=1,
                         stop_at_target=True, **SMOKE)
    s = train_online(cfg, tmp_path, progress=False)
    assert s["env_steps"] == 400 and s["partial_target"]["step"] == 400
    with pytest.raises(Exception, match="below the 400 steps"):
        resume_online(tmp_path, steps=200, progress=False)


@pytest.mark.slow
def test_sac_learns_pendulum(tmp_path):
    """BRAC's SAC (its network sizes and learning rates, 1k warm-up) swings Pendulum up: two consecutive
    evaluations of 5 episodes above −400 (random ≈ −1200) within 8,000 env steps."""
    cfg = OnlineRunConfig(task="Pendulum-v1", eval_target=-400.0, env_steps=8000, eval_every=1000, eval_episodes=5,
                         stop_at_target=True, warmup_steps=1000)
    t0 = time.time()
    s = train_online(cfg, tmp_path, progress=False)
    evals = [round(float(r["episode_mean"])) for r in csv.DictReader(open(tmp_path / "progress.csv"))]
    print(f"pendulum: target at {s['partial_target']} after {time.time() - t0:.0f} s; evals {evals}")
    assert s["partial_target"] is not None, s
    assert s["partial_target"]["step"] <= 8000
