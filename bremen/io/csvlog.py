"""Append-only CSV logs that survive a resume.

Rows are flushed as they are written. A resumed run first drops the rows written after its checkpoint
(:meth:`CSVLog.truncate`), so the log of a killed-and-resumed run matches an uninterrupted one.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


class CSVLog:
    """A CSV file with a fixed header; each :meth:`write` appends one row and flushes it."""

    def __init__(self, path, fieldnames: list[str]):
        self.path = Path(path)
        self.fieldnames = list(fieldnames)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with open(self.path, "w", newline="") as f:
                csv.DictWriter(f, self.fieldnames).writeheader()

    @classmethod
    def existing(cls, path) -> "CSVLog | None":
        """The log at ``path`` with the header it already has, or None when there is none yet."""
        path = Path(path)
        if not path.is_file() or path.stat().st_size == 0:
            return None
        with open(path, newline="") as f:
            return cls(path, next(csv.reader(f)))

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fieldnames, extrasaction="raise").writerow(
                {k: _fmt(row.get(k, "")) for k in self.fieldnames}
            )
            f.flush()
            os.fsync(f.fileno())

    def rows(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate(self, key: str, last: float) -> None:
        """Keep only the rows whose ``key`` is ≤ ``last`` (rewritten atomically)."""
        keep = [r for r in self.rows() if float(r[key]) <= last]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, self.fieldnames)
            w.writeheader()
            w.writerows(keep)
        os.replace(tmp, self.path)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
