"""``bremen sweep``: a grid of runs, one run directory per cell, on local processes or Ray (bremen.sweep)."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

GRID_FLAGS = ("tasks", "algorithms", "seeds", "script", "preset", "noises", "data_path", "set", "args", "vmap_seeds")


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="a grid of offline or recursive runs, local processes or Ray, resumable",
                       description="Run tasks × datasets × algorithms × seeds, one run directory per cell under "
                       "--out, with sweep.json recording each cell's state. Run the same command again to skip "
                       "finished cells and resume the others. Grid flags can come from --spec FILE (JSON or YAML, "
                       "the same names); flags on the command line win.")
    p.add_argument("--spec", default=None, help="JSON or YAML file with the grid (keys: " + ", ".join(GRID_FLAGS) + ")")
    p.add_argument("--tasks", nargs="+", default=None)
    p.add_argument("--algorithms", nargs="+", default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--script", default=None, choices=("offline", "recursive"), help="default offline")
    p.add_argument("--preset", default=None, choices=("paper", "cpu", "smoke"), help="default cpu")
    p.add_argument("--noises", nargs="+", default=None, help="offline datasets data/<task>/<noise>.h5 (default pure)")
    p.add_argument("--data_path", default=None, help="one dataset for every cell instead; {task} is replaced")
    p.add_argument("--set", action="append", default=None, metavar="SECTION.KEY=VALUE", help="passed to every cell")
    p.add_argument("--args", default=None, help="further flags for every cell, one string: --args '--deployments 3'")
    p.add_argument("--vmap_seeds", action="store_true", default=None,
                   help="model-free baselines: each (task, dataset, algorithm)'s seeds as one program")
    p.add_argument("--jobs", type=int, default=1, help="local processes at a time (at most the machine's cores)")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS", help="run the jobs on a Ray cluster instead")
    p.add_argument("--cpus_per_job", type=float, default=1.0, help="Ray: CPUs each job reserves (default 1)")
    p.add_argument("--out", required=True, help="sweep folder: one run directory per cell, sweep.json, _logs/")
    p.set_defaults(func=run)


def load_spec_file(path: str) -> dict:
    from bremen.errors import UserError

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise UserError(f"--spec {p}: cannot read it ({e.strerror})")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:
        raise UserError(f"--spec {p}: not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                        f"({str(e).splitlines()[0]})")
    if not isinstance(data, dict):
        raise UserError(f"--spec {p}: expected a mapping of grid keys ({', '.join(GRID_FLAGS)})")
    unknown = sorted(set(data) - set(GRID_FLAGS))
    if unknown:
        raise UserError(f"--spec {p}: unknown key(s) {', '.join(unknown)}; known: {', '.join(GRID_FLAGS)}")
    return data


def build_spec(args):
    import shlex

    from bremen.errors import UserError
    from bremen.sweep.grid import Spec

    values = load_spec_file(args.spec) if args.spec else {}
    for key in GRID_FLAGS:
        v = getattr(args, key)
        if v is not None:
            values[key] = v
    if isinstance(values.get("args"), str):
        values["args"] = shlex.split(values["args"])
    for key in ("tasks", "algorithms"):
        if not values.get(key):
            raise UserError(f"--{key} is required (on the command line or in --spec)")
    known = {f.name for f in fields(Spec)}
    return Spec(**{k: v for k, v in values.items() if k in known})


def run(args) -> int:
    from bremen.sweep.execute import run_sweep

    counts = run_sweep(build_spec(args), Path(args.out), args.jobs, args.ray, args.cpus_per_job,
                       say=lambda m: print(m, file=sys.stderr, flush=True))
    if counts.get("done", 0) == sum(counts.values()):
        print(f"all cells done: bremen table {args.out}; bremen plot {args.out} --out {args.out}/curves.png",
              file=sys.stderr)
    return 0 if not counts.get("failed") else 1
