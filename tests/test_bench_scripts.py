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


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")


def test_recursive_summary_averages_seeds_and_writes_per_deployment_tables(tmp_path):
    """Two seeds of two deployments: return mean ± s.e., TRPO iterations per deployment from the cumulative
    count, the KL and imagined return of the last outer iteration that ran TRPO, and phase times, by hand."""
    dep_header = ["deployment", "real_samples", "final_return", "time_collect", "time_model", "time_bc", "time_trpo",
                  "time_eval", "time_total", "peak_rss_mb"]
    prog_header = ["deployment", "trpo_iterations", "behavior_policy_kl_mean", "imagined_return"]
    runs = {0: ([100, 300], [[0, 25, 1.0, 50.0], [0, 50, 2.0, 60.0], [1, 75, 3.0, 70.0]]),
            1: ([200, 500], [[0, 50, 4.0, 80.0], [1, 100, 5.0, 90.0], [1, 100, "nan", ""]])}  # a stopped TRPO
    for seed, (returns, progress) in runs.items():
        run = tmp_path / "study" / "half_cheetah" / "bremen" / f"seed{seed}"
        _write_csv(run / "deployments.csv", dep_header,
                   [[d, 20000 * (d + 1), r, 1, 10 * (seed + 1), 2, 100, 3, 200, 900] for d, r in enumerate(returns)])
        _write_csv(run / "progress.csv", prog_header, progress)
    out, md = tmp_path / "s.json", tmp_path / "per.md"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "recursive_summary.py"), f"p={tmp_path / 'study'}",
                           "--out", str(out), "--plot", str(tmp_path / "s.png"), "--markdown", str(md)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())["half_cheetah"]["p/bremen"]
    assert r["return_mean"] == [150.0, 400.0] and r["return_stderr"] == [50.0, 100.0]  # std(ddof=1)/sqrt(2)
    assert r["trpo_iterations_at_deployment_end"] == [50.0, 87.5]
    assert r["kl_to_bc_at_deployment_end"] == [3.0, 4.0] and r["imagined_return_at_deployment_end"] == [70.0, 80.0]
    rows = [line for line in md.read_text().splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert rows == ["| 1 | 20000 | 150 ± 50 | 50 | 3.0 | 70 | 1 | 15 | 2 | 100 | 3 | 200 |",
                    "| 2 | 40000 | 400 ± 100 | 38 | 4.0 | 80 | 1 | 15 | 2 | 100 | 3 | 200 |"]


def test_recursive_summary_draws_each_batch_size_in_its_own_panel():
    import importlib.util

    spec = importlib.util.spec_from_file_location("recursive_summary", ROOT / "bench" / "recursive_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = {"half_cheetah": {"a/bremen": {"real_samples": [20000, 40000]}, "b/bremen": {"real_samples": [100000, 200000]},
                            "a/sac": {"real_samples": [20000, 40000]}},
           "hopper": {"a/bremen": {"real_samples": [20000, 40000]}}}
    panels = mod.plot_panels(res)
    assert {k: sorted(v) for k, v in panels.items()} == {("half_cheetah", 20000): ["a/bremen", "a/sac"],
                                                         ("half_cheetah", 100000): ["b/bremen"],
                                                         ("hopper", 20000): ["a/bremen"]}
