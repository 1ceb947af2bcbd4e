"""Seeds of a model-free baseline trained as one vmapped program (``offline.py --vmap_seeds``): the same
results per seed as sequential runs, resume of seeds whose checkpoints disagree, and the CLI."""

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from conftest import one_line_error

from bremen.algos import registry
from bremen.algos.agent import Spec
from bremen.learners.actor_critic import ActorCriticConfig, ActorCriticLearner, fit_seeds

ROOT = Path(__file__).resolve().parent.parent
SPEC = Spec.of(3, 2, -1.0, 1.0)


def dataset(n=300, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    return SimpleNamespace(observations=obs, actions=np.clip(rng.normal(0.2, 0.3, (n, 2)), -0.99, 0.99),
                           rewards=rng.normal(size=n), next_observations=obs + 0.1 * rng.normal(size=(n, 3)),
                           terminals=(rng.random(n) < 0.05))


class Recorder:
    """Hooks that keep what the learner reports after each chunk."""

    def __init__(self, learner):
        self.learner, self.calls = learner, []

    def step(self, phase, index, info):
        self.calls.append((index, info["updates"], self.learner.state))


# BRAC's smoke preset clones pi_b for 100 updates: 30 make the 60-update runs cross into BRAC proper, the branch
# that update_many_seeds keeps a single branch by passing the seeds' shared update counter unbatched.
SETTINGS = {"brac_primal": {"behavior_steps": 30, "warm_start": 10}}


def learner(name, seed, steps=60, eval_every=20):
    agent = registry.make_agent(name, SPEC, registry.agent_config(name, "smoke", settings=SETTINGS.get(name)))
    return ActorCriticLearner(None, ActorCriticConfig(name, agent, steps, eval_every, 32, steps_per_call=15), seed)


def close(a, b, atol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), atol=atol, rtol=1e-4)


@pytest.mark.parametrize("name", ["bc", "bcq", "brac_primal"])
def test_vmapped_seeds_equal_sequential_runs(name):
    data = dataset()
    alone = []
    for seed in (0, 1, 2):
        L = learner(name, seed)
        rec = Recorder(L)
        L.fit(data, None, None, rec)
        alone.append(rec.calls)
    together = [learner(name, seed) for seed in (0, 1, 2)]
    recs = [Recorder(L) for L in together]
    fit_seeds(together, [data] * 3, recs, [0, 0, 0])
    for seed in range(3):
        assert [c[:2] for c in recs[seed].calls] == [c[:2] for c in alone[seed]] == [(0, 20), (1, 40), (2, 60)]
        for (_, _, s_vmap), (_, _, s_alone) in zip(recs[seed].calls, alone[seed]):
            close(s_vmap, s_alone)
    # the seeds really differ
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(together[0].state._replace(key=0)),
                                                     jax.tree.leaves(together[1].state._replace(key=0))))


def test_seeds_with_their_own_data_and_checkpoints_ahead_of_the_others():
    """A kill between two seeds' checkpoints leaves seed 0 one chunk ahead: it joins the stack with its own
    state when the others catch up, and each seed ends where it would alone."""
    datasets = [dataset(seed=s) for s in range(3)]
    alone = []
    for seed in range(3):
        L = learner("bc", seed)
        L.fit(datasets[seed], None, None, Recorder(L))
        alone.append(L.state)
    together = [learner("bc", seed) for seed in range(3)]
    ahead = learner("bc", 0)
    ahead.fit(datasets[0], None, None, Recorder(ahead), end=2)  # seed 0 checkpointed after chunk 1
    together[0].state = ahead.state
    for seed in (1, 2):  # seeds 1 and 2 after chunk 0
        together[seed].fit(datasets[seed], None, None, Recorder(together[seed]), end=1)
    recs = [Recorder(L) for L in together]
    fit_seeds(together, datasets, recs, [2, 1, 1])
    assert [c[0] for c in recs[0].calls] == [2] and [c[0] for c in recs[1].calls] == [1, 2]
    for seed in range(3):
        close(together[seed].state, alone[seed])


def script(*args):
    return subprocess.run([sys.executable, str(ROOT / "offline.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_offline_vmap_seeds_runs_one_directory_per_seed(hopper_data, tmp_path):
    common = ["--env", "hopper", "--preset", "smoke", "--random_seeds", "0", "1", "--data_path", hopper_data,
              "--algorithm", "bc", "--exp_name", "bc"]
    out = script(*common, "--log_dir", tmp_path / "v", "--vmap_seeds")
    assert out.returncode == 0, out.stderr[-3000:]
    seq = script(*common, "--log_dir", tmp_path / "s")
    assert seq.returncode == 0, seq.stderr[-3000:]
    for seed in (0, 1):
        v, s = (tmp_path / k / "hopper" / "bc" / f"bc_seed{seed}" for k in ("v", "s"))
        assert json.loads((v / "summary.json").read_text())["seed"] == seed
        assert [r["updates"] for r in rows(v / "progress.csv")] == [r["updates"] for r in rows(s / "progress.csv")]
        a, b = (np.load(d / "policy_final" / "policy.npz") for d in (v, s))
        for k in a.files:
            np.testing.assert_allclose(a[k], b[k], atol=1e-4, err_msg=k)
    assert "bc final" in out.stdout.lower() or "BC final" in out.stdout


def test_vmap_seeds_of_a_model_based_run_is_one_line(hopper_data, tmp_path):
    out = script("--env", "hopper", "--preset", "smoke", "--random_seeds", "0", "1", "--data_path", hopper_data,
                 "--log_dir", tmp_path / "r", "--vmap_seeds")
    one_line_error(out, "--vmap_seeds trains the seeds of a model-free baseline", "bremen")
    assert not (tmp_path / "r").exists()
