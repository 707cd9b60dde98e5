"""The audit log's hash chain: pure functions to seal and to check rows."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64


class AuditEvent(BaseModel):
    """Who did what to which thing, when and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    model: str | None
    reason: str
    detail: dict[str, Any]
    evidence_sha256: str | None
    prev_hash: str
    hash: str


class AuditReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    events: int
    problem: str | None = None


def seal(fields: dict[str, Any], prev_hash: str) -> str:
    """sha256 over the canonical JSON of an event's content and the previous hash."""
    content = {k: v for k, v in fields.items() if k not in ("hash", "prev_hash")}
    canonical = json.dumps(
        {**content, "prev_hash": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
        default=_canonical,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_chain(events: list[AuditEvent], head: tuple[int, str] | None) -> AuditReport:
    """Check order, links and hashes; head is the (seq, hash) the log says it ends with."""
    prev_hash, expected_seq = GENESIS, 1
    for event in events:
        if event.seq != expected_seq:
            return _broken(events, f"event {expected_seq} is missing (next is {event.seq})")
        if event.prev_hash != prev_hash:
            return _broken(events, f"event {event.seq} does not follow event {event.seq - 1}")
        if seal(event.model_dump(), prev_hash) != event.hash:
            return _broken(events, f"event {event.seq} was altered after it was written")
        prev_hash, expected_seq = event.hash, expected_seq + 1
    last = (expected_seq - 1, prev_hash) if events else None
    if head != last:
        return _broken(events, f"the log ends at {last}, but its head says {head}: rows removed")
    return AuditReport(ok=True, events=len(events))


def _broken(events: list[AuditEvent], problem: str) -> AuditReport:
    return AuditReport(ok=False, events=len(events), problem=problem)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    raise TypeError(f"cannot canonicalise {type(value).__name__}")
