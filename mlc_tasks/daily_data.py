"""Labelled data that arrives a day at a time: `<location>/<YYYY-MM-DD>/*.csv`, or a location
with a `{date}` placeholder (`s3://bucket/credit/date={date}/*.csv`), under an allowed root."""

from __future__ import annotations

import hashlib
import io
from datetime import date

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
