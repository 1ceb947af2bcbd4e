"""Waiting for a dispatched JAX computation without making Ctrl-C wait for it too.

``np.asarray`` on the result of a compiled call blocks inside XLA, where Python's signal handler cannot
run, so a Ctrl-C during a long TRPO or BC chunk took effect only when the chunk ended (14 s at the ``cpu``
size, minutes at paper size). Polling ``is_ready`` in short sleeps keeps the main thread in Python: the
interrupt is raised at once, and the command ends as any interrupt does (bremen.cli).
"""

from __future__ import annotations

import time

import jax

POLL_S = 0.02


def wait(tree):
    """Return ``tree`` once every array in it is computed, sleeping between checks."""
    leaves = [x for x in jax.tree.leaves(tree) if isinstance(x, jax.Array)]
    delay = 0.001
    while not all(x.is_ready() for x in leaves):
        time.sleep(delay)
        delay = min(delay * 2, POLL_S)
    return tree
