"""bremen plot / bremen table on run directories with known numbers: the statistics, the figure, bad input."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error

from bremen.analysis.runs import find_runs, group_runs
from bremen.analysis.stats import bootstrap_ci, mean_se, normalized
from bremen.analysis.tables import format_table, table_rows

ROOT = Path(__file__).resolve().parent.parent


def test_bootstrap_interval_of_the_mean():
    lo, hi = bootstrap_ci([5.0, 5.0, 5.0])
    assert lo == hi == 5.0
    x = np.random.default_rng(0).normal(10.0, 2.0, size=40)
    lo, hi = bootstrap_ci(x)
    m, se = mean_se(x)
    assert lo < m < hi and abs((hi - lo) / (2 * 1.96 * se) - 1) < 0.15  # ~ the normal interval for n = 40
    assert bootstrap_ci(x) == (lo, hi)  # reproducible
    assert bootstrap_ci([3.0]) == (None, None) and mean_se([3.0]) == (3.0, None)
    lo, hi = bootstrap_ci(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]))  # per column
    assert lo.shape == (2,) and np.all(lo <= [2.0, 3.0]) and np.all(hi >= [2.0, 3.0])
    assert normalized(150.0, 50.0, 250.0) == 50.0


def write_run(path, task, algorithm, seed, returns, behavior=1000.0, script="offline", finished=True,
              deployments=None, data="data/x/pure.h5"):
    path.mkdir(parents=True)
    (path / "params.json").write_text(json.dumps({"script": script, "task": task, "seed": seed, "preset": "cpu",
                                                  "data_path": data, "flags": {"algorithm": algorithm, "alpha": 0.0}}))
    with open(path / "progress.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Iteration", "episode_mean"])
        w.writerows(enumerate(returns))
    if deployments:
        with open(path / "deployments.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["deployment", "real_samples", "final_return"])
            w.writerows((d, 1000 * (d + 1), r) for d, r in enumerate(deployments))
    if finished:
        (path / "summary.json").write_text(json.dumps({"final_return": returns[-1], "best_return": max(returns),
                                                       "bc_return": 800.0 if algorithm == "bremen" else None,
                                                       "behavior_return": behavior}))


@pytest.fixture()
def sweep(tmp_path):
    for seed, curve in enumerate([[100, 300, 500], [200, 400, 700], [300, 650, 600]]):
        write_run(tmp_path / "s" / f"bcq{seed}", "hopper", "bcq", seed, curve)
    write_run(tmp_path / "s" / "bremen0", "hopper", "bremen", 0, [900, 1100])
    write_run(tmp_path / "s" / "bremen1", "hopper", "bremen", 1, [1000], finished=False)
    write_run(tmp_path / "r" / "a", "half_cheetah", "bremen", 0, [1, 2, 3, 4], script="recursive",
              deployments=[500.0, 1500.0])
    return tmp_path


def test_runs_are_found_below_folders_and_grouped_by_panel_and_algorithm(sweep):
    runs = find_runs([sweep / "s", sweep / "r", sweep / "s" / "bcq0"])  # a run named twice counts once
    assert len(runs) == 6
    groups = group_runs(runs)
    assert list(groups) == ["half_cheetah recursive", "hopper offline · pure"]
    assert {k: len(v) for k, v in groups["hopper offline · pure"].items()} == {"BCQ": 3, "BREMEN": 2}
    by = group_runs(runs, ["flags.alpha"])
    assert "BCQ (alpha=0.0)" in by["hopper offline · pure"]


def test_table_statistics_over_the_finished_seeds(sweep):
    rows = {(r["panel"], r["algorithm"]): r for r in table_rows(find_runs([sweep]))}
    bcq = rows["hopper offline · pure", "BCQ"]
    assert bcq["seeds"] == 3 and bcq["final"]["per_seed"] == [500, 700, 600]
    assert bcq["final"]["mean"] == pytest.approx(600.0) and bcq["final"]["stderr"] == pytest.approx(100 / np.sqrt(3))
    assert bcq["best"]["mean"] == pytest.approx(1850 / 3)
    lo, hi = bcq["final"]["ci95"]
    assert 500 <= lo < 600 < hi <= 700
    random = 18.2  # bremen.tasks: hopper's uniform-random return (docs/tasks.md)
    assert bcq["final"]["normalized"] == pytest.approx(100 * (600 - random) / (1000 - random))
    bremen = rows["hopper offline · pure", "BREMEN"]
    assert bremen["seeds"] == 1 and bremen["final"]["stderr"] is None  # the unfinished seed is left out
    md = format_table(list(rows.values()))
    assert "| hopper offline · pure | BCQ | 3 | - | 600.0 ± 57.7 |" in md  # BC: only model-based runs fit one
    assert "| hopper offline · pure | BREMEN | 1 | 800.0 | 1100.0 |" in md
    assert md.splitlines()[0].endswith("| returns scored 0 / 100 |") and "| 18.2 / 1000.0 |" in md  # random / data
    assert rows["half_cheetah recursive", "BREMEN"]["final"]["mean"] == 1500.0  # the last deployment's evaluation
    assert "\\pm" in format_table(list(rows.values()), "latex")


def test_no_normalized_score_where_the_data_scores_no_better_than_random_actions(tmp_path):
    """Random-action hopper data returns about the random return (18.2): a 0-100 scale between the two would put
    every policy at thousands below zero, so the normalized columns stay empty; the references are still shown."""
    for seed in (0, 1):
        write_run(tmp_path / f"bc{seed}", "hopper", "bc", seed, [20.0, 50.0], behavior=17.6)
    (row,) = table_rows(find_runs([tmp_path]))
    assert row["final"]["mean"] == 50.0 and "normalized" not in row["final"] and "normalized" not in row["best"]
    assert "| - | - | 18.2 / 17.6 |" in format_table([row])


def cli(*args):
    return subprocess.run([sys.executable, "-m", "bremen.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_plot_and_table_commands(sweep, tmp_path):
    out = cli("plot", sweep / "s", "--out", tmp_path / "fig" / "curves.png")
    assert out.returncode == 0, out.stderr
    png = (tmp_path / "fig" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    out = cli("plot", sweep / "r", "--out", tmp_path / "rec.svg")
    assert out.returncode == 0 and (tmp_path / "rec.svg").read_text().lstrip().startswith("<?xml")
    out = cli("table", sweep, "--format", "csv", "--json", tmp_path / "t.json")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("runs,algorithm,seeds")
    assert "not counted (1 unfinished)" in out.stderr
    assert len(json.loads((tmp_path / "t.json").read_text())) == 3


@pytest.mark.parametrize("args, fragments", [
    (["plot", "NOPE", "--out", "x.png"], ["NOPE does not exist"]),
    (["plot", "SWEEP", "--out", "OUT/x.jpg"], ["file type must be one of .png, .pdf, .svg"]),
    (["plot", "SWEEP/s", "--out", "OUT/x.png", "--x", "deployment"], ["needs recursive runs"]),
    (["plot", "SWEEP", "--out", "OUT/x.png", "--by", "flags.nope"], ["--by flags.nope", "no such key"]),
    (["table", "OUT"], ["no bremen run directories"]),
    (["table", "SWEEP", "--reference", "expert"], ["--reference 'expert' is not behavior, d4rl or a number"]),
])
def test_bad_input_is_one_line(sweep, tmp_path, args, fragments):
    (tmp_path / "OUT").mkdir()
    args = [a.replace("SWEEP", str(sweep)).replace("OUT", str(tmp_path / "OUT")) for a in args]
    one_line_error(cli(*args), *fragments)
    assert not any((tmp_path / "OUT").iterdir())


def test_diagnose_replays_real_episodes_through_every_member(hopper_data, tmp_path):
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, str(ROOT / "offline.py"), "--env", "hopper", "--preset", "smoke", "--seed",
                          "0", "--data_path", str(hopper_data), "--log_dir", str(run)], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    res = cli("diagnose", run, "--episodes", "3", "--horizon", "20", "--out", tmp_path / "d.png")
    assert res.returncode == 0, res.stderr
    d = json.loads((tmp_path / "d.json").read_text())
    members = d["open_loop_members"]
    k = json.loads((run / "params.json").read_text())["dynamics"]["ensemble_size"]
    assert len(members) == k == len(d["one_step_members"]) and all(len(m) == 21 for m in members)
    assert all(m[0] == 0.0 for m in members)  # step 0 is the real start state
    for m, one in zip(members, d["one_step_members"]):
        assert m[1] == pytest.approx(one[0], rel=1e-5)  # from s_0 the first open-loop step is a one-step prediction
        assert m[1] > 0
    assert d["episodes_running"][0] == 3 and "member 0:" in res.stdout
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "mf").mkdir()
    (tmp_path / "mf" / "params.json").write_text(json.dumps({"task": "hopper", "flags": {"algorithm": "bcq"},
                                                             "agent": {}}))
    one_line_error(cli("diagnose", tmp_path / "mf"), "a bcq run has no dynamics model")


def test_reevaluations_are_kept_per_policy_file(tmp_path, monkeypatch):
    import shutil

    import bremen.evaluation as evaluation
    from bremen.analysis.tables import REEVAL_FILE, reevaluate
    from bremen.io.policy_io import load_policy
    from bremen.tasks import make

    run_dir = tmp_path / "run"
    write_run(run_dir, "hopper", "bc", 0, [1.0])
    shutil.copytree(ROOT / "weights" / "hopper", run_dir / "policy_final", ignore=shutil.ignore_patterns("recursive"))
    run = find_runs([run_dir])[0]
    first = reevaluate(run, "final", 2)
    direct = evaluation.evaluate_policy(load_policy(run_dir / "policy_final"), make("hopper"), 2, seed=0)["mean"]
    assert first == pytest.approx(direct)
    assert json.loads((run_dir / REEVAL_FILE).read_text())["final/2"]["mean"] == first

    def no_evaluation(*a, **k):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(evaluation, "evaluate_policy", no_evaluation)
    assert reevaluate(run, "final", 2) == first  # kept
    with pytest.raises(AssertionError, match="evaluated again"):
        reevaluate(run, "final", 3)  # another episode count
    for name in ("policy.json", "policy.npz"):  # another policy in the same place
        shutil.copy(ROOT / "weights" / "hopper" / "recursive" / name, run_dir / "policy_final" / name)
    with pytest.raises(AssertionError, match="evaluated again"):
        reevaluate(run, "final", 2)
