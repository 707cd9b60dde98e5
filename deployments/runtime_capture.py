"""Scoring inputs kept for the drift monitor, written off the request path: a request hands its
validated input to a bounded queue, and one thread writes them (mlc_tasks/capture.py caps what
is kept per model and day). A full queue drops inputs (counted and logged) rather than slowing
predictions; what the monitor reads is a sample of the day anyway."""

from __future__ import annotations

import logging
import queue
import threading

from mlc_tasks.capture import InputCapture
from mlc_tasks.scoring import ScoringInput

log = logging.getLogger(__name__)
_STOP = None


class CaptureQueue:
    def __init__(self, capture: InputCapture, size: int = 10_000) -> None:
        self.capture = capture
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, int, ScoringInput] | None] = queue.Queue(size)
        self._writer = threading.Thread(target=self._write, name="capture", daemon=True)
        self._writer.start()

    def keep(self, model: str, number: int, scoring: ScoringInput) -> None:
        try:
            self._queue.put_nowait((model, number, scoring))
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 1000) or self.dropped % 100_000 == 0:
                log.warning("capture queue full: %d scoring inputs not kept", self.dropped)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(_STOP)
        self._writer.join(timeout=30)

    def _write(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            model, number, scoring = item
            try:  # the drift monitor's "recent scoring inputs"; never fails a prediction
                self.capture.record(model, number, scoring.frame())
            except OSError as exc:
                log.warning("scoring inputs not captured: %s", exc)
