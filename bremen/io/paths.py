"""Output locations checked before any work starts.

A command that trains or collects for minutes and then cannot write its result has lost that work. Every
command calls these on its output locations first: a directory is created (as the command would create
it anyway) and a probe file is made and removed in it, which catches what permission bits cannot tell a
root user (``/proc``, ``/sys``, a read-only mount) as well as a parent that is a regular file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from bremen.errors import UserError

_REASONS = {
    errno.ENOTDIR: "a component of the path is a file, not a directory",
    errno.EEXIST: "it exists and is not a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "the file system does not allow creating it",
    errno.ENOSPC: "no space left on the device",
}


def _reason(e: OSError) -> str:
    return _REASONS.get(e.errno, e.strerror or type(e).__name__)


def _probe(p: Path) -> None:
    """Create the directory ``p`` if needed, then make and remove a file in it (raises OSError)."""
    p.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".bremen-write-check-", dir=p)
    os.close(fd)
    os.unlink(probe)


def writable_dir(path, what: str) -> Path:
    """Make sure ``path`` is (or can become) a directory bremen can write files in; returns it as a Path.

    ``what`` names the flag or setting the path came from (``--log_dir``), for the one-line error.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p}: exists and is not a directory; give a directory path")
    try:
        _probe(p)
    except OSError as e:
        raise UserError(f"{what} {p}: cannot write there ({_reason(e)}); choose a writable location") from None
    return p


def writable_file(path, what: str) -> Path:
    """Make sure the file ``path`` can be created (its folder is writable and it is not a directory)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} {p}: is a directory; give a file path")
    folder = p.parent if str(p.parent) else Path(".")
    try:
        _probe(folder)
    except OSError as e:
        raise UserError(f"{what} {p}: cannot write in {folder} ({_reason(e)}); choose a writable location") from None
    return p
