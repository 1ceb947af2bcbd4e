"""``save_video.py`` / ``bremen video``: render a policy's episodes to MP4 files, headless.

Takes an exported policy (a ``weights/<task>/`` directory, a run's ``policy_final``/``policy_best``, or a
run directory, whose ``policy_final`` is used), with the observation normalizer it was trained with (the
original restored only the weights and took the normalization from a dataset, and sampled stochastic
actions; here evaluation's deterministic mean is the default). The task is the one the policy records;
``--env`` is needed only for policies that record none. The original's flags are accepted (and not listed
in ``--help``); its checkpoint layout ``weights/<Agent>/policy.ckpt`` means bremen's ``weights/<task>/``.
Rendering uses ``MUJOCO_GL`` (``egl``, ``osmesa`` or ``glfw``; ``egl`` when unset), loaded when the first frame
is drawn; a machine without its libraries gets one line naming the Debian packages (bremen.tasks.gl).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from bremen.errors import UserError
from bremen.flags import add_original_flags

# the original's weights/<Agent>/ folder names
ORIGINAL_AGENTS = {"Ant": "ant", "HalfCheetah": "half_cheetah", "Hopper": "hopper", "Walker2d": "walker2d"}
DESCRIPTION = ("Record MP4 videos of a policy on its task, from a camera that follows the robot. The original "
               "save_video.py flags are accepted too.")


def _add_video_flags(p: argparse.ArgumentParser) -> None:
    """The video options; the original's training flags stay accepted but are not listed (the parser is made
    with ``conflict_handler="resolve"``, so the options below replace the original's of the same name)."""
    add_original_flags(p, "save_video")
    for a in p._actions:
        if a.dest != "help":
            a.help = argparse.SUPPRESS
    g = p.add_argument_group("video")
    g.add_argument("--policy", default=None, help="policy directory or run directory (default: weights/<task>/)")
    g.add_argument("--env", default=None, help="task of the policy (default: the task the policy records)")
    g.add_argument("--restore_path", default=None,
                   help="same as --policy; the original's weights/<Agent>/policy.ckpt means weights/<task>/")
    g.add_argument("--video_dir", default=None, help="folder for the MP4 files (default videos/<task>/)")
    g.add_argument("--episodes", type=int, default=3, help="episodes to record (default 3)")
    g.add_argument("--max_steps", type=int, default=1000, help="at most this many steps per episode (default 1000)")
    g.add_argument("--width", type=int, default=480, help="frame width in pixels (default 480)")
    g.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    g.add_argument("--quality", choices=("fast", "high"), default="fast",
                   help="fast (default): no shadows, reflections or antialiasing, several times faster with "
                        "software rendering; high: MuJoCo's default look")
    g.add_argument("--fps", type=int, default=None, help="frames per second of the file (default: real time)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the episodes' env resets (default 0: bremen evaluate's episodes)")
    g.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic mean")
    g.add_argument("--no_progress", action="store_true", help="no progress bar")


def build_parser(prog: str = "save_video.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, conflict_handler="resolve")
    _add_video_flags(p)
    return p


def add_parser(sub) -> None:
    p = sub.add_parser("video", help="record MP4 videos of a policy (same flags as save_video.py)",
                       description=DESCRIPTION, conflict_handler="resolve")
    _add_video_flags(p)
    p.set_defaults(func=record)


def original_checkpoint(path: Path) -> Optional[tuple[str, Path]]:
    """(task, bremen policy folder) for the original's ``weights/<Agent>/policy.ckpt[.*]`` or
    ``weights/<Agent>``, else None."""
    agent_dir = path.parent if path.name.startswith("policy") else path
    task = ORIGINAL_AGENTS.get(agent_dir.name)
    if task is None or (path / "policy.json").is_file() or path.suffix in (".npz", ".json"):
        return None
    return task, agent_dir.parent / task


def resolve_policy_path(args) -> Path:
    """The policy directory to load, with the original's checkpoint layout mapped to bremen's."""
    from bremen.io.policy_io import run_or_policy_dir
    from bremen.tasks import make

    given = args.policy or args.restore_path
    if given is None:
        if not args.env:
            raise UserError("give --policy DIR (a policy or run directory) or --env TASK (uses weights/<task>/)")
        return Path("weights") / make(args.env).name
    path = Path(given)
    original = original_checkpoint(path)
    if original is not None:
        task, mapped = original
        if not (mapped / "policy.json").is_file():
            raise UserError(f"{given}: the original's checkpoint layout; bremen's {task} policy would be in {mapped}/ "
                            f"and is not there (export one, or pass --policy weights/{task})")
        print(f"{given}: the original's checkpoint layout; using bremen's {task} policy {mapped}/", file=sys.stderr)
        return mapped
    return run_or_policy_dir(path)


def record(args) -> int:
    from bremen.io.paths import writable_dir
    from bremen.io.policy_io import load_policy
    from bremen.io.video import VideoSettings, record_videos
    from bremen.tasks import make
    from bremen.tasks.gl import check_rendering

    if args.episodes <= 0 or args.max_steps <= 0:
        raise UserError("--episodes and --max_steps must be positive")
    if not (16 <= args.width <= 4096 and 16 <= args.height <= 4096):
        raise UserError(f"--width {args.width} --height {args.height}: each must be between 16 and 4096 pixels")
    path = resolve_policy_path(args)
    policy = load_policy(path)
    recorded = policy.metadata.get("task")
    if args.env:
        task = make(args.env)
        if recorded and recorded != task.name:
            raise UserError(f"{path}: policy was trained on {recorded!r}, not {task.name!r}; drop --env or pass "
                            f"--env {recorded}")
    elif recorded:
        task = make(recorded)
    else:
        raise UserError(f"{path}: the policy does not record its task; pass --env TASK")
    if (policy.obs_dim, policy.act_dim) != (task.obs_dim, task.act_dim):
        raise UserError(f"{path}: policy has obs_dim {policy.obs_dim}, act_dim {policy.act_dim} but task "
                        f"{task.name!r} has {task.obs_dim}, {task.act_dim}; pass the matching --env")
    check_rendering()
    out_dir = writable_dir(args.video_dir or Path("videos") / task.name, "--video_dir")
    seed = args.seed if args.seed is not None else (args.random_seeds or [0])[0]
    settings = VideoSettings(args.episodes, args.max_steps, args.width, args.height, args.quality, args.fps,
                             args.stochastic)
    print(f"recording {settings.episodes} episode(s) of {path} on {task.name} at {settings.width}x{settings.height} "
          f"-> {out_dir}/", file=sys.stderr)
    record_videos(task, policy, out_dir, settings, seed, progress=not args.no_progress, on_written=print)
    return 0


def main(argv=None) -> int:
    from bremen.cli import run

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(record, args)
