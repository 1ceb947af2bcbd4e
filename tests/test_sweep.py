"""bremen sweep: a local grid (spec file, --jobs 2), killed and resumed to the same results, a failing cell that
does not stop the others, vmapped seeds, a local Ray instance, and bad input."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import one_line_error

ROOT = Path(__file__).resolve().parent.parent
TIMING = ("time_trpo", "time_eval", "time_total", "time_train")


def sweep(*args, timeout=900, env=None):
    return subprocess.run([sys.executable, "-m", "bremen.cli", "sweep", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


def progress(run_dir):
    with open(run_dir / "progress.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def processes_naming(text):
    """Pids of live processes whose command line contains ``text`` (read from /proc: procps may be absent)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:  # ended while we looked
            pass
    return [p for p in pids if p != os.getpid()]


def states(out):
    return {k: v["state"] for k, v in json.loads((out / "sweep.json").read_text())["cells"].items()}


CELLS = ["hopper/pure/bc/seed0", "hopper/pure/bc/seed1", "hopper/pure/bremen/seed0", "hopper/pure/bremen/seed1"]
RUNS = ["hopper/bc/bc_seed0", "hopper/bc/bc_seed1", "hopper/bremen/bremen_seed0", "hopper/bremen/bremen_seed1"]


@pytest.fixture(scope="module")
def grid(hopper_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    spec = d / "grid.yaml"
    spec.write_text(f"tasks: [hopper]\nalgorithms: [bc, bremen]\nseeds: [0, 1]\npreset: smoke\n"
                    f"data_path: {hopper_data}\n")
    full = sweep("--spec", spec, "--jobs", "2", "--out", d / "full")
    assert full.returncode == 0, full.stderr[-3000:]
    return d, spec


def test_local_sweep_runs_every_cell_and_skips_them_when_run_again(grid):
    d, spec = grid
    assert states(d / "full") == dict.fromkeys(CELLS, "done")
    for run in RUNS:
        assert (d / "full" / run / "summary.json").is_file()
    again = sweep("--spec", spec, "--jobs", "2", "--out", d / "full")
    assert again.returncode == 0 and "4 cells, 4 done, 0 jobs to run" in again.stderr
    table = subprocess.run([sys.executable, "-m", "bremen.cli", "table", d / "full"], capture_output=True, text=True,
                           cwd=ROOT)
    assert table.returncode == 0 and "| BC | 2 |" in table.stdout and "| BREMEN | 2 |" in table.stdout


def test_a_finished_cell_run_with_other_settings_is_reported_stale_and_kept(grid):
    d, spec = grid
    out = d / "stale"
    shutil.copytree(d / "full", out)
    params = out / RUNS[0] / "params.json"
    config = json.loads(params.read_text())
    config["agent"]["batch_size"] += 1  # as if an older bremen's preset had another batch size
    params.write_text(json.dumps(config))
    summary = (out / RUNS[0] / "summary.json").read_bytes()
    again = sweep("--spec", spec, "--jobs", "2", "--out", out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 finished cell(s) ran with other settings" in again.stderr and CELLS[0] in again.stderr
    assert "agent.batch_size" in again.stderr and "4 cells, 4 done, 0 jobs to run" in again.stderr
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    assert cells[CELLS[0]]["stale"].startswith("agent.batch_size") and "stale" not in cells[CELLS[1]]
    assert (out / RUNS[0] / "summary.json").read_bytes() == summary


def test_killed_sweep_resumes_to_the_same_results(grid):
    d, spec = grid
    out = d / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bremen.cli", "sweep", "--spec", str(spec), "--jobs", "2",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:  # kill once a BREMEN cell has checkpointed
        if any((out / r / "checkpoint.npz").exists() for r in RUNS[2:]):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    orphans = processes_naming(str(out))
    assert not orphans, "cells outlived the killed sweep"
    assert "running" in states(out).values()  # the index still says so: the resumed sweep must find out
    resumed = sweep("--spec", spec, "--jobs", "2", "--out", out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "(resuming)" in resumed.stderr
    assert states(out) == dict.fromkeys(CELLS, "done")
    for run in RUNS:
        assert progress(out / run) == progress(d / "full" / run), run


def test_a_failing_cell_is_recorded_and_the_others_finish(hopper_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(hopper_data, data / "hopper.h5")
    shutil.copy(hopper_data, data / "walker2d.h5")  # hopper's transitions: wrong dimensions for walker2d
    out = tmp_path / "s"
    res = sweep("--tasks", "hopper", "walker2d", "--algorithms", "bc", "--seeds", "0", "--preset", "smoke",
                "--data_path", f"{data}/{{task}}.h5", "--out", out)
    assert res.returncode == 1, res.stderr[-3000:]
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    assert cells["hopper/pure/bc/seed0"]["state"] == "done"
    bad = cells["walker2d/pure/bc/seed0"]
    assert bad["state"] == "failed" and bad["returncode"] == 2 and bad["error"].startswith("bremen: error:")
    assert "walker2d" in bad["error"]


def test_vmapped_seeds_run_as_one_job(hopper_data, tmp_path):
    res = sweep("--tasks", "hopper", "--algorithms", "bc", "--seeds", "0", "1", "--preset", "smoke", "--data_path",
                hopper_data, "--vmap_seeds", "--out", tmp_path / "v")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 jobs to run" in res.stderr and "hopper/pure/bc/seed0+1" in res.stderr
    assert states(tmp_path / "v") == {"hopper/pure/bc/seed0": "done", "hopper/pure/bc/seed1": "done"}
    assert "--vmap_seeds" in (tmp_path / "v" / "_logs" / "hopper_pure_bc_seed0+1.log").read_text()


def test_sweep_on_a_local_ray_instance(hopper_data, tmp_path):
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    start = subprocess.run([str(ray_bin), "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
                            "--disable-usage-stats", "--port", "0"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        res = sweep("--tasks", "hopper", "--algorithms", "bc", "--seeds", "0", "1", "--preset", "smoke",
                    "--data_path", hopper_data, "--ray", "auto", "--out", tmp_path / "r", env=env)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "(ray auto)" in res.stderr and "Connected to Ray cluster" in res.stderr
        assert states(tmp_path / "r") == {"hopper/pure/bc/seed0": "done", "hopper/pure/bc/seed1": "done"}
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_a_job_that_cannot_start_on_a_ray_node_is_recorded_with_the_nodes_error(monkeypatch):
    """A Ray task that raises (e.g. the sweep folder not writable on that node) fails its job with one line
    saying why, instead of ending the sweep with a traceback; the other jobs still finish."""
    import types

    from bremen.sweep import execute as sweep_run

    class RayTaskError(Exception):
        def __init__(self, cause):
            super().__init__(str(cause))
            self.cause = cause

    results = {"ok": (0, 1.5), "bad": RayTaskError(PermissionError(13, "Permission denied", "/bremen/log/s/x.log"))}
    fake = types.SimpleNamespace(
        is_initialized=lambda: True,
        remote=lambda **_: (lambda f: types.SimpleNamespace(remote=lambda argv, cwd, log: argv[1])),
        wait=lambda refs, num_returns: (refs[:1], refs[1:]),
        get=lambda ref: results[ref] if not isinstance(results[ref], Exception) else (_ for _ in ()).throw(results[ref]))
    monkeypatch.setitem(sys.modules, "ray", fake)
    jobs = [types.SimpleNamespace(argv=["python", name], log=f"/tmp/{name}.log") for name in ("bad", "ok")]
    finished = []
    sweep_run._run_ray(jobs, "auto", 1.0, lambda job, verb="start": None,
                       lambda job, rc, s, error=None: finished.append((job.argv[1], rc, error)))
    assert finished[1] == ("ok", 0, None)
    name, rc, error = finished[0]
    assert name == "bad" and rc != 0
    assert error.startswith("on a Ray node: PermissionError:") and "/bremen/log/s/x.log" in error


@pytest.mark.parametrize("args, fragments", [
    (["--tasks", "hopper", "--algorithms", "bcqq"], ["--algorithms: 'bcqq' is not one of", "bremen", "sac"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--noises", "eps9"], ["--noises: 'eps9' is not one of"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--noises", "eps1", "--data_path", "DATA"],
     ["--data_path and --noises contradict"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--noises", "eps3"],
     ["data/hopper/eps3.h5 not found", "bremen collect --task hopper --noise eps3"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--data_path", "DATA", "--set", "algo.nope=1"],
     ["'nope' is not a setting of BCConfig"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--script", "recursive", "--vmap_seeds"],
     ["--vmap_seeds is for offline sweeps"]),
    (["--algorithms", "bc"], ["--tasks is required"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--data_path", "DATA", "--args", "--nope 1"],
     ["offline.py has no flag --nope 1"]),
    (["--tasks", "hopper", "--algorithms", "bc", "--data_path", "DATA", "--args", "--onpol_iters abc"],
     ["argument --onpol_iters: invalid int value: 'abc'"]),
    (["--spec", "SPEC"], ["--spec", "unknown key(s) algorithm"]),
])
def test_bad_input_is_one_line_and_starts_nothing(hopper_data, tmp_path, args, fragments):
    (tmp_path / "spec.json").write_text(json.dumps({"tasks": ["hopper"], "algorithm": ["bc"]}))
    args = [str(hopper_data) if a == "DATA" else str(tmp_path / "spec.json") if a == "SPEC" else a for a in args]
    one_line_error(sweep(*args, "--preset", "smoke", "--out", tmp_path / "out"), *fragments)
    assert not (tmp_path / "out").exists()


def test_a_folder_of_another_sweep_is_refused(grid):
    d, spec = grid
    res = sweep("--spec", spec, "--preset", "cpu", "--out", d / "full")
    one_line_error(res, "holds a sweep with other settings")
