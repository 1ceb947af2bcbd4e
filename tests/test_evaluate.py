"""`bremen evaluate`: shared env seeds, reproducible numbers, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bremen.loops.evaluation import evaluate_policy
from bremen.io.policy_io import load_policy
from bremen.tasks import make

ROOT = Path(__file__).resolve().parent.parent


def bremen(*args):
    return subprocess.run([sys.executable, "-m", "bremen.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_same_seed_same_numbers_and_episodes_follow_the_env_seeds():
    pol, task = load_policy(ROOT / "weights" / "hopper"), make("hopper")
    a = evaluate_policy(pol, task, episodes=3, seed=7)
    b = evaluate_policy(pol, task, episodes=3, seed=7)
    assert a == b and len(set(a["env_seeds"])) == 3
    # the figure is the plain mean of full episodes started from those env resets
    env = task.make_env()
    rets = []
    for s in a["env_seeds"]:
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(pol.act(obs, deterministic=True))
            total, done = total + r, term or trunc
        rets.append(total)
    assert np.isclose(a["mean"], np.mean(rets)) and np.isclose(a["min"], min(rets))


def test_cli_json_and_errors(tmp_path):
    out = bremen("evaluate", "weights/half_cheetah", "--episodes", "1", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    (res,) = json.loads(out.stdout)
    assert res["task"] == "half_cheetah" and res["mean_length"] == 1000 and res["mean"] > 1000
    bad = bremen("evaluate", str(tmp_path / "none"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no policy there" in bad.stderr
    wrong = bremen("evaluate", "weights/hopper", "--task", "ant")
    assert wrong.returncode == 2 and "pass the right --task" in wrong.stderr
