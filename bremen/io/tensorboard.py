"""TensorBoard scalars for run directories (bremen.run.driver, bremen.run.online)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np


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
