"""`bremen evaluate`: shared env seeds, reproducible numbers, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bremen.evaluation import evaluate_policy
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


def test_batch_acting_policies_run_their_episodes_side_by_side_with_the_same_returns():
    """An argmax_q policy (each row's noise seeded by that row) gives the same episodes one at a time and side by
    side, for a fixed number of episodes and for the run's steps rule on a task whose episodes end early."""
    import jax

    from bremen.algos import registry
    from bremen.algos.agent import Spec
    from bremen.io.policy_io import policy_from_export
    from bremen.evaluation import MAX_SIDE_BY_SIDE, EnvPool, evaluate, evaluate_steps
    from bremen.tasks import make

    task = make("hopper")
    spec = Spec.of(task.obs_dim, task.act_dim, task.act_low, task.act_high)
    agent = registry.make_agent("bcq", spec, registry.agent_config("bcq", "smoke"))
    policy = policy_from_export(*agent.export(agent.init(jax.random.PRNGKey(1))))
    assert policy.batched_evaluation
    env, pool = task.make_env(), EnvPool(task.make_env)
    one, side = evaluate(policy, env, list(range(7))), evaluate(policy, env, list(range(7)), pool=pool)
    np.testing.assert_array_equal(one[0], side[0])
    np.testing.assert_array_equal(one[1], side[1])
    a = evaluate_steps(policy, env, 1500, seed=3, index=2)
    b = evaluate_steps(policy, env, 1500, seed=3, index=2, pool=pool)
    assert a == b and a["episodes"] > 3  # episodes end early: several waves, the last one cut
    # a horizon hint far below the real episode length asks for more episodes at once than the cap allows
    small = EnvPool(task.make_env)
    assert evaluate_steps(policy, env, 1500, seed=3, index=2, pool=small, horizon=5) == a
    assert 1500 // 5 > MAX_SIDE_BY_SIDE and len(small.envs) == MAX_SIDE_BY_SIDE
    small.close()
    assert small.envs == []
