"""MP4 videos of a policy's episodes, rendered headless from a camera that follows the robot.

Frames go to the encoder as they are rendered (an episode of 1000 frames at 480x480 would otherwise hold
~700 MB), into a temporary file beside the destination that is renamed into place when the episode ends,
so an interrupted recording never leaves a truncated video under the final name.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from bremen.errors import UserError


@dataclass(frozen=True)
class VideoSettings:
    """How episodes are recorded."""

    episodes: int = 3
    """Episodes to record (the original's num_path_onpol)."""
    max_steps: int = 1000
    """At most this many env steps per episode (a video has one more frame: the reset state)."""
    width: int = 480
    height: int = 480
    quality: str = "fast"
    """fast: no shadows, reflections or multisampling (3-8x cheaper with software rendering); high: MuJoCo's."""
    fps: Optional[int] = None
    """Frames per second of the file; None: real time (1 / the env's control step)."""
    stochastic: bool = False
    """Sample actions instead of taking the deterministic mean."""


def episode_path(out_dir: Path, task_name: str, k: int, prefix: str = "") -> Path:
    return Path(out_dir) / f"{task_name}{prefix}_episode{k}.mp4"


def record_videos(task, policy, out_dir, settings: VideoSettings = VideoSettings(), seed: int = 0,
                  prefix: str = "", progress: bool = True,
                  on_written: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Render ``settings.episodes`` episodes of ``policy`` (a NumpyPolicy) on ``task`` to
    ``out_dir/<task><prefix>_episode<k>.mp4``; returns one dict per episode (path, steps, return, wall time).

    ``on_written(line)`` is called as each file lands (the command prints it); env seeds are the evaluation
    seeds of ``seed``, so episode k starts where ``bremen evaluate``'s episode k does.
    """
    from tqdm import tqdm

    from bremen.evaluation import EVAL_STREAM, derived_seed
    from bremen.tasks.rendering import camera_for

    try:
        import imageio.v2 as imageio
    except ImportError:
        raise UserError("recording videos needs imageio and imageio-ffmpeg: pip install 'bremen[video]'") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = task.make_env(render_mode="rgb_array")
    camera = camera_for(env, settings.width, settings.height, settings.quality)
    fps = settings.fps or env.metadata.get("render_fps", 30)
    rng = np.random.default_rng(seed)
    results = []
    try:
        for k in range(settings.episodes):
            out = episode_path(out_dir, task.name, k, prefix)
            tmp = out.with_name(f".{out.stem}.tmp.mp4")
            bar = tqdm(total=settings.max_steps + 1, desc=f"episode {k + 1}/{settings.episodes}", unit="frame",
                       disable=not progress, leave=False, file=sys.stderr, dynamic_ncols=True)
            t0 = time.time()
            try:
                with imageio.get_writer(tmp, fps=fps, macro_block_size=1, format="FFMPEG") as writer:
                    obs, _ = env.reset(seed=derived_seed(seed, EVAL_STREAM, 10_000, k))
                    writer.append_data(camera.frame())
                    bar.update(1)
                    ret, done, t = 0.0, False, 0
                    while not done and t < settings.max_steps:
                        act = policy.act(obs, deterministic=not settings.stochastic, rng=rng)
                        obs, r, term, trunc, _ = env.step(act)
                        writer.append_data(camera.frame())
                        bar.update(1)
                        ret, t, done = ret + r, t + 1, term or trunc
                os.replace(tmp, out)
            finally:
                bar.close()
                if tmp.exists():
                    tmp.unlink()
            wall = time.time() - t0
            res = {"path": str(out), "steps": t, "frames": t + 1, "return": float(ret), "wall_s": wall,
                   "fps_rendered": (t + 1) / wall if wall > 0 else float("inf")}
            results.append(res)
            if on_written is not None:
                on_written(f"wrote {out}: {t} steps, return {ret:.1f} ({t + 1} frames in {wall:.1f} s)")
    finally:
        camera.close()
        env.close()
    return results
