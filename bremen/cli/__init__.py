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
    "bremen.cli.tasks",
    "bremen.cli.dataset",
    "bremen.cli.behavior",
    "bremen.cli.offline",
    "bremen.cli.recursive",
    "bremen.cli.video",
    "bremen.cli.evaluate",
    "bremen.cli.plot",
    "bremen.cli.table",
    "bremen.cli.sweep",
    "bremen.cli.diagnose",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bremen",
        description="Model-based offline and deployment-efficient RL: BREMEN, ME-TRPO and the baselines BC, BCQ, "
        "BEAR, BRAC and SAC on fixed datasets and in a few deployments; SAC behavior policies, data collection, "
        "dataset tools, policy evaluation, videos, sweeps (local or Ray), learning curves, results tables and "
        "model diagnostics.",
    )
    parser.add_argument("--version", action="version", version=f"bremen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in SUBCOMMAND_MODULES:
        importlib.import_module(mod).add_parser(sub)
    return parser


INTERRUPT_GRACE_S = 10.0


def _in_gc_callback(frame) -> bool:
    """Whether ``frame`` runs inside a garbage-collection callback (JAX registers one, ``_xla_gc_callback``)."""
    import gc

    codes = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum, frame):
    """Ctrl-C: raise KeyboardInterrupt as Python does, and make sure the process ends even when the exception
    is swallowed. Python drops an exception raised inside a garbage-collection callback (it prints "Exception
    ignored in: _xla_gc_callback" and a traceback), and JAX runs one at every collection: a Ctrl-C landing
    there is sent again 50 ms later, when the callback has returned. If the process still runs
    INTERRUPT_GRACE_S after the signal, it leaves with exit status 130 (checkpoints are written atomically, so
    nothing finished is lost)."""
    import signal
    import threading

    if _in_gc_callback(frame):
        threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        return

    def leave():
        os.write(2, b"bremen: interrupted\n")
        os._exit(130)

    timer = threading.Timer(INTERRUPT_GRACE_S, leave)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def run(func, args) -> int:
    """Call ``func(args)``; turn user mistakes into one line and exit status 2."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
            signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        rc = func(args)
    except UserError as e:
        print(f"bremen: error: {e}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("bremen: interrupted", file=sys.stderr)
        _leave_after_interrupt(130)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0 if rc is None else int(rc)


def run_each(runs, describe=lambda run: "", together=None) -> list[dict]:
    """Run each training run in turn, naming its directory first; on Ctrl-C, say how to continue.
    ``together(runs)``, when given, runs them all at once instead (``--vmap_seeds``)."""
    groups = [runs] if together else [[r] for r in runs]
    summaries = []
    for group in groups:
        for r in group:
            print(f"run directory: {r.dir}{' (resuming)' if r.resume else ''}{describe(r)}", file=sys.stderr)
        try:
            summaries.extend(together(group) if together else [group[0].execute()])
        except KeyboardInterrupt:
            for r in group:
                kept = "keeps the last checkpoint" if (r.dir / "checkpoint.npz").exists() else "has no checkpoint yet"
                print(f"interrupted; {r.dir} {kept}: run the same command with --resume to continue",
                      file=sys.stderr)
            raise
    return summaries


def _leave_after_interrupt(code: int) -> None:
    """End an interrupted process without tearing down the interpreter once JAX is loaded.

    A Ctrl-C that lands while XLA compiles a step (the first BC or TRPO chunk: XLA compiles on its own thread
    pool) or while a dispatched computation runs unwinds Python at once, but the XLA work goes on. Interpreter
    teardown then destroyed JAX's CPU client under that worker thread, which called into the freed client
    (``SingleDeviceSharding::Create``) and died with a segmentation fault (exit 139) instead of 130. Nothing
    of that work is needed: checkpoints hold finished work only and are written atomically. So after the
    output is flushed the process leaves with ``os._exit``; further Ctrl-Cs are ignored on the way out.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "jax" not in sys.modules:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
