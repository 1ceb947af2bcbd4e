"""What a run drives: learners train on the data available now and call back into the run's hooks.

``model_based``: BREMEN and ME-TRPO (dynamics ensemble, BC, TRPO on imaginary rollouts); ``actor_critic``:
any model-free agent (bremen.algos.agent). The run driver (bremen.run.driver) is the hooks' side.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Protocol


class Hooks(Protocol):
    """What a learner calls back into while it trains."""

    def step(self, phase: str, index: int, info: dict) -> Optional[bool]:
        """After a phase or chunk; returning False stops the learner."""

    def callback(self, phase: str, log: "InnerLog") -> Optional[Callable]:
        """For a phase's inner loop (epochs, BC steps): ``cb(done, row, postfix)`` after each of its steps
        (``done`` of ``log.total``; ``row`` a row of ``log.file``; ``postfix`` for the progress bar), or None."""


class ChunkReport(NamedTuple):
    """What a learner logs of one chunk (``learner.report(index, info, transitions)``); the run driver writes it."""

    progress: dict
    """The learner's columns of the chunk's progress.csv row."""
    details: list
    """Rows of the learner's own log (``learner.detail_log``: trpo.csv, one per TRPO step; agent.csv, one)."""
    scalars: list
    """TensorBoard scalars, (tag, value, step)."""


class InnerLog(NamedTuple):
    """The log and progress bar of a phase's inner loop (the ensemble's epochs, BC's steps)."""

    file: str
    columns: list
    total: int
    desc: str
    unit: str

