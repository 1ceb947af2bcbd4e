"""``recursive.py`` / ``bremen recursive``: deployment-efficient BREMEN (or ME-TRPO) from scratch.

The original's flags (``--n_train`` = total real steps, ``--onpol_iters`` outer iterations, ``--interval``
outer iterations per deployment) or the plainer ``--deployments N --batch_size B``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bremen.errors import UserError
from bremen.flags import DESCRIPTIONS, add_original_flags, script_parser

def build_parser(prog: str = "recursive.py") -> argparse.ArgumentParser:
    return script_parser("recursive", prog)


def add_parser(sub) -> None:
    p = sub.add_parser("recursive", help="BREMEN, ME-TRPO or a baseline in a few deployments from scratch (same flags as recursive.py)",
                       description=DESCRIPTIONS["recursive"])
    add_original_flags(p, "recursive")
    p.set_defaults(func=run_recursive)


def run_recursive(args) -> int:
    from bremen.build import build_run
    from bremen.cli import run_each
    from bremen.experiment import resolve
    from bremen.run.report import deployment_table

    if args.data_path and not Path(args.data_path).exists():
        raise UserError(f"--data_path {args.data_path}: no such dataset (recursive.py starts from it instead of a "
                        f"uniform-random first batch)")
    exps = resolve(args, "recursive")
    runs = [build_run(exp, resume=args.resume, force=args.force) for exp in exps]
    summaries = run_each(runs, lambda r: f"; {r.cfg.deployments} deployments of {r.cfg.batch_size} real steps, "
                                          f"{r.chunks} outer iterations each")
    print(deployment_table(summaries))
    for s in summaries:
        print(f"{s['task']} seed {s['seed']}: run directory {s['run_dir']}/ (deployments.csv, deployments.png, "
              f"progress.csv, deployments/*.h5, policy_deployment<d>/, policy_final/, policy_best/)")
    return 0


def main(argv=None) -> int:
    from bremen.cli import run

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(run_recursive, args)
