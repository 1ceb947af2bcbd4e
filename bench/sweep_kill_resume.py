"""A sweep killed halfway and resumed, then the same grid on a local Ray instance; wall times to JSON.

    .venv/bin/python bench/sweep_kill_resume.py [--preset smoke] [--out log/sweep_demo]

Grid: hopper and half_cheetah (their pure datasets in data/, `bremen collect --task T --noise pure --n 100000
--seed 0 --out data/T/pure.h5`) × BC and BREMEN × seeds 0 1 2 = 12 cells.

1. `bremen sweep ... --jobs 2 --out OUT/local`, SIGINT (Ctrl-C) once half the cells are done; the runs
   checkpoint and stop, sweep.json marks them stopped;
2. the same command again: the finished cells are skipped, the others resume;
3. `bremen sweep ... --preset smoke --ray auto --out OUT/ray` on a `ray start --head --num-cpus 2` instance;
4. `bremen table OUT/local` and `bremen plot OUT/local` (docs/sweep/).

Output: bench/results/sweep_kill_resume.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def grid(preset: str) -> list:
    return ["--tasks", "hopper", "half_cheetah", "--algorithms", "bc", "bremen", "--seeds", "0", "1", "2",
            "--preset", preset]


def bremen(*args, env=None):
    return [str(BIN / "bremen"), *map(str, args)]


def done_cells(out: Path) -> int:
    try:
        cells = json.loads((out / "sweep.json").read_text())["cells"]
    except (OSError, json.JSONDecodeError):
        return 0
    return sum(c["state"] == "done" for c in cells.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--out", default="log/sweep_demo")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "sweep_kill_resume.json"))
    ap.add_argument("--figures", default=str(ROOT / "docs" / "sweep"))
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    res = {"grid": "hopper, half_cheetah x bc, bremen x seeds 0 1 2", "preset": args.preset,
           "load_average_before": os.getloadavg()}

    # 1. local, two at a time, interrupted once half the cells are done
    t0 = time.time()
    proc = subprocess.Popen(bremen("sweep", *grid(args.preset), "--jobs", "2", "--out", out / "local"), cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    while proc.poll() is None and done_cells(out / "local") < 6:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the sweep and its runs
    err = proc.communicate()[1]
    res["first"] = {"wall_s": round(time.time() - t0, 1), "returncode": proc.returncode,
                    "states": _states(out / "local"), "last_lines": err.strip().splitlines()[-3:]}
    # 2. the same command again
    t0 = time.time()
    again = subprocess.run(bremen("sweep", *grid(args.preset), "--jobs", "2", "--out", out / "local"), cwd=ROOT,
                           capture_output=True, text=True)
    res["resumed"] = {"wall_s": round(time.time() - t0, 1), "returncode": again.returncode,
                      "states": _states(out / "local"), "resuming": again.stderr.count("(resuming)"),
                      "first_line": again.stderr.splitlines()[0], "last_line": again.stderr.strip().splitlines()[-2]}
    # 3. the smoke grid on a local Ray instance
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
                    "--disable-usage-stats"], capture_output=True, env=env, check=True)
    try:
        t0 = time.time()
        ray = subprocess.run(bremen("sweep", *grid("smoke"), "--ray", "auto", "--out", out / "ray"), cwd=ROOT,
                             capture_output=True, text=True, env=env)
        res["ray_smoke"] = {"wall_s": round(time.time() - t0, 1), "returncode": ray.returncode,
                            "states": _states(out / "ray"), "last_line": ray.stderr.strip().splitlines()[-2]}
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, env=env)
    # 4. what users look at
    fig = Path(args.figures)
    fig.mkdir(parents=True, exist_ok=True)
    table = subprocess.run(bremen("table", out / "local", "--out", fig / "table.md"), cwd=ROOT, capture_output=True,
                           text=True)
    subprocess.run(bremen("plot", out / "local", "--out", fig / "curves.png", "--title",
                          f"bremen sweep (preset {args.preset}): mean over 3 seeds, 95 % bootstrap band"), cwd=ROOT,
                   check=True)
    res["table"] = table.stdout
    res["load_average_after"] = os.getloadavg()
    Path(args.results).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "table"}, indent=1))
    print(table.stdout)


def _states(out: Path) -> dict:
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    counts: dict = {}
    for c in cells.values():
        counts[c["state"]] = counts.get(c["state"], 0) + 1
    return counts


if __name__ == "__main__":
    main()
