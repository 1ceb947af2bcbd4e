"""``bremen plot RUNS... --out FILE``: learning curves of run directories (bremen.analysis.plots)."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="learning curves of runs: mean over seeds with a 95 %% bootstrap band",
                       description="Learning curves of run directories (or folders that hold them: a sweep, log/): "
                       "evaluation return against outer iteration, deployment or real samples, one line per "
                       "algorithm (or per --by value), one panel per task, script and dataset.")
    p.add_argument("runs", nargs="+", metavar="RUN_OR_DIR", help="run directories or folders above them")
    p.add_argument("--out", required=True, help="figure file: .png, .pdf or .svg")
    p.add_argument("--x", nargs="+", default=None, choices=("iteration", "deployment", "samples"),
                   help="x axes, one column each (default: iteration for offline runs; deployment and samples "
                        "when every run is recursive)")
    p.add_argument("--by", nargs="+", default=[], metavar="KEY",
                   help="config keys that split lines too, e.g. flags.alpha or agent.lagrange_thresh")
    p.add_argument("--title", default=None, help="figure title")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from bremen.analysis.plots import plot_runs
    from bremen.analysis.runs import find_runs
    from bremen.io.paths import writable_file

    writable_file(Path(args.out), "--out")
    runs = find_runs(args.runs)
    out = plot_runs(runs, args.out, args.x, args.by, args.title)
    done = sum(r.finished for r in runs)
    print(f"{len(runs)} runs ({done} finished) -> {out}", file=sys.stderr)
    return 0
