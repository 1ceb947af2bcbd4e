"""Pieces of a training run shared by every loop: the run directory, checkpoints, TensorBoard, hooks.

A run lives in one directory. A new run refuses a directory that holds another run unless ``--force``;
``--resume`` continues from ``checkpoint.npz`` (written atomically after every phase and outer iteration,
holding the learner's arrays and the run's counters); a run stopped before its first checkpoint is
started over. The learner (bremen.learners) trains and calls ``hooks.step(phase, index, info)`` after each
phase and chunk; the loop's hooks evaluate, log, export and checkpoint there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from bremen.errors import UserError
from bremen.io.checkpoint import CHECKPOINT_FILE as CHECKPOINT
from bremen.io.paths import writable_dir

CONFIG_FILE = "params.json"


def prepare_run_dir(run_dir: Path, resume: bool, force: bool, what: str = "run directory (--log_dir)") -> bool:
    """Check ``run_dir`` for a new or resumed run and make sure it is writable; returns whether to resume."""
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
                            f"--force to start over, or choose another --exp_name/--log_dir")
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
    """TensorBoard scalars; non-finite values (an overflowing surrogate, say) stay in the CSV logs only,
    instead of a warning line per value on the console."""

    def __init__(self, path: Path, purge_step: Optional[int]):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(path), purge_step=purge_step)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if np.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
