"""One ``cpu`` recursive BREMEN run from two commits at once, one core each: wall time per run and per phase.

The same command (``recursive.py --env half_cheetah --preset cpu --seed 0``: 5 deployments of 20k real steps,
500 TRPO iterations each) runs from a git worktree of ``--before`` (default: the commit before the TRPO
pass-count work) and from this checkout, side by side, each pinned to its own core with ``taskset`` so that
both see the same machine at the same time. Whole-process wall and CPU time come from ``/usr/bin/time``; the
phase split and returns from each run's deployments.csv. Writes bench/results/recursive_before_after.json.

Run: ``python bench/recursive_before_after.py`` (about 35 minutes on 2 cores); ``--summarize`` rereads the two
run directories without running them again.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trpo_iteration import BEFORE_COMMIT, ROOT, worktree  # noqa: E402

PHASES = ("time_collect", "time_model", "time_bc", "time_trpo", "time_eval", "time_total")
COMMAND = ["recursive.py", "--env", "half_cheetah", "--preset", "cpu", "--seed", "0"]


def launch(tree: Path, core: int, run_dir: Path, log: Path) -> subprocess.Popen:
    cmd = ["/usr/bin/time", "-v", "taskset", "-c", str(core), sys.executable, *COMMAND, "--log_dir", str(run_dir)]
    return subprocess.Popen(cmd, cwd=tree, stdout=log.open("w"), stderr=subprocess.STDOUT)


def summarize(run_dir: Path, log: Path) -> dict:
    rows = list(csv.DictReader((run_dir / "deployments.csv").open()))
    text = log.read_text()

    def field(name):
        m = re.search(rf"{re.escape(name)}: (.+)", text)
        return m.group(1).strip() if m else None

    h, m, s = (["0"] + field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))[-3:]
    return {
        "wall_s": round(int(h) * 3600 + int(m) * 60 + float(s), 1),
        "cpu_s": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 1),
        "peak_rss_mb": round(int(field("Maximum resident set size (kbytes)")) / 1024),
        "phase_s": {k: round(sum(float(r[k]) for r in rows), 1) for k in PHASES},
        "time_trpo_per_deployment_s": [round(float(r["time_trpo"]), 1) for r in rows],
        "final_return_per_deployment": [float(r["final_return"]) for r in rows],
        "final_return": float(rows[-1]["final_return"]),
        "final_return_stderr": float(rows[-1]["final_return_stderr"]),
        "best_return": float(rows[-1]["best_return"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default=BEFORE_COMMIT, help="commit to compare with (a git worktree of it is made)")
    p.add_argument("--after", help="commit to run as 'after' (a git worktree of it; default: this checkout)")
    p.add_argument("--work", default="/tmp/bremen-recursive-before-after", help="where the two runs write")
    p.add_argument("--note", help="what else the machine did meanwhile, recorded in the JSON")
    p.add_argument("--summarize", action="store_true", help="only reread the two finished runs")
    args = p.parse_args()
    work = Path(args.work)
    trees = {"before": worktree(args.before), "after": worktree(args.after) if args.after else ROOT}
    if not args.summarize:
        work.mkdir(parents=True, exist_ok=True)
        procs = [launch(tree, core, work / side, work / f"{side}.log") for core, (side, tree) in enumerate(trees.items())]
        if any(proc.wait() for proc in procs):
            sys.exit(f"a run failed: see {work}/before.log and {work}/after.log")
    result = {side: summarize(work / side, work / f"{side}.log") for side in trees}
    result["after_over_before"] = {k: round(result["after"]["phase_s"][k] / result["before"]["phase_s"][k], 3)
                                   for k in PHASES if result["before"]["phase_s"][k]}
    result["after_over_before"]["wall"] = round(result["after"]["wall_s"] / result["before"]["wall_s"], 3)
    result.update(command=" ".join(["python", *COMMAND]),
                  **{f"{side}_commit": subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                                                      text=True).stdout.strip() for side, tree in trees.items()},
                  how="both runs at once, each pinned to one of the 2 cores (taskset)", note=args.note)
    out = ROOT / "bench" / "results" / "recursive_before_after.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["after_over_before"]), f"-> {out}")


if __name__ == "__main__":
    main()
