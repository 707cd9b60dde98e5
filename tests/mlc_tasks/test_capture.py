"""Captured scoring inputs: kept for the drift monitor up to a cap per model and day, and the
cap says so (a log line, a marker the monitor reads)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from mlc_tasks.capture import InputCapture, capped_notes, captured_rows

TODAY = [datetime.now(UTC).date()]


def rows(count: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"income": [float(i) for i in range(start, start + count)],
                         "region": ["north"] * count})


def test_rows_past_the_daily_cap_are_not_kept_and_the_cap_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    capture = InputCapture(tmp_path, "prod", max_rows_per_day=5, max_bytes_per_day=10**6)
    assert capture.record("credit-risk", 1, rows(3)) == 3
    assert capped_notes(tmp_path, "credit-risk", 1, TODAY) == []
    with caplog.at_level(logging.WARNING, logger="mlc_tasks.capture"):
        assert capture.record("credit-risk", 1, rows(3, start=3)) == 2
        assert capture.record("credit-risk", 1, rows(3, start=6)) == 0
    kept = captured_rows(tmp_path, "credit-risk", 1, TODAY)
    assert kept is not None and kept["income"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    [note] = capped_notes(tmp_path, "credit-risk", 1, TODAY)
    assert "on prod: capped at" in note and "(5 rows, 1000000 bytes a day)" in note
    [line] = [r.getMessage() for r in caplog.records]  # logged once, not per request
    assert "credit-risk:1 reached today's capture cap" in line


def test_the_cap_is_per_model_across_its_versions_and_not_across_models(tmp_path: Path) -> None:
    capture = InputCapture(tmp_path, "prod", max_rows_per_day=4, max_bytes_per_day=10**6)
    assert capture.record("credit-risk", 1, rows(3)) == 3
    assert capture.record("credit-risk", 2, rows(3)) == 1
    assert capture.record("house-prices", 1, rows(3)) == 3
    assert capped_notes(tmp_path, "credit-risk", 1, TODAY) == []
    assert len(capped_notes(tmp_path, "credit-risk", 2, TODAY)) == 1
    assert capped_notes(tmp_path, "house-prices", 1, TODAY) == []


def test_the_byte_cap_holds_and_is_counted_from_disk_after_a_restart(tmp_path: Path) -> None:
    first = InputCapture(tmp_path, "prod", max_rows_per_day=10**6, max_bytes_per_day=2000)
    assert first.record("credit-risk", 1, rows(50)) == 50
    file = tmp_path / "credit-risk" / "v1" / TODAY[0].isoformat() / "prod.csv"
    used = file.stat().st_size
    restarted = InputCapture(tmp_path, "prod", max_rows_per_day=10**6, max_bytes_per_day=2000)
    kept = restarted.record("credit-risk", 1, rows(500, start=50))
    assert 0 < kept < 500
    assert file.stat().st_size <= 2000 + used // 50  # at most about one row over (an estimate)
    assert restarted.record("credit-risk", 1, rows(10)) == 0
    again = InputCapture(tmp_path, "prod", max_rows_per_day=10**6, max_bytes_per_day=2000)
    assert again.record("credit-risk", 1, rows(1)) == 0  # the marker says: capped today
    assert len(pd.read_csv(file)) == 50 + kept  # one header, rows appended whole
    marker = json.loads((file.parent / "prod.capped").read_text())
    assert marker["max_bytes_per_day"] == 2000 and marker["runtime"] == "prod"


def test_a_zero_cap_keeps_nothing(tmp_path: Path) -> None:
    capture = InputCapture(tmp_path, "qa", max_rows_per_day=0, max_bytes_per_day=10**6)
    assert capture.record("credit-risk", 1, rows(3)) == 0
    assert captured_rows(tmp_path, "credit-risk", 1, TODAY) is None
    assert len(capped_notes(tmp_path, "credit-risk", 1, TODAY)) == 1
