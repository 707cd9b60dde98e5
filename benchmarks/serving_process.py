"""Waiting for a server process the benchmark started to answer (ours or MLflow's)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def wait_until_answers(url: str, process: subprocess.Popen[bytes] | None, log: Path,
                       what: str, seconds: float, stop: Callable[[], None]) -> None:
    """Return once `url` answers 200; exit naming `what` and its log's end if the process
    exits first or the time runs out (then `stop` it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is None or process.poll() is not None:
            raise SystemExit(f"{what} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop()
    raise SystemExit(f"{what} did not answer {url}: {log.read_text()[-2000:]}")
