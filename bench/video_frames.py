"""Videos of the shipped policies: contact sheets (first, middle, last frame) and rendering speed.

For each task, records one full episode of the shipped policy with ``record_videos`` (as ``save_video.py``
does), at the default 480x480 ``fast`` setting, with the first video seed whose episode 0 runs longest
(walker2d's and hopper's shipped policies fall in some episodes), reads the first, middle and last frames
back from the MP4 and writes them side by side to ``docs/videos/<task>.png``. Then times one 1000-step
hopper episode at several resolutions and qualities. Writes ``bench/results/video.json``.

    python bench/video_frames.py [--tasks hopper ...] [--no-speed]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bremen.tasks as T  # noqa: E402
from bremen.io.policy_io import load_policy  # noqa: E402
from bremen.io.video import VideoSettings, record_videos  # noqa: E402
from bremen.evaluation import EVAL_STREAM, derived_seed  # noqa: E402
from bremen.tasks.gl import requested_backend  # noqa: E402

TASKS = ["half_cheetah", "hopper", "walker2d", "ant", "cheetah_run"]


def longest_seed(task, policy, seeds=range(10)) -> tuple[int, int]:
    """(seed, steps) of the video seed whose first episode runs longest (no rendering)."""
    env, best = task.make_env(), (0, -1)
    for s in seeds:
        obs, _ = env.reset(seed=derived_seed(s, EVAL_STREAM, 10_000, 0))
        done, t = False, 0
        while not done:
            obs, _, term, trunc, _ = env.step(policy.act(obs))
            t, done = t + 1, term or trunc
        if t > best[1]:
            best = (s, t)
        if t >= task.horizon:
            break
    env.close()
    return best


def contact_sheet(video: Path, out: Path, title: str) -> list[int]:
    import imageio.v3 as iio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = iio.imread(video)
    picks = [0, len(frames) // 2, len(frames) - 1]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, i in zip(axes, picks):
        ax.imshow(frames[i])
        ax.set_title(f"step {i}", fontsize=11)
        ax.axis("off")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return picks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench/results/video.json"))
    args = ap.parse_args()
    results = {"sheets": {}, "speed": []}
    tmp = Path(tempfile.mkdtemp(prefix="bremen-video-bench-"))
    for name in args.tasks:
        task, policy = T.make(name), load_policy(ROOT / "weights" / name)
        seed, steps = longest_seed(task, policy)
        r = record_videos(task, policy, tmp / name, VideoSettings(episodes=1), seed, progress=False)[0]
        sheet = ROOT / "docs/videos" / f"{name}.png"
        picks = contact_sheet(Path(r["path"]), sheet, f"{name}: shipped policy, video seed {seed}, "
                              f"{r['steps']} steps, return {r['return']:.0f} (save_video.py --policy weights/{name} "
                              f"--seed {seed})")
        results["sheets"][name] = {"seed": seed, "steps": r["steps"], "return": r["return"], "frames": picks,
                                   "sheet": str(sheet.relative_to(ROOT)), "wall_s": r["wall_s"],
                                   "frames_per_s": r["fps_rendered"]}
        print(name, results["sheets"][name], flush=True)
    if not args.no_speed:
        task, policy = T.make("hopper"), load_policy(ROOT / "weights/hopper")
        seed, _ = longest_seed(task, policy)
        for w, h, q in [(480, 480, "fast"), (240, 240, "fast"), (480, 480, "high"), (240, 240, "high")]:
            t0 = time.time()
            r = record_videos(task, policy, tmp / "speed", VideoSettings(episodes=1, width=w, height=h, quality=q),
                              seed, progress=False)[0]
            row = {"task": "hopper", "width": w, "height": h, "quality": q, "frames": r["frames"],
                   "wall_s": round(time.time() - t0, 2), "frames_per_s": round(r["frames"] / (time.time() - t0), 1)}
            results["speed"].append(row)
            print(row, flush=True)
    results["machine"] = {"cpus": os.cpu_count(), "MUJOCO_GL": requested_backend(),
                          "load_avg_1m": round(os.getloadavg()[0], 2)}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
