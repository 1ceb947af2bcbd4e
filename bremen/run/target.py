"""``--eval-target``: when a run's policy has reached a target return (BRAC's partially trained policy π_p).

The target is reached at the first of two **consecutive** evaluations whose means are both ≥ the target; that
evaluation's policy is the run's ``partial_target/``. The state is a JSON dict, kept in the checkpoint.
"""

from __future__ import annotations

from typing import Optional


class TargetWatch:
    def __init__(self, target: Optional[float], state: Optional[dict] = None):
        self.target = target
        self.state = dict(state) if state else {"hits": 0, "last_mean": None, "partial_target": None}

    @property
    def reached(self) -> Optional[dict]:
        """{"iteration", "mean", "previous_mean"} of the evaluation that reached it, or None."""
        return self.state["partial_target"]

    def update(self, index: int, mean: float) -> bool:
        """Record evaluation ``index``'s mean; True when it is the one that reaches the target."""
        s = self.state
        if self.target is None:
            return False
        s["hits"] = s["hits"] + 1 if mean >= self.target else 0
        now = s["hits"] >= 2 and s["partial_target"] is None
        if now:
            s["partial_target"] = {"iteration": index, "mean": mean, "previous_mean": s["last_mean"]}
        s["last_mean"] = mean
        return now
