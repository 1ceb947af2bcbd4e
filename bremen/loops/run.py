"""Pieces of a training run shared by every loop: the run directory, checkpoints, TensorBoard, hooks.

A run lives in one directory. A new run refuses a directory that holds another run unless ``--force``;
``--resume`` continues from ``checkpoint.npz`` (written atomically after every phase and outer iteration,
holding the learner's arrays and the run's counters); a run stopped before its first checkpoint is
started over. The learner (bremen.learners) trains and calls ``hooks.step(phase, index, info)`` after each
phase and chunk; the loop's hooks evaluate, log, export and checkpoint there.
"""

from __future__ import annotations

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
