"""The data sensor's rules: list a model's data location (a folder or URL under an allowed root),
wait until a file has stopped changing, read it once and record its content as one arrival."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta

from mlc_tasks import locations
from mlc_tasks.locations import Location, LocationPolicy, watched_root
from mlc_tasks.registry.arrivals import Arrival, ArrivalBook

DAY = re.compile(r"(?:^|/|=)(\d{4}-\d{2}-\d{2})(?:/|$)")
FIELD = "data_location"

__all__ = ["day_of", "list_files", "sense", "watched_root"]


def list_files(location: str, policy: LocationPolicy) -> dict[str, str]:
    """Every CSV file under the location (URL → size and modification time); a location that
    does not exist yet lists nothing. The location is checked before it is listed (a model
    registered before the roots were may name any), and each file before it is taken: one that
    leads outside it (a symbolic link) is refused, naming it."""
    locations.check(location, policy, FIELD)
    base = locations.check(watched_root(location), policy, FIELD)
    fs, root = locations.filesystem(base.url)
    if not fs.exists(root):
        return {}
    found = fs.find(root, detail=True)
    files = {}
    for path, info in sorted(found.items()):
        if path.endswith(".csv") and info.get("type") == "file":
            url = fs.unstrip_protocol(path)
            locations.check_listed(url, base, policy, FIELD)
            files[url] = fingerprint(info)
    return files


def fingerprint(info: dict[str, object]) -> str:
    changed = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
    return f"{info.get('size')}:{changed}"


def day_of(path: str) -> date | None:
    """The day a file belongs to, from a YYYY-MM-DD folder in its path."""
    found = DAY.findall(path)
    try:
        return date.fromisoformat(found[-1]) if found else None
    except ValueError:
        return None


def sense(book: ArrivalBook, model: str, location: str, action: str, settle: timedelta,
          now: datetime, actor: str, policy: LocationPolicy) -> list[Arrival]:
    """New content that has been quiet for `settle`, each recorded once. The first look at a
    location takes what is there as known, content included: data the model was already
    tested on is not new, under its own name or any other."""
    files = list_files(location, policy)
    base = locations.check(watched_root(location), policy, FIELD)

    def read(url: str) -> str:  # each file checked again right before it is read
        return content_sha256(locations.check_listed(url, base, policy, FIELD))

    if not book.watched(model):
        for url, mark in files.items():
            book.observe(model, url, mark, now)
            sha = read(url)
            book.mark_read(model, url, mark, sha)
            book.know(model, sha, url)
        # remembered even when the location is empty or missing, so its first file is new
        book.observe(model, watched_root(location) + "/", "watched since", now)
        return []
    arrived = []
    for url, mark in files.items():
        seen = book.observe(model, url, mark, now)
        if seen.sha256 is not None or now - seen.changed_at < settle:
            continue  # read already, or still being written
        sha = read(url)
        book.mark_read(model, url, mark, sha)
        new = book.arrive(model, sha, url, action, actor)
        if new is not None:
            arrived.append(new)
    return arrived


def content_sha256(location: Location) -> str:
    digest = hashlib.sha256()
    fs, path = locations.filesystem(location.url)
    with fs.open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
