"""Finding and reading run directories for plots and tables (``bremen plot``, ``bremen table``).

A run directory is one that holds ``params.json`` and ``progress.csv`` (what offline.py and recursive.py
write). Given run directories or any folders above them (a sweep's output, ``log/``), :func:`find_runs`
reads every run below; :func:`group_runs` sorts them into panels (task, script, dataset) and, within a panel,
lines (the algorithm, or any config keys given with ``by``), each line holding its seeds.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from bremen.errors import UserError



def algorithm_label(name: str) -> str:
    from bremen.algos import registry
    from bremen.experiment import ALGORITHM_LABELS

    return ALGORITHM_LABELS.get(name) or registry.LABELS.get(name, name)


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _num(v: Optional[str]):
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return v


@dataclass
class RunRecord:
    """One run directory's configuration, logs and (when it finished) summary."""

    path: Path
    config: dict
    progress: list
    deployments: list
    summary: Optional[dict]

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def script(self) -> str:
        return self.config.get("script", "offline")

    @property
    def algorithm(self) -> str:
        return self.config.get("flags", {}).get("algorithm", "bremen")

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def dataset(self) -> str:
        """The dataset an offline run trained on (its file name's stem); recursive runs make their own data."""
        if self.script == "recursive":
            return "deployments"
        return Path(self.config.get("data_path", "?")).stem

    def value(self, key: str) -> Any:
        """A config value by dotted path (``preset``, ``flags.alpha``, ``agent.lagrange_thresh``, ...)."""
        obj: Any = self.config
        for part in key.split("."):
            if not isinstance(obj, dict) or part not in obj:
                raise UserError(f"--by {key}: {self.path}/params.json has no such key (examples: preset, "
                                f"flags.alpha, flags.target_kl, agent.<setting>)")
            obj = obj[part]
        return obj


def read_run(path: Path) -> RunRecord:
    try:
        config = json.loads((path / "params.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}/params.json cannot be read ({e}); is it a bremen run directory?")
    summary_file = path / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    return RunRecord(path, config, _read_csv(path / "progress.csv"), _read_csv(path / "deployments.csv"), summary)


def is_run_dir(path: Path) -> bool:
    return (path / "params.json").is_file() and (path / "progress.csv").is_file()


def find_runs(paths: Sequence) -> list[RunRecord]:
    """Every run directory at or below ``paths``, in path order; a missing path or no run at all is an error."""
    found: dict = {}
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p} does not exist; give run directories or folders that hold them")
        dirs = [p] if is_run_dir(p) else sorted(q.parent for q in p.rglob("params.json") if is_run_dir(q.parent))
        for d in dirs:
            found.setdefault(d.resolve(), d)
    if not found:
        raise UserError(f"no bremen run directories (params.json + progress.csv) in {', '.join(map(str, paths))}")
    return [read_run(d) for _, d in sorted(found.items())]


def line_label(run: RunRecord, by: Sequence[str]) -> str:
    label = algorithm_label(run.algorithm)
    extra = ", ".join(f"{k.split('.')[-1]}={run.value(k)}" for k in by)
    return f"{label} ({extra})" if extra else label


def panel_label(run: RunRecord) -> str:
    return f"{run.task} {run.script}" + ("" if run.script == "recursive" else f" · {run.dataset}")


def group_runs(runs: Sequence[RunRecord], by: Sequence[str] = ()) -> dict:
    """{panel: {line: [runs, one per seed]}} in first-seen order."""
    out: dict = {}
    for r in runs:
        out.setdefault(panel_label(r), {}).setdefault(line_label(r, by), []).append(r)
    return out
