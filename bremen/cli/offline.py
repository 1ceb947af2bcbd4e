"""``offline.py`` / ``bremen offline``: BREMEN on a fixed dataset.

With no arguments, ``python offline.py`` runs the CPU demo: BREMEN on the demo task's pure dataset (collected
from the shipped behavior policy when absent) with the ``cpu`` preset, ending with a table of the behavior
data's return, BC's and BREMEN's. Run it again and it reuses (or resumes) the same run directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bremen.flags import add_original_flags, script_parser

DEMO_TASK = "half_cheetah"
DEMO_ARGS = ["--env", DEMO_TASK, "--preset", "cpu", "--seed", "0", "--exp_name", "demo"]


def build_parser(prog: str = "offline.py") -> argparse.ArgumentParser:
    return script_parser("offline", prog)


def add_parser(sub) -> None:
    p = sub.add_parser("offline", help="BREMEN, ME-TRPO or a baseline on a fixed dataset (same flags as offline.py)")
    add_original_flags(p, "offline")
    p.set_defaults(func=lambda a: run_offline(a, demo=False))


def ensure_demo_data(exp) -> None:
    """Collect the demo's pure dataset from the shipped behavior policy if it is missing."""
    if exp.data_path.is_file():
        return
    from bremen.data.collect import run_collect

    print(f"demo: collecting {exp.flags['n_train']} transitions of {exp.task} with the shipped behavior policy "
          f"-> {exp.data_path}", file=sys.stderr)
    run_collect(exp.task, "pure", exp.flags["n_train"], exp.data_path, seed=exp.seed)


def run_offline(args, demo: bool) -> int:
    from bremen.build import build_run, label_of
    from bremen.cli import run_each
    from bremen.experiment import resolve
    from bremen.run.report import summary_table

    exps = resolve(args, "offline")
    if demo:
        for exp in exps:
            ensure_demo_data(exp)
    # every seed's inputs and run directory are checked before the first one starts
    together = None
    if getattr(args, "vmap_seeds", False):
        from bremen.run.seeds import check_vmappable, run_seeds_together

        check_vmappable([exp.flags["algorithm"] for exp in exps])
        together = run_seeds_together
    runs = [build_run(exp, resume=args.resume or (demo and (exp.run_dir / "checkpoint.npz").exists()),
                      force=args.force) for exp in exps]
    summaries = run_each(runs, together=together)
    print(summary_table(summaries, label_of(exps[0].flags["algorithm"])))
    for s in summaries:
        d = s["run_dir"]
        extra = "".join(f"{name}, " for name in ("agent.csv", "trpo.csv", "dynamics.csv", "policy_bc/")
                        if Path(d, name.rstrip("/")).exists())
        print(f"{s['task']} seed {s['seed']}: run directory {d}/ (progress.csv, {extra}summary.json, "
              f"policy_final/, policy_best/); TensorBoard: tensorboard --logdir {d}")
    return 0


def main(argv=None) -> int:
    from bremen.cli import run

    argv = sys.argv[1:] if argv is None else list(argv)
    demo = not argv
    args = build_parser().parse_args(DEMO_ARGS if demo else argv)
    return run(lambda a: run_offline(a, demo), args)
