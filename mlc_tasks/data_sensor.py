"""The data sensor's rules: list a model's data location (any fsspec URL), wait until a file
has stopped changing, read it once and record its content as one arrival."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta

import fsspec

from mlc_tasks.registry.arrivals import Arrival, ArrivalBook

DAY = re.compile(r"(?:^|/|=)(\d{4}-\d{2}-\d{2})(?:/|$)")


def watched_root(location: str) -> str:
    """The folder to list: the location itself, or what precedes its `{date}` placeholder."""
    root = location.split("{date}", 1)[0]
    return root.rsplit("/", 1)[0] if "{date}" in location else root.rstrip("/")


def list_files(location: str) -> dict[str, str]:
    """Every CSV file under the location (URL → size and modification time); a location that
    does not exist yet lists nothing."""
    fs, root = fsspec.core.url_to_fs(watched_root(location))
    if not fs.exists(root):
        return {}
    found = fs.find(root, detail=True)
    return {fs.unstrip_protocol(path): fingerprint(info) for path, info in sorted(found.items())
            if path.endswith(".csv") and info.get("type") == "file"}


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
          now: datetime, actor: str) -> list[Arrival]:
    """New content that has been quiet for `settle`, each recorded once. The first look at a
    location takes what is there as known, content included: data the model was already
    tested on is not new, under its own name or any other."""
    files = list_files(location)
    if not book.watched(model):
        for url, mark in files.items():
            book.observe(model, url, mark, now)
            sha = content_sha256(url)
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
        sha = content_sha256(url)
        book.mark_read(model, url, mark, sha)
        new = book.arrive(model, sha, url, action, actor)
        if new is not None:
            arrived.append(new)
    return arrived


def content_sha256(url: str) -> str:
    digest = hashlib.sha256()
    with fsspec.open(url, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
