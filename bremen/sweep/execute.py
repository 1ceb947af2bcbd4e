"""Running a sweep: check the whole grid first, then run its jobs on local processes or on a Ray cluster.

Before anything runs, every job's command is parsed and resolved exactly as offline.py / recursive.py would
(a misspelled algorithm, a bad ``--set`` key, a missing dataset: one line, exit 2, nothing started). Jobs
whose cells are all done are skipped; a cell with a run directory is continued with ``--resume`` (exact
resume: bremen.run.driver). A failed job is recorded with its error line and the others go on.

Local: ``jobs`` worker threads (joblib), each waiting on one subprocess; the subprocesses die with the sweep
(``PR_SET_PDEATHSIG`` on Linux), so a killed sweep leaves no orphan writing into a run directory. Ray: each job
is a task with ``cpus_per_job`` CPUs that runs the same command on whichever node Ray picks, in the same
working directory, so the nodes must share the file system (data/, the sweep folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from bremen.errors import UserError
from bremen.run.directory import CONFIG_FILE, changed_settings
from bremen.sweep.grid import LOGS, SCRIPTS, Index, Job, Spec, cells_of, data_path, jobs_of, run_dir

STOPPED_CODES = (130, -2, -9, -15)  # Ctrl-C, SIGINT, SIGKILL, SIGTERM


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the child outlives a killed sweep
        pass


def run_command(argv: list, cwd: str, log: str) -> tuple[int, float]:
    """Run one job's command with its output appended to ``log``: (exit status, seconds)."""
    t0 = time.time()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(argv)}\n")
        f.flush()
        rc = subprocess.call(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    return rc, time.time() - t0


def error_line(log: Path) -> str:
    """The line that says why a job failed: bremen's one-line error, else the last line it printed."""
    try:
        lines = [ln.split("\r")[-1].strip() for ln in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    lines = [ln for ln in lines if ln]
    errors = [ln for ln in lines if ln.startswith("bremen: error:")]
    return (errors or lines or ["(no output)"])[-1][:400]


def check_spec(spec: Spec) -> None:
    """The grid's own mistakes, before any job is resolved."""
    from bremen.algos import registry
    from bremen.flags import NOISES

    if spec.script not in SCRIPTS:
        raise UserError(f"--script {spec.script!r} is not one of {', '.join(SCRIPTS)}")
    for name, values in (("--tasks", spec.tasks), ("--algorithms", spec.algorithms), ("--seeds", spec.seeds)):
        if not values:
            raise UserError(f"{name}: give at least one")
    for a in spec.algorithms:
        if a not in registry.ALGORITHMS:
            raise UserError(f"--algorithms: {a!r} is not one of {', '.join(registry.ALGORITHMS)}")
    for n in spec.noises:
        if n not in NOISES:
            raise UserError(f"--noises: {n!r} is not one of {', '.join(NOISES)}")
    if spec.data_path and spec.noises != ["pure"]:
        raise UserError("--data_path and --noises contradict each other; give one of them")
    if spec.script == "recursive" and spec.data_path:
        raise UserError("--data_path: recursive runs collect their own data; drop it (or use --script offline)")
    if spec.vmap_seeds and spec.script != "offline":
        raise UserError("--vmap_seeds is for offline sweeps (recursive runs train their seeds one after another)")
    if spec.script == "offline":
        missing = {str(data_path(spec, c)): c for c in cells_of(spec) if not data_path(spec, c).is_file()}
        if missing:
            path, c = sorted(missing.items())[0]
            hint = "" if spec.data_path else (f"; make each with e.g. bremen collect --task {c.task} --noise {c.noise} "
                                              f"--n 100000 --out {path}")
            raise UserError(f"dataset{'s' if len(missing) > 1 else ''} {', '.join(sorted(missing))} not found{hint}")


def check_job(job: Job) -> list:
    """Parse and resolve the job's command as its script would (its Experiments, one per seed): a user mistake
    is one line, before any run."""
    import argparse

    from bremen.experiment import resolve
    from bremen.flags import script_parser

    script = job.argv[3]
    parser = script_parser(script)
    parser.exit_on_error = False
    try:
        args, unknown = parser.parse_known_args(job.argv[4:])
    except argparse.ArgumentError as e:
        raise UserError(f"{job.name}: {e} (in {' '.join(job.argv[3:])})")
    if unknown:
        raise UserError(f"{job.name}: {script}.py has no flag {' '.join(unknown)} (check --args and --set)")
    return resolve(args, script)


def stale_cells(out: Path, job: Job, exps: list, index: Index) -> dict:
    """{cell name: first changed setting} of the job's finished cells whose params.json differs from what the
    job's command resolves to now (e.g. a preset changed in a newer bremen): their results are not this
    sweep's settings."""
    by_seed, stale = {e.seed: e for e in exps}, {}
    for c in job.cells:
        params = run_dir(out, c) / CONFIG_FILE
        if index.cells[c.name]["state"] != "done" or c.seed not in by_seed or not params.is_file():
            continue
        changed = changed_settings(json.loads(params.read_text()), by_seed[c.seed].to_dict())
        if changed:
            stale[c.name] = changed[0]
    return stale


def run_sweep(spec: Spec, out: Path, jobs: int = 1, ray: Optional[str] = None, cpus_per_job: float = 1.0,
              say: Callable[[str], None] = print) -> dict:
    """Run every unfinished job of ``spec`` into ``out``; returns {state: number of cells}."""
    from bremen.io.paths import writable_dir

    check_spec(spec)
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: give at least 1")
    cores = os.cpu_count() or 1
    if ray is None and jobs > cores:
        say(f"--jobs {jobs} is more than this machine's {cores} cores; running {cores} at a time")
        jobs = cores
    out = Path(out).resolve()
    cells = cells_of(spec)
    all_jobs = jobs_of(spec, out, cells)
    resolved = [check_job(job) for job in all_jobs]
    writable_dir(out, "--out")
    (out / LOGS).mkdir(parents=True, exist_ok=True)
    index = Index(out, spec, cells)
    stale = {k: v for job, exps in zip(all_jobs, resolved) for k, v in stale_cells(out, job, exps, index).items()}
    for name, cell in index.cells.items():
        cell.pop("stale", None)
        if name in stale:
            cell["stale"] = stale[name]
    index.write()
    if stale:
        name = next(iter(stale))
        say(f"{len(stale)} finished cell(s) ran with other settings than their command resolves to now (first: "
            f"{name}, {stale[name]}); kept as they are (sweep.json marks them 'stale'): delete a cell's run "
            f"directory to run it again")
    todo = [j for j in all_jobs if any(index.cells[c.name]["state"] != "done" for c in j.cells)]
    say(f"sweep {out}: {len(cells)} cells, {len(cells) - sum(len(j.cells) for j in todo)} done, "
        f"{len(todo)} jobs to run ({'ray ' + ray if ray else f'{jobs} local process(es)'})")
    t0, finished = time.time(), [0]

    def start(job: Job, verb: str = "start") -> None:
        index.update(job.cells, state="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
        say(f"{verb:<6} {job.name}{' (resuming)' if '--resume' in job.argv else ''}  log: {job.log}")

    def finish(job: Job, rc: int, seconds: float, error: Optional[str] = None) -> None:
        done = [c for c in job.cells if (run_dir(out, c) / "summary.json").is_file()]
        state = "done" if rc == 0 and len(done) == len(job.cells) else "stopped" if rc in STOPPED_CODES else "failed"
        error = None if state == "done" else error or error_line(job.log)
        index.update(job.cells, state=state, returncode=rc, wall_s=round(seconds, 1), error=error)
        finished[0] += 1
        say(f"{state:<6} {job.name} ({seconds:.0f} s) [{finished[0]}/{len(todo)}]" + (f": {error}" if error else ""))

    try:
        if ray:
            _run_ray(todo, ray, cpus_per_job, start, finish)
        else:
            _run_local(todo, jobs, start, finish)
    except KeyboardInterrupt:
        index.update([c for j in todo for c in j.cells if index.cells[c.name]["state"] == "running"], state="stopped")
        say(f"interrupted; run the same bremen sweep command again to resume ({out / 'sweep.json'} has each cell's state)")
        raise
    counts: dict = {}
    for c in cells:
        counts[index.cells[c.name]["state"]] = counts.get(index.cells[c.name]["state"], 0) + 1
    say(f"sweep {out}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; {time.time() - t0:.0f} s")
    return counts


def _run_local(todo: list, jobs: int, start, finish) -> None:
    from joblib import Parallel, delayed

    def one(job: Job) -> None:
        start(job)
        finish(job, *run_command(job.argv, os.getcwd(), str(job.log)))

    Parallel(n_jobs=jobs, backend="threading")(delayed(one)(j) for j in todo)


def _run_ray(todo: list, address: str, cpus_per_job: float, start, finish) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'bremen[cluster]' (or pip install ray)")
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as e:  # no cluster at that address
            raise UserError(f"--ray {address}: cannot connect ({str(e).splitlines()[0]}); start one with "
                            f"'ray start --head' or give its address") from None

    @ray.remote(num_cpus=cpus_per_job)
    def remote(argv, cwd, log):
        return run_command([sys.executable, *argv[1:]], cwd, log)

    cwd = os.getcwd()
    refs = {}
    for job in todo:  # Ray starts each when a node has cpus_per_job CPUs free
        start(job, "queued")
        refs[remote.remote(job.argv, cwd, str(job.log))] = job
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        for ref in ready:
            job = refs.pop(ref)
            try:
                rc, seconds = ray.get(ref)
            except Exception as e:  # the node could not start the command, e.g. the sweep folder is not writable there
                cause = getattr(e, "cause", None) or e
                finish(job, 1, 0.0, error=f"on a Ray node: {type(cause).__name__}: {cause} (every node needs the "
                                          f"sweep's folder and data/ at the same path, writable)")
            else:
                finish(job, rc, seconds)
