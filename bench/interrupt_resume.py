"""Ctrl-C in every phase of a `cpu` offline run, each followed by `--resume`, against an uninterrupted run.

One run directory is interrupted with SIGINT four times — during the ensemble fit, while the first BC
chunk compiles, while the first TRPO chunk compiles, and after a few outer iterations — and resumed after
each; the last resume runs to the end. Records every exit status and the checkpoint phase left behind,
then compares progress.csv (timing columns aside) and the final policy with an uninterrupted run of the
same command. Writes ``bench/results/interrupt_resume.json``.

    python bench/interrupt_resume.py [--env half_cheetah] [--data data/half_cheetah/pure.h5]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TIMING = ("time_trpo", "time_eval", "time_total")


def progress(run: Path) -> list[dict]:
    if not (run / "progress.csv").exists():
        return []
    with open(run / "progress.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def checkpoint_phase(run: Path):
    if not (run / "checkpoint.npz").exists():
        return None
    with np.load(run / "checkpoint.npz") as z:
        meta = json.loads(z["__meta_json__"].tobytes().decode())
    return {"phase": meta["phase"], "next_iteration": meta["next_iteration"]}


def interrupted(cmd: list, run: Path, marker: str, delay: float, min_rows: int = 0) -> dict:
    log = run.parent / "stderr.txt"
    t0 = time.time()
    with open(log, "wb") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        while marker.encode() not in log.read_bytes() or len(progress(run)) < min_rows:
            if p.poll() is not None:
                raise RuntimeError(f"ended before {marker!r}: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        t_sig = time.time()
        rc = p.wait()
    text = log.read_text()
    return {"marker": marker, "delay_s": delay, "sent_after_s": round(t_sig - t0, 1), "exit": rc,
            "exit_after_signal_s": round(time.time() - t_sig, 2), "segfault": "Segmentation fault" in text,
            "last_line": text.strip().splitlines()[-1], "checkpoint": checkpoint_phase(run)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="half_cheetah")
    ap.add_argument("--data", default=str(ROOT / "data/half_cheetah/pure.h5"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/interrupt_resume.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bremen-interrupt-"))
    base = [sys.executable, str(ROOT / "offline.py"), "--env", args.env, "--preset", "cpu", "--seed", "0",
            "--data_path", args.data]
    run = work / "interrupted"
    steps = []
    steps.append(interrupted(base + ["--log_dir", str(run)], run, "dynamics:", 15.0))
    resume = base + ["--log_dir", str(run), "--resume"]
    steps.append(interrupted(resume, run, "behavior cloning:", 1.0))
    steps.append(interrupted(resume, run, "BREMEN:", 1.0))
    steps.append(interrupted(resume, run, "BREMEN:", 0.0, min_rows=5))
    for s in steps:
        print(s, flush=True)
    t0 = time.time()
    last = subprocess.run(resume, capture_output=True, text=True, cwd=ROOT)
    final_resume = {"exit": last.returncode, "wall_s": round(time.time() - t0, 1)}
    t0 = time.time()
    full = subprocess.run(base + ["--log_dir", str(work / "uninterrupted")], capture_output=True, text=True, cwd=ROOT)
    uninterrupted = {"exit": full.returncode, "wall_s": round(time.time() - t0, 1)}

    def digest(r: Path) -> str:
        with np.load(r / "policy_final" / "policy.npz") as z:
            return hashlib.sha256(b"".join(np.ascontiguousarray(z[k]).tobytes() for k in sorted(z.files))).hexdigest()

    result = {
        "command": " ".join(base[1:]), "interrupts": steps, "final_resume": final_resume,
        "uninterrupted": uninterrupted,
        "progress_equal": progress(run) == progress(work / "uninterrupted"),
        "policy_final_equal": digest(run) == digest(work / "uninterrupted"),
        "final_return": progress(run)[-1]["episode_mean"],
    }
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
