"""Labelled data a day at a time: the day a run covers, and a window of days read together
(only under the allowed roots)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from mlc_tasks.daily_data import parse_day, read_recent
from mlc_tasks.errors import InvalidInputError, UnsafeLocationError
from mlc_tasks.locations import LocationPolicy

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(("day", "covered"), [
    (None, date(2026, 11, 24)), ("2026-11-20", date(2026, 11, 20)),
    ("2024-02-29", date(2024, 2, 29))])
def test_a_run_covers_the_day_asked_or_yesterday(day: str | None, covered: date) -> None:
    assert parse_day(day, TODAY) == covered


@pytest.mark.parametrize("day", ["yesterday", "2026-13-01", "2023-02-29", "", "2026-11-25; x"])
def test_a_day_that_is_not_a_date_names_the_field(day: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^day: '{day}' is not a date like"):
        parse_day(day, TODAY)


def write_day(location: Path, day: str, text: str) -> bytes:
    (location / day).mkdir(parents=True)
    (location / day / "labelled.csv").write_text(text)
    return text.encode()


def test_a_window_reads_the_days_that_arrived_newest_first(tmp_path: Path) -> None:
    policy = LocationPolicy(roots=[str(tmp_path)])
    newest = write_day(tmp_path, "2026-11-24", "x,y\n3,1\n")
    older = write_day(tmp_path, "2026-11-22", "x,y\n1,0\n2,1\n")
    found = read_recent(str(tmp_path), date(2026, 11, 24), 3, policy)
    assert found is not None
    rows, where, digest = found
    assert list(rows["x"]) == [3, 1, 2] and where == f"{tmp_path} (2 of 3 days)"
    days = [hashlib.sha256(raw).hexdigest() for raw in (newest, older)]
    assert digest == hashlib.sha256("".join(days).encode()).hexdigest()
    assert read_recent(str(tmp_path), date(2026, 11, 21), 2, policy) is None


def test_a_window_outside_the_roots_is_refused_before_it_is_looked_in(tmp_path: Path) -> None:
    write_day(tmp_path / "outside", "2026-11-24", "x,y\n3,1\n")
    with pytest.raises(UnsafeLocationError, match="^data_location: .* is refused"):
        read_recent(str(tmp_path / "outside"), date(2026, 11, 24), 2,
                    LocationPolicy(roots=[str(tmp_path / "lake")]))
