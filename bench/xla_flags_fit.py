"""Does any XLA:CPU flag of this jaxlib speed up the paper-size ensemble fit? One child process per setting.

XLA_FLAGS is read once, when jaxlib starts, so every setting runs in its own process: the 2048² sgemm peak,
then ``dynamics.train_epochs`` at paper size (5 × 2×1024, batch 1000, ``--steps`` Adam steps per call), as
bench/ensemble_flops.py measures them. Settings are interleaved over ``--rounds`` rounds because the
machine's speed drifts; the summary is the median per setting. Writes bench/results/xla_flags_fit.json.
Run: ``python bench/xla_flags_fit.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SETTINGS = ["", "--xla_cpu_use_onednn=true", "--xla_cpu_experimental_onednn_custom_call=true",
            "--xla_cpu_use_xnnpack=true", "--xla_cpu_use_thunk_runtime=false"]
CHILD = """
import json, sys
sys.path.insert(0, {here!r})
from ensemble_flops import fit_gflops, peak_gflops
peak = peak_gflops(10)
fit = fit_gflops(1024, {steps}, {repeats})
print(json.dumps({{"peak_gflops": peak, "fit_gflops": fit["gflops"]}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6, help="Adam steps per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(HERE / "results" / "xla_flags_fit.json"))
    args = p.parse_args()

    code = CHILD.format(here=str(HERE), steps=args.steps, repeats=args.repeats)
    runs: dict[str, list] = {s: [] for s in SETTINGS}
    for r in range(args.rounds):
        for s in SETTINGS:
            env = dict(os.environ, XLA_FLAGS=s)
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            m = json.loads(out.stdout.strip().splitlines()[-1])
            m["fraction_of_peak"] = m["fit_gflops"] / m["peak_gflops"]
            runs[s].append(m)
            print(json.dumps({"round": r, "flags": s or "(none)", **{k: round(v, 3) for k, v in m.items()}}),
                  flush=True)
    summary = {s or "(none)": {k: float(np.median([m[k] for m in ms]))
                               for k in ("peak_gflops", "fit_gflops", "fraction_of_peak")} for s, ms in runs.items()}
    res = {"steps_per_call": args.steps, "runs": {s or "(none)": ms for s, ms in runs.items()}, "median": summary,
           "meta": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
