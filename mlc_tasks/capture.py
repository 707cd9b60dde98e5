"""The scoring inputs a runtime saw, kept for the drift monitor: scored rows appended to
`<root>/<model>/v<number>/<YYYY-MM-DD>/<runtime>.csv` (UTC days), one file per runtime so two
runtimes never write the same file. A runtime keeps at most so many rows and bytes per model and
day; past that it keeps nothing more that day, logs it once and leaves `<runtime>.capped` (JSON)
beside the file, which `capped_notes` reads for the monitor."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def day_folder(root: Path, model: str, number: int, day: date) -> Path:
    return root / model / f"v{number}" / day.isoformat()


class InputCapture:
    def __init__(self, root: Path, runtime: str, max_rows_per_day: int = 100_000,
                 max_bytes_per_day: int = 50 * 1024 * 1024) -> None:
        self.root, self.runtime = root, runtime
        self.max_rows, self.max_bytes = max_rows_per_day, max_bytes_per_day
        self._kept: dict[tuple[str, date], list[int]] = {}  # (model, day) → [rows, bytes]
        self._full: set[tuple[str, date]] = set()  # capped: nothing more kept that day
        self._capped: set[tuple[str, int, date]] = set()
        self._lock = threading.Lock()

    def record(self, model: str, number: int, rows: pd.DataFrame) -> int:
        """Append the rows that fit today's cap of the model; returns how many were kept."""
        day = datetime.now(UTC).date()
        folder = day_folder(self.root, model, number, day)
        path = folder / f"{self.runtime}.csv"
        with self._lock:  # uvicorn scores in a thread pool
            kept = self._usage(model, day)
            full = (model, day) in self._full
            count, text = (0, "") if full else _fitting(rows, self.max_rows - kept[0],
                                                        self.max_bytes - kept[1])
            if count:
                folder.mkdir(parents=True, exist_ok=True)
                if not path.exists() or path.stat().st_size == 0:
                    text = rows.iloc[:0].to_csv(index=False) + text
                with path.open("a", encoding="utf-8", newline="") as file:
                    file.write(text)
                kept[0] += count
                kept[1] += len(text.encode())
            if count < len(rows):
                self._full.add((model, day))
                self._mark_capped(model, number, day, folder)
        return count

    def _usage(self, model: str, day: date) -> list[int]:
        """Rows and bytes kept today for the model (read from disk once, e.g. after a restart)."""
        if (model, day) not in self._kept:
            self._kept = {k: v for k, v in self._kept.items() if k[1] == day}
            self._full = {k for k in self._full if k[1] == day}
            self._capped = {k for k in self._capped if k[2] == day}
            folders = (self.root / model).glob(f"v*/{day.isoformat()}")
            files = [f / f"{self.runtime}.csv" for f in folders]
            if any(f.with_suffix(".capped").exists() for f in files):
                self._full.add((model, day))
            files = [f for f in files if f.exists()]
            rows = sum(max(0, _line_count(f) - 1) for f in files)
            self._kept[(model, day)] = [rows, sum(f.stat().st_size for f in files)]
        return self._kept[(model, day)]

    def _mark_capped(self, model: str, number: int, day: date, folder: Path) -> None:
        """Once per version and day: a log line and the marker the monitor reads."""
        if (model, number, day) in self._capped:
            return
        self._capped.add((model, number, day))
        log.warning("%s: scoring inputs of %s:%d reached today's capture cap (%d rows, %d bytes "
                    "per model); later inputs today are scored but not kept for the drift "
                    "monitor", self.runtime, model, number, self.max_rows, self.max_bytes)
        path = folder / f"{self.runtime}.capped"
        if path.exists():  # capped before a restart: the first time stands
            return
        folder.mkdir(parents=True, exist_ok=True)
        marker = {"runtime": self.runtime, "capped_at": datetime.now(UTC).isoformat(),
                  "max_rows_per_day": self.max_rows, "max_bytes_per_day": self.max_bytes}
        path.write_text(json.dumps(marker))


def _fitting(rows: pd.DataFrame, rows_left: int, bytes_left: int) -> tuple[int, str]:
    """How many of the rows fit, and their CSV lines (a cut by bytes is estimated from the
    rows' average size)."""
    if rows_left <= 0 or bytes_left <= 0 or rows.empty:
        return 0, ""
    count = min(len(rows), rows_left)
    text = rows.iloc[:count].to_csv(index=False, header=False)
    size = len(text.encode())
    if size > bytes_left:
        count = count * bytes_left // size
        text = rows.iloc[:count].to_csv(index=False, header=False) if count else ""
    return count, text


def _line_count(path: Path) -> int:
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


def captured_rows(root: Path, model: str, number: int, days: list[date]) -> pd.DataFrame | None:
    """Every captured input of the version on those days; None when there is none."""
    files = [f for day in days for f in sorted(day_folder(root, model, number, day).glob("*.csv"))]
    frames = [pd.read_csv(f) for f in files]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def capped_notes(root: Path, model: str, number: int, days: list[date]) -> list[str]:
    """One line per runtime and day on which the capture cap left inputs of the version out:
    the monitor's sample of those days is the first inputs only."""
    notes = []
    for day in days:
        for marker in sorted(day_folder(root, model, number, day).glob("*.capped")):
            found = json.loads(marker.read_text())
            notes.append(f"{day.isoformat()} on {found['runtime']}: capped at "
                         f"{found['capped_at']} ({found['max_rows_per_day']} rows, "
                         f"{found['max_bytes_per_day']} bytes a day)")
    return notes
