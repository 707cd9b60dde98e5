"""Labelled data that arrives a day at a time: `<location>/<YYYY-MM-DD>/*.csv`, or a location
with a `{date}` placeholder (`s3://bucket/credit/date={date}/*.csv`), under an allowed root."""

from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta

import pandas as pd

from mlc_tasks import locations
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.locations import LocationPolicy, watched_root


def day_pattern(location: str, day: date) -> str:
    if "{date}" in location:
        return location.replace("{date}", day.isoformat())
    return f"{location.rstrip('/')}/{day.isoformat()}/*.csv"


def read_day(location: str, day: date, policy: LocationPolicy
             ) -> tuple[pd.DataFrame, str, str] | None:
    """(rows, where, sha256 of the files) for the day, or None when nothing arrived. An empty
    or unreadable file is an error naming it. The location is checked before it is looked in
    (a model registered before the roots were may name any), and each file before it is read."""
    pattern = day_pattern(locations.check(location, policy, "data_location").url, day)
    base = locations.check(watched_root(location), policy, "data_location")
    fs, path = locations.filesystem(pattern)
    files = sorted(fs.glob(path)) if fs.exists(path.rsplit("/", 1)[0]) or "*" not in path \
        else []
    files = [f for f in files if fs.isfile(f)]
    if not files:
        return None
    digest, frames = hashlib.sha256(), []
    for file in files:
        listed = locations.check_listed(fs.unstrip_protocol(file), base, policy,
                                        "data_location")
        raw = locations.read_bytes(listed)
        digest.update(raw)
        try:
            frame = pd.read_csv(io.BytesIO(raw))
        except (ValueError, UnicodeDecodeError) as exc:  # EmptyDataError is a ValueError
            raise InvalidInputError(f"{file}: not a labelled CSV file: {exc}") from exc
        if frame.empty:
            raise InvalidInputError(f"{file}: no rows")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), pattern, digest.hexdigest()


def read_recent(location: str, last_day: date, days: int, policy: LocationPolicy
                ) -> tuple[pd.DataFrame, str, str] | None:
    """The labelled rows of the `days` days ending `last_day` (newest first), where they are
    said to come from, and one sha256 over the days' own; None when none arrived."""
    found = [read_day(location, last_day - timedelta(days=back), policy)
             for back in range(days)]
    arrived = [f for f in found if f is not None]
    if not arrived:
        return None
    digest = hashlib.sha256("".join(sha for _, _, sha in arrived).encode()).hexdigest()
    return (pd.concat([rows for rows, _, _ in arrived], ignore_index=True),
            f"{location} ({len(arrived)} of {days} days)", digest)


def parse_day(day: date | str | None, today: date) -> date:
    """The day a run covers: `day` (a date or YYYY-MM-DD), or the day before `today` (labels
    arrive a day late)."""
    if day is None:
        return today - timedelta(days=1)
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInputError(f"day: '{day}' is not a date like 2026-11-25") from exc
