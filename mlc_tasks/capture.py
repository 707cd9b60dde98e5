"""The scoring inputs a runtime saw, kept for the drift monitor: every scored row appended to
`<root>/<model>/v<number>/<YYYY-MM-DD>/<runtime>.csv` (UTC days), one file per runtime so two
runtimes never write the same file."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd


def day_folder(root: Path, model: str, number: int, day: date) -> Path:
    return root / model / f"v{number}" / day.isoformat()


class InputCapture:
    def __init__(self, root: Path, runtime: str) -> None:
        self.root, self.runtime = root, runtime
        self._lock = threading.Lock()

    def record(self, model: str, number: int, rows: pd.DataFrame) -> None:
        folder = day_folder(self.root, model, number, datetime.now(UTC).date())
        path = folder / f"{self.runtime}.csv"
        with self._lock:  # uvicorn scores in a thread pool
            folder.mkdir(parents=True, exist_ok=True)
            rows.to_csv(path, mode="a", header=not path.exists(), index=False)


def captured_rows(root: Path, model: str, number: int, days: list[date]) -> pd.DataFrame | None:
    """Every captured input of the version on those days; None when there is none."""
    files = [f for day in days for f in sorted(day_folder(root, model, number, day).glob("*.csv"))]
    frames = [pd.read_csv(f) for f in files]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None
