"""What a run drives: learners train on the data available now and call back into the run's hooks.

``model_based``: BREMEN and ME-TRPO (dynamics ensemble, BC, TRPO on imaginary rollouts); ``actor_critic``:
any model-free agent (bremen.algos.agent). The run driver (bremen.run.driver) is the hooks' side.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol


class Hooks(Protocol):
    """What a learner calls back into while it trains."""

    def step(self, phase: str, index: int, info: dict) -> Optional[bool]:
        """After a phase or chunk; returning False stops the learner."""

    def callback(self, phase: str) -> Optional[Callable]:
        """A progress callback for the phase's inner loop (epochs, BC steps), or None."""
