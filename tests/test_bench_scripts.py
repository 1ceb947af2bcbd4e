"""The GPU readiness bench runs end to end at a tiny size on the CPU, and its figures are real measurements."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_paper_size_bench_runs_at_tiny_size(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_paper_size.py"), "--size", "tiny", "--repeats", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["size"] == "tiny" and res["device"]
    assert res["ensemble_fit"]["steps_per_s"] > 0
    for h in (50, 100):
        it = res[f"trpo_iteration_h{h}"]
        assert it["seconds_per_iteration"] > 0 and it["rollouts"] == 1000 // h
        assert it["matmul_gflop_at_one_line_search_try"] > 0
    assert res["trpo_iteration_h50"]["matmul_gflop_at_one_line_search_try"] == res["trpo_iteration_h100"][
        "matmul_gflop_at_one_line_search_try"]  # the same 1000 rows either way
    assert res["bc"]["steps_per_s"] > 0
    for name in ("bc", "bcq"):
        v = res[f"vmapped_seeds_{name}"]
        assert v["seeds"] == 3 and v["one_seed_updates_per_s"] > 0 and v["vmapped_seed_updates_per_s"] > 0
