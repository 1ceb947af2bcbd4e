"""A sweep's grid: the cells (task × dataset × algorithm × seed), the jobs that run them, and its index.

A cell's run directory follows offline.py's own layout under the sweep's folder
(``<out>/<task>[/<noise>]/<algorithm>/<algorithm>_seed<S>[<noise>]``, bremen.experiment.run_dir_layout), so a
cell is an ordinary run directory: ``bremen plot``/``bremen table`` read it, and ``offline.py --resume
--log_dir <it>`` continues it by hand too. A job is one command (``python -m bremen.cli offline|recursive
...``) running one cell, or, with ``vmap_seeds`` and a model-free baseline, all seeds of a (task, dataset,
algorithm) as one program. ``sweep.json`` in the folder records the spec and every cell's state (pending,
running, done, failed, stopped), its error line and wall time; it is rewritten atomically as cells change.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from bremen.errors import UserError
from bremen.experiment import run_dir_layout
from bremen.io.atomic import atomic_path

INDEX = "sweep.json"
LOGS = "_logs"
SCRIPTS = ("offline", "recursive")


@dataclass
class Spec:
    """What a sweep runs; every field is a ``bremen sweep`` flag (or a key of its ``--spec`` file)."""

    tasks: list
    algorithms: list
    seeds: list = field(default_factory=lambda: [0])
    script: str = "offline"
    preset: str = "cpu"
    noises: list = field(default_factory=lambda: ["pure"])
    data_path: Optional[str] = None
    """One dataset file for every cell instead of --noises; ``{task}`` in it is replaced by the task."""
    set: list = field(default_factory=list)
    """``section.key=value`` overrides passed to every cell as ``--set``."""
    args: list = field(default_factory=list)
    """Further flags passed to every cell verbatim (e.g. ``["--deployments", "3"]``)."""
    vmap_seeds: bool = False

    def same_runs(self) -> dict:
        """The settings a resumed sweep must share with the one that made the folder (cells may be added)."""
        return {k: getattr(self, k) for k in ("script", "preset", "data_path", "set", "args", "vmap_seeds")}


@dataclass(frozen=True)
class Cell:
    task: str
    algorithm: str
    seed: int
    noise: str

    @property
    def name(self) -> str:
        return f"{self.task}/{self.noise}/{self.algorithm}/seed{self.seed}"


@dataclass
class Job:
    cells: list
    argv: list
    log: Path

    @property
    def name(self) -> str:
        return job_name(self.cells)


def job_name(cells: list) -> str:
    c = cells[0]
    return f"{c.task}/{c.noise}/{c.algorithm}/seed{'+'.join(str(x.seed) for x in cells)}"


def cells_of(spec: Spec) -> list[Cell]:
    noises = ["pure"] if spec.data_path else spec.noises
    return [Cell(t, a, int(s), n) for t in spec.tasks for n in noises for a in spec.algorithms for s in spec.seeds]


def run_dir(out: Path, cell: Cell) -> Path:
    return run_dir_layout(out, cell.task, cell.noise, cell.algorithm, cell.seed)


def data_path(spec: Spec, cell: Cell) -> Optional[Path]:
    if spec.script != "offline":
        return None
    if spec.data_path:
        return Path(spec.data_path.replace("{task}", cell.task))
    return Path("data") / cell.task / f"{cell.noise}.h5"


def jobs_of(spec: Spec, out: Path, cells: list[Cell]) -> list[Job]:
    """One job per cell, or per (task, dataset, algorithm) for vmapped seeds of a model-free baseline."""
    from bremen.algos import registry

    groups: dict = {}
    for c in cells:
        together = spec.vmap_seeds and spec.script == "offline" and c.algorithm in registry.MODEL_FREE
        key = (c.task, c.noise, c.algorithm) if together else c
        groups.setdefault(key, []).append(c)
    jobs = []
    for cs in groups.values():
        c = cs[0]
        argv = [sys.executable, "-m", "bremen.cli", spec.script, "--env", c.task, "--algorithm", c.algorithm,
                "--preset", spec.preset, "--exp_name", c.algorithm, "--random_seeds", *[str(x.seed) for x in cs]]
        argv += ["--log_dir", str(out if len(cs) > 1 else run_dir(out, c))]
        if spec.script == "offline":
            argv += (["--data_path", str(data_path(spec, c))] if spec.data_path else ["--noise", c.noise])
        for s in spec.set:
            argv += ["--set", s]
        argv += list(spec.args)
        if len(cs) > 1:
            argv.append("--vmap_seeds")
        if any(run_dir(out, x).exists() for x in cs):
            argv.append("--resume")
        jobs.append(Job(cs, argv, out / LOGS / (job_name(cs).replace("/", "_") + ".log")))
    return jobs


class Index:
    """``sweep.json``: the spec and each cell's state, rewritten atomically (thread-safe)."""

    def __init__(self, out: Path, spec: Spec, cells: list[Cell]):
        self.path, self.lock = out / INDEX, threading.Lock()
        old = json.loads(self.path.read_text()) if self.path.is_file() else None
        if old is not None and old.get("spec", {}).get("same_runs") != spec.same_runs():
            raise UserError(f"{out} holds a sweep with other settings ({old['spec']['same_runs']}); use another "
                            f"--out, or the same settings to resume it (tasks, algorithms, seeds may grow)")
        self.cells = dict(old["cells"]) if old else {}
        for c in cells:
            d = run_dir(out, c)
            prev = self.cells.get(c.name, {})
            state = "done" if (d / "summary.json").is_file() else (
                "stopped" if prev.get("state") in ("running", "stopped") else "pending")
            self.cells[c.name] = {**asdict(c), "run_dir": str(d), **prev, "state": state}
        self.spec = {**asdict(spec), "same_runs": spec.same_runs()}
        self.write()

    def update(self, cells: list[Cell], **fields) -> None:
        with self.lock:
            for c in cells:
                self.cells[c.name].update(fields)
            self.write()

    def write(self) -> None:
        body = {"spec": self.spec, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "cells": self.cells}
        with atomic_path(str(self.path)) as tmp:
            Path(tmp).write_text(json.dumps(body, indent=1) + "\n")
