"""Anchors: the audit log's head (seq, seal, time) written outside the database, to any fsspec
URL — meant for object-locked storage (S3 Object Lock, GCS retention), where nobody, not even a
holder of the audit key, can change or remove what was written. One object per anchor, never
overwritten; `mlc audit verify` checks the log against the newest. A head is anchored only
while the log still agrees with the anchor before it, so each anchor vouches for the ones
before it."""

from __future__ import annotations

import re
from datetime import datetime

import fsspec
from pydantic import BaseModel, ConfigDict, ValidationError

from mlc_tasks.audit import Anchor, AuditReport
from mlc_tasks.errors import AuditChainError, InvalidInputError, TransientError
from mlc_tasks.registry import Registry
from mlc_tasks.registry.store import utcnow

# seq first, zero-padded: the newest anchor is the last name, found by listing alone
NAME = re.compile(r"^(\d{12})-\d{8}T\d{12}Z\.json$")


class Anchored(BaseModel):
    """What `anchor_log` did: the newest anchor, whether it was written now (False: the head
    had not moved), and the check of the log made first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    anchor: Anchor
    written: bool
    report: AuditReport


def anchor_log(registry: Registry, url: str, now: datetime | None = None) -> Anchored:
    """Check the log against the newest anchor and, if its chain holds, anchor its head (a
    head anchored already is not written again). A broken chain is not anchored."""
    newest = newest_anchor(url)
    report = registry.verify_audit(newest)
    if not report.chain_ok:
        raise AuditChainError(f"the audit log is not anchored: {report.problem}")
    head = registry.audit_head()
    if newest is not None and (newest.seq, newest.hash) == (head.seq, head.hash):
        return Anchored(anchor=newest, written=False, report=report)
    anchor = Anchor(**head.model_dump(), anchored_at=now or utcnow())
    return Anchored(anchor=write_anchor(url, anchor), written=True, report=report)


def write_anchor(url: str, anchor: Anchor) -> Anchor:
    """Write one new object; an object of that name is never overwritten."""
    name = f"{anchor.seq:012d}-{anchor.anchored_at:%Y%m%dT%H%M%S%f}Z.json"
    uri = f"{url.rstrip('/')}/{name}"
    try:
        fs, root = fsspec.core.url_to_fs(url)
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root.rstrip('/')}/{name}", "xb") as file:
            file.write(anchor.model_dump_json(exclude={"uri"}).encode())
    except FileExistsError as exc:
        raise AuditChainError(f"audit anchor {uri} exists already: not overwritten") from exc
    except OSError as exc:
        raise TransientError(f"audit anchor sink {url} failed: {exc}") from exc
    return anchor.model_copy(update={"uri": uri})


def newest_anchor(url: str) -> Anchor | None:
    """The anchor with the highest seq at `url` (None: none yet). Objects of other names are
    not anchors and are ignored; an anchor object that does not read is an error naming it."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
        if not fs.exists(root):
            return None
        names = sorted(n for n in (p.rstrip("/").rsplit("/", 1)[-1]
                                   for p in fs.ls(root, detail=False)) if NAME.match(n))
        if not names:
            return None
        data = fs.cat_file(f"{root.rstrip('/')}/{names[-1]}")
    except OSError as exc:
        raise TransientError(f"audit anchor sink {url} failed: {exc}") from exc
    return _read(f"{url.rstrip('/')}/{names[-1]}", names[-1], data)


def _read(uri: str, name: str, data: bytes) -> Anchor:
    try:
        anchor = Anchor.model_validate_json(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "the object"
        raise InvalidInputError(f"audit anchor {uri} is not an anchor: {where}: "
                                f"{problem['msg']}") from exc
    match = NAME.match(name)
    if match is None or int(match.group(1)) != anchor.seq:
        raise InvalidInputError(f"audit anchor {uri} holds event {anchor.seq}, not the one "
                                "its name says")
    return anchor.model_copy(update={"uri": uri})
