"""The ``bremen`` command.

Each subcommand lives next to the code it drives and registers itself through an ``add_parser(sub)``
function that sets ``func`` on its parser. A :class:`bremen.errors.UserError` raised anywhere below is
printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bremen import __version__
from bremen.errors import UserError

# module paths that provide add_parser(subparsers); order = order in --help
SUBCOMMAND_MODULES = [
    "bremen.tasks_cli",
    "bremen.data.cli",
    "bremen.behavior_cli",
    "bremen.offline_cli",
    "bremen.video_cli",
    "bremen.evaluate_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bremen",
        description="Model-based offline and deployment-efficient RL (BREMEN and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"bremen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in SUBCOMMAND_MODULES:
        importlib.import_module(mod).add_parser(sub)
    return parser


def run(func, args) -> int:
    """Call ``func(args)``; turn user mistakes into one line and exit status 2."""
    try:
        rc = func(args)
    except UserError as e:
        print(f"bremen: error: {e}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("bremen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0 if rc is None else int(rc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
