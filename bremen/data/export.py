"""Export a Dataset for d3rlpy (2.x): ``d3rlpy.dataset.MDPDataset(**np.load(path))`` rebuilds its episodes.

d3rlpy takes flat ``observations, actions, rewards, terminals, timeouts`` and no next observations
: it cuts an episode after every flagged row, takes the next observation from the next
row, gives the last row of a terminated episode a zero next observation, and does not use the last row of a
timed-out episode as a transition. So every row that ends an episode without a terminal (a timeout, the data's
last row, or a row whose ``next_observations`` is not the next row's observation) is followed by one extra row
holding its next observation, a zero action and a zero reward, flagged as the timeout. Terminal rows are
flagged terminal. Every transition of the dataset is then a d3rlpy transition, and no other is.
"""

from __future__ import annotations

import os

import numpy as np

from bremen.data.dataset import Dataset
from bremen.io.atomic import atomic_path
from bremen.errors import UserError


def d3rlpy_arrays(ds: Dataset) -> dict:
    """The five arrays :func:`export_d3rlpy` writes (``N`` rows plus one per cut episode)."""
    n = len(ds)
    continues = np.zeros(n, bool)
    continues[:-1] = np.all(ds.next_observations[:-1] == ds.observations[1:], axis=1)
    cut = ~ds.terminals & (ds.timeouts | ~continues)
    at = np.flatnonzero(cut) + 1  # insert a row after each cut row
    observations = np.insert(ds.observations, at, ds.next_observations[cut], axis=0)
    actions = np.insert(ds.actions, at, 0.0, axis=0)
    rewards = np.insert(ds.rewards, at, 0.0)
    terminals = np.insert(ds.terminals, at, False)
    timeouts = np.insert(np.zeros(n, bool), at, True)
    return {"observations": observations, "actions": actions, "rewards": rewards, "terminals": terminals,
            "timeouts": timeouts}


def export_d3rlpy(ds: Dataset, path: str) -> None:
    """Write :func:`d3rlpy_arrays` of ``ds`` to the ``.npz`` file ``path``, atomically (nothing else is added
    to the name)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: folder {folder} does not exist; create it first")
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as fh:
            np.savez(fh, **d3rlpy_arrays(ds))
