"""Atomic file writes: a temporary file beside the destination, fsync, then ``os.replace``.

A process killed at any moment leaves either the previous file or the new one at the destination, never a
partial file.
"""

from __future__ import annotations

import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield an unused temporary path beside ``path`` for the caller to create; on success fsync it and rename
    it onto ``path`` (``os.replace``), on any error remove it, so ``path`` is never partly written."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync(folder)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


