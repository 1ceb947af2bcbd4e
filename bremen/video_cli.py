"""``save_video.py`` / ``bremen video``: render a policy's episodes to MP4 files, headless.

Takes an exported policy (a ``weights/<task>/`` directory, a run's ``policy_final``/``policy_best``, or a
run directory, whose ``policy_final`` is used), with the observation normalizer it was trained with (the
original restored only the weights and took the normalization from a dataset, and sampled stochastic
actions; here evaluation's deterministic mean is the default). Rendering uses ``MUJOCO_GL=egl`` unless
``MUJOCO_GL`` is set (``osmesa`` needs Debian's libosmesa6).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bremen.errors import UserError
from bremen.flags import add_original_flags


def _add_video_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video")
    g.add_argument("--policy", default=None, help="policy directory or run directory (default: --restore_path, "
                   "else weights/<env>)")
    g.add_argument("--episodes", type=int, default=None, help="episodes to record (default num_path_onpol = 3)")
    g.add_argument("--max_steps", type=int, default=1000, help="at most this many steps per episode")
    g.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic mean")
    g.add_argument("--fps", type=int, default=None, help="frames per second of the video (default: real time)")


def build_parser(prog: str = "save_video.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Record MP4 videos of a policy on its task.")
    add_original_flags(p, "save_video")
    _add_video_flags(p)
    return p


def add_parser(sub) -> None:
    p = sub.add_parser("video", help="record MP4 videos of a policy (same flags as save_video.py)")
    add_original_flags(p, "save_video")
    _add_video_flags(p)
    p.set_defaults(func=record)


def resolve_policy_path(args) -> Path:
    from bremen.io.policy_io import run_or_policy_dir

    return run_or_policy_dir(args.policy or args.restore_path or Path("weights") / args.env)


def record_videos(task, policy, out_dir: Path, episodes: int, seed: int = 0, max_steps: int = 1000,
                  stochastic: bool = False, fps=None, prefix: str = "") -> list[str]:
    """Render ``episodes`` episodes of ``policy`` (a NumpyPolicy) on ``task`` to ``out_dir/<task><prefix>_episode<k>.mp4``.

    Each file is written beside its destination and renamed into place. Returns one line per episode.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    import numpy as np

    from bremen.loops.evaluation import EVAL_STREAM, derived_seed

    try:
        import imageio.v2 as imageio
    except ImportError:
        raise UserError("recording videos needs imageio and imageio-ffmpeg: pip install 'bremen[video]'") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    env = task.make_env(render_mode="rgb_array")
    fps = fps or env.metadata.get("render_fps", 30)
    rng = np.random.default_rng(seed)
    lines = []
    try:
        for k in range(episodes):
            obs, _ = env.reset(seed=derived_seed(seed, EVAL_STREAM, 10_000, k))
            frames, ret, done, t = [env.render()], 0.0, False, 0
            while not done and t < max_steps:
                obs, r, term, trunc, _ = env.step(policy.act(obs, deterministic=not stochastic, rng=rng))
                frames.append(env.render())
                ret, t, done = ret + r, t + 1, term or trunc
            out = out_dir / f"{task.name}{prefix}_episode{k}.mp4"
            tmp = out.with_name(out.stem + ".tmp.mp4")
            imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=1)
            os.replace(tmp, out)
            lines.append(f"{out}: {t} steps, return {ret:.1f}")
    finally:
        env.close()
    return lines


def record(args) -> int:
    from bremen.io.policy_io import load_policy
    from bremen.tasks import make

    if not args.env:
        raise UserError("--env is required (the task the policy was trained on)")
    task = make(args.env)
    path = resolve_policy_path(args)
    policy = load_policy(path)
    if (policy.obs_dim, policy.act_dim) != (task.obs_dim, task.act_dim):
        raise UserError(f"{path}: policy has obs_dim {policy.obs_dim}, act_dim {policy.act_dim} but task "
                        f"{task.name!r} has {task.obs_dim}, {task.act_dim}; pass the matching --env")
    episodes = args.episodes if args.episodes is not None else 3
    if episodes <= 0 or args.max_steps <= 0:
        raise UserError("--episodes and --max_steps must be positive")
    out_dir = Path(args.video_dir or Path("videos") / task.name)
    seed = args.seed if args.seed is not None else (args.random_seeds or [0])[0]
    for line in record_videos(task, policy, out_dir, episodes, seed, args.max_steps, args.stochastic, args.fps):
        print(line)
    return 0


def main(argv=None) -> int:
    from bremen.cli import run

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(record, args)
