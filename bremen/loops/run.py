"""Pieces of a training run shared by every loop: the run directory, checkpoints, TensorBoard, hooks.

A run lives in one directory. A new run refuses a directory that holds another run unless ``--force``;
``--resume`` continues from ``checkpoint.npz`` (written atomically after every phase and outer iteration,
holding the learner's arrays and the run's counters); a run stopped before its first checkpoint is
started over. The learner (bremen.learners) trains and calls ``hooks.step(phase, index, info)`` after each
phase and chunk; the loop's hooks evaluate, log, export and checkpoint there.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from bremen.errors import UserError
from bremen.io.checkpoint import CHECKPOINT_FILE as CHECKPOINT
from bremen.io.paths import writable_dir

CONFIG_FILE = "params.json"


def prepare_run_dir(run_dir: Path, resume: bool, force: bool, what: str = "run directory (--log_dir)",
                    elsewhere: str = "--exp_name/--log_dir") -> bool:
    """Check ``run_dir`` for a new or resumed run and make sure it is writable; returns whether to resume.
    ``what`` and ``elsewhere`` name the flags that chose the directory, for the one-line errors."""
    ckpt = run_dir / CHECKPOINT
    if resume and force:
        raise UserError("--resume and --force contradict each other; give one of them")
    if resume and not ckpt.exists():
        if run_dir.exists() and any(run_dir.iterdir()):
            if not (run_dir / CONFIG_FILE).is_file():
                raise UserError(f"--resume: {run_dir} has no {CHECKPOINT} and is not a bremen run directory; "
                                f"nothing to resume (start without --resume)")
            # a run stopped before its first checkpoint (the model fit): its partial logs are redone
            shutil.rmtree(run_dir)
        resume = False
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise UserError(f"run directory {run_dir} already exists; pass --resume to continue it, "
                            f"--force to start over, or choose another {elsewhere}")
        shutil.rmtree(run_dir)
    writable_dir(run_dir, what)
    return resume


# Settings a resumed run may change: where the run lives and how the command named it or its sibling seeds.
RESUME_FREE_KEYS = frozenset({"run_dir", "flags.random_seeds", "flags.exp_name", "flags.sub_exp_name",
                              "flags.video_dir"})
# Changes named first in the message: they say which run the directory holds.
RESUME_FIRST_KEYS = ("flags.algorithm", "task", "data_path", "seed", "preset")


def changed_settings(stored: dict, current: dict, free=RESUME_FREE_KEYS, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between a checkpoint's settings and the current ones (both as
    params.json writes them), as "key: stored -> current", outside ``free``; RESUME_FIRST_KEYS first. Keys
    on one side only are a field added or dropped by another bremen version (a new field's default keeps
    the old behaviour), not a change."""
    if not prefix:  # compare as params.json holds them (tuples as lists)
        current = json.loads(json.dumps(current))
    out = []
    for key in sorted(set(stored) & set(current)):
        name = f"{prefix}{key}"
        if name in free:
            continue
        a, b = stored[key], current[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_settings(a, b, free, name + ".")
        elif a != b:
            out.append(f"{name}: {json.dumps(a)} -> {json.dumps(b)}")
    rank = {k: i for i, k in enumerate(RESUME_FIRST_KEYS)}
    return sorted(out, key=lambda line: rank.get(line.split(":")[0], len(rank)))


def check_same_settings(run_dir: Path, stored: dict, current: dict, also_free=()) -> None:
    """A resume must train under the settings its checkpoint was written with (else the run mixes two
    configurations): a one-line UserError naming the first changed keys. ``also_free``: keys the loop lets a
    resume change (offline: ``flags.onpol_iters``, to train a run further)."""
    changed = changed_settings(stored, current, RESUME_FREE_KEYS | set(also_free))
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise UserError(f"--resume: {run_dir} was started with other settings ({'; '.join(changed[:3])}{more}); "
                        f"resume it with the flags in its {CONFIG_FILE}, or start a new run (another "
                        f"--log_dir, or --force)")


class Hooks(Protocol):
    """What a learner calls back into while it trains."""

    def step(self, phase: str, index: int, info: dict) -> Optional[bool]:
        """After a phase or chunk; returning False stops the learner."""

    def callback(self, phase: str) -> Optional[Callable]:
        """A progress callback for the phase's inner loop (epochs, BC steps), or None."""


class TensorBoard:
    """TensorBoard scalars, written synchronously: what ``flush()`` returns from is on disk, so a killed run
    loses no event before its checkpoint (tensorboardX's SummaryWriter queues events for a writer thread that
    its flush does not wait for). ``purge_step`` (a resumed run) makes TensorBoard drop the earlier files'
    events from that step on. Non-finite values (an overflowing surrogate, say) stay in the CSV logs only,
    instead of a warning line per value on the console."""

    def __init__(self, path: Path, purge_step: Optional[int]):
        import os
        import socket
        import uuid

        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.record_writer import RecordWriter

        Path(path).mkdir(parents=True, exist_ok=True)
        self._event = Event
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.writer = RecordWriter(str(Path(path) / name))
        # the file's first event carries the purge step: a step-0 header after a resumed run's earlier files
        # would read as an out-of-order step and make TensorBoard drop every earlier event
        self._write(Event(wall_time=time.time(), step=int(purge_step or 0), file_version="brain.Event:2"))
        if purge_step is not None:
            self._write(Event(wall_time=time.time(), step=int(purge_step),
                              session_log=SessionLog(status=SessionLog.START)))

    def _write(self, event) -> None:
        self.writer.write(event.SerializeToString())

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboardX.summary import scalar

        if np.isfinite(value):
            self._write(self._event(wall_time=time.time(), step=int(step), summary=scalar(tag, float(value))))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
