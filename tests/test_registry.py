"""A new model-free agent is one file plus one registry line: registered from outside the package, it trains
on the run driver (logs, exports, summary, resume) like the built-in agents."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugins"))


@pytest.fixture
def toy_registered():
    from bremen.algos import registry

    registry.register("toy_linear", "toy_agent", "ToyAgent", "ToyConfig", "toy linear")
    yield
    del registry.AGENTS["toy_linear"]


def offline_args(data, run, *extra):
    from bremen.flags import script_parser

    return script_parser("offline").parse_args(["--env", "hopper", "--preset", "smoke", "--seed", "0",
                                                "--algorithm", "toy_linear", "--data_path", str(data),
                                                "--log_dir", str(run), *extra])


def test_a_registered_agent_trains_on_the_driver_and_learns(toy_registered, hopper_data, tmp_path):
    from bremen.algos import registry
    from bremen.build import build_run
    from bremen.experiment import resolve

    assert "toy_linear" in registry.MODEL_FREE and registry.LABELS["toy_linear"] == "toy linear"
    summary = build_run(resolve(offline_args(hopper_data, tmp_path / "run"))[0], progress=False).execute()
    assert summary["algorithm"] == "toy_linear" and summary["updates"] == 400
    with open(tmp_path / "run" / "agent.csv") as f:
        mse = [float(r["mse"]) for r in csv.DictReader(f)]
    assert len(mse) == 2 and mse[1] < 0.8 * mse[0], f"the toy agent's fit improves: {mse}"
    meta = json.loads((tmp_path / "run" / "policy_final" / "policy.json").read_text())
    assert meta["algorithm"] == "toy_linear" and meta["kind"] == "tanh_gaussian"

    # --set reaches its config, and a resumed finished run ends with the same summary
    exp = resolve(offline_args(hopper_data, tmp_path / "run", "--resume", "--set", "algo.learning_rate=0.003"))[0]
    assert exp.agent.learning_rate == 0.003
    again = build_run(exp, resume=True, progress=False).execute()
    assert again["final_return"] == summary["final_return"]


def test_a_registered_agents_bad_setting_is_one_line(toy_registered, hopper_data, tmp_path):
    from bremen.errors import UserError
    from bremen.experiment import resolve

    with pytest.raises(UserError, match="toy_linear: learning_rate must be positive"):
        resolve(offline_args(hopper_data, tmp_path / "bad", "--set", "algo.learning_rate=-1"))


def test_a_name_is_registered_once(toy_registered):
    from bremen.algos import registry

    with pytest.raises(ValueError, match="registered already"):
        registry.register("toy_linear", "toy_agent", "ToyAgent", "ToyConfig", "again")
    with pytest.raises(ValueError, match="registered already"):
        registry.register("bremen", "toy_agent", "ToyAgent", "ToyConfig", "again")


def test_a_policy_optimizer_from_outside_trains_on_the_model_through_the_driver(hopper_data, tmp_path):
    """The model-based learner's optimizer slot: random search on the ensemble's rollouts (tests/plugins/
    toy_optimizer.py, no phase before its chunks) runs on the driver with its logs, exports and resume."""
    from bremen.build import learner_config, run_config
    from bremen.experiment import resolve
    from bremen.learners.model_based import ModelBasedLearner
    from bremen.run.driver import Run
    from bremen.tasks import make
    from toy_optimizer import RandomSearch

    def run(resume=False):
        from bremen.flags import script_parser

        args = script_parser("offline").parse_args(["--env", "hopper", "--preset", "smoke", "--seed", "0",
                                                    "--onpol_iters", "4", "--data_path", str(hopper_data),
                                                    "--log_dir", str(tmp_path / "run")] + (["--resume"] if resume else []))
        exp, task = resolve(args)[0], make("hopper")
        learner = ModelBasedLearner(task, learner_config(exp), exp.seed, optimizer=RandomSearch(task, exp.seed))
        return Run(run_config(exp), learner, resume=resume, progress=False, task=task).execute()

    summary = run()
    with open(tmp_path / "run" / "search.csv") as f:
        rows = list(csv.DictReader(f))
    imagined = [float(r["imagined_return"]) for r in rows]
    assert len(rows) == 4 and sum(int(r["accepted"]) for r in rows) >= 1, rows
    assert summary["imagined_return"] > summary["initial_imagined_return"], summary  # it learned on the model
    assert imagined == sorted(imagined), imagined
    assert summary["imagined_return"] == pytest.approx(imagined[-1], rel=1e-4) and np.isfinite(summary["final_return"])
    assert (tmp_path / "run" / "dynamics.csv").is_file() and not (tmp_path / "run" / "bc.csv").exists()
    with open(tmp_path / "run" / "progress.csv") as f:
        progress = list(csv.DictReader(f))
    assert [float(r["imagined_return"]) for r in progress] == imagined and float(progress[0]["time_search"]) > 0
    meta = json.loads((tmp_path / "run" / "policy_final" / "policy.json").read_text())
    assert meta["kind"] == "gaussian"
    again = run(resume=True)  # a finished run resumed ends with the same summary
    assert again["final_return"] == summary["final_return"] and again["imagined_return"] == summary["imagined_return"]
