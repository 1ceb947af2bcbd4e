"""``bremen table RUNS...``: final and best returns over seeds, with intervals and normalized scores
(bremen.analysis.tables)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("table", help="results table of runs: final and best return over seeds",
                       description="Final and best returns of finished runs, mean ± s.e. and the 95 % bootstrap "
                       "interval over seeds, and normalized scores (0 = uniform random, 100 = --reference).")
    p.add_argument("runs", nargs="+", metavar="RUN_OR_DIR", help="run directories or folders above them")
    p.add_argument("--episodes", type=int, default=0, metavar="N",
                   help="evaluate every run's policy_final/ and policy_best/ again over N episodes on env seeds "
                        "shared by all (default 0: the runs' own evaluations)")
    p.add_argument("--format", default="md", choices=("md", "csv", "latex"), help="table format (default md)")
    p.add_argument("--reference", default="behavior", metavar="behavior|d4rl|RETURN",
                   help="the return that scores 100: the behavior data's (default), D4RL's expert score, or a number")
    p.add_argument("--by", nargs="+", default=[], metavar="KEY", help="config keys that split rows too")
    p.add_argument("--out", default=None, help="also write the table to this file")
    p.add_argument("--json", default=None, help="also write every statistic (per seed too) as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from bremen.analysis.runs import find_runs
    from bremen.analysis.tables import format_table, table_rows
    from bremen.errors import UserError
    from bremen.io.paths import writable_file

    if args.episodes < 0:
        raise UserError(f"--episodes {args.episodes}: give a positive number of episodes (or 0)")
    for path, flag in ((args.out, "--out"), (args.json, "--json")):
        if path:
            writable_file(Path(path), flag)
    runs = find_runs(args.runs)
    unfinished = [r for r in runs if not r.finished]
    if len(unfinished) == len(runs):
        raise UserError(f"none of the {len(runs)} runs has finished (no summary.json); nothing to tabulate")
    say = lambda m: print(m, file=sys.stderr)
    rows = table_rows(runs, args.episodes, args.reference, args.by, progress=say if args.episodes else None)
    text = format_table(rows, args.format)
    print(text)
    ref = {"behavior": "the behavior data's return", "d4rl": "D4RL's expert score (0 = D4RL's random)"}
    say(f"normalized: 0 = uniform random, 100 = {ref.get(args.reference, args.reference)}; evaluation: "
        f"{rows[0]['evaluation'] if rows else '-'}")
    if unfinished:
        say(f"not counted ({len(unfinished)} unfinished): " + ", ".join(str(r.path) for r in unfinished))
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0
