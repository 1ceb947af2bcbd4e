"""``bremen diagnose RUN``: the learned model against the real env, open-loop error per step and member
(bremen.analysis.diagnose)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("diagnose", help="a run's learned model against the real env: open-loop error per member",
                       description="Replay real episodes of the run's policy through every ensemble member open "
                       "loop (same start state, same actions) and plot the error per step (the original's "
                       "--eval_model). Writes a figure and its numbers as JSON.")
    p.add_argument("run", help="a model-based run directory (bremen, me_trpo, mopo, morel; offline or recursive)")
    p.add_argument("--policy", default="final", help="final, best, bc or a policy directory (default final)")
    p.add_argument("--episodes", type=int, default=10, help="real episodes (default 10)")
    p.add_argument("--horizon", type=int, default=100, help="steps per episode at most (default 100)")
    p.add_argument("--out", default=None, help="figure (.png/.pdf/.svg; default RUN/diagnose.png); JSON beside it")
    p.set_defaults(func=run)


def run(args) -> int:
    from bremen.analysis.diagnose import diagnose, plot_diagnosis
    from bremen.errors import UserError
    from bremen.io.paths import writable_file

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if args.episodes < 1 or args.horizon < 1:
        raise UserError("--episodes and --horizon must be at least 1")
    out = Path(args.out) if args.out else run_dir / "diagnose.png"
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"--out {out}: the file type must be one of .png, .pdf, .svg")
    writable_file(out, "--out")
    res = diagnose(run_dir, args.policy, args.episodes, args.horizon)
    plot_diagnosis(res, out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    steps = [t for t in (1, 10, 50, args.horizon) if t <= args.horizon]
    print(f"open-loop error (normalized MSE) at steps {', '.join(map(str, steps))}:")
    for k, curve in enumerate(res["open_loop_members"]):
        print(f"  member {k}: " + "  ".join("-" if curve[t] is None else f"{curve[t]:.3g}" for t in steps))
    mean = res["open_loop_ensemble_mean"]
    print("  ensemble mean: " + "  ".join("-" if mean[t] is None else f"{mean[t]:.3g}" for t in steps))
    print(f"-> {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0
