"""The audit log's chain: pure functions to seal rows and to check the chain and its anchor.

Each row is sealed with HMAC-SHA256, under a key kept outside the database, over its content
and the previous row's seal: whoever can write the database but has no key cannot re-seal an
edited row. Rows written before the installation had a key carry a plain sha256 seal; the
first keyed row (an `audit.keyed` event, written once when a key first opens such a log)
seals their head, so they are still checked and can no longer be changed. After it, a plain
seal is a rewrite. An anchor (the head's seq and seal, written outside the database) catches
what a key holder could still do: rewrite, or drop rows, before it."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

GENESIS = "0" * 64
KEYED = "audit.keyed"  # the event that seals the head of rows written before the key


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


class ChainHead(BaseModel):
    """The last event's seq and seal (seq 0 and GENESIS: an empty log), and when it was
    written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=0)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: datetime | None = None


class Anchor(ChainHead):
    """A head written to a sink outside the database; `uri` is where it was read from (not
    stored in the object)."""

    anchored_at: datetime
    uri: str = ""


class AuditReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    events: int
    problem: str | None = Field(default=None, description="the first thing found wrong")
    chain_ok: bool = Field(default=True, description="rows, seals, head and anchor agree")
    keyed_from: int | None = Field(default=None, description="first event sealed with the key")
    anchor: str | None = Field(default=None, description="the anchor checked against")
    disagreements: list[str] = Field(
        default_factory=list, description="rows where the state tables and the events differ")


def seal(fields: dict[str, Any], prev_hash: str, key: bytes) -> str:
    """HMAC-SHA256 under the audit key of an event's content and the previous seal."""
    return hmac.new(key, _canonical_bytes(fields, prev_hash), hashlib.sha256).hexdigest()


def plain_seal(fields: dict[str, Any], prev_hash: str) -> str:
    """The seal of rows written before the key: sha256 of the same canonical JSON."""
    return hashlib.sha256(_canonical_bytes(fields, prev_hash)).hexdigest()


def is_sealed(event: AuditEvent, key: bytes) -> bool:
    return hmac.compare_digest(seal(event.model_dump(), event.prev_hash, key), event.hash)


def verify_chain(events: list[AuditEvent], head: tuple[int, str] | None, key: bytes,
                 keyed_seq: int | None = None, anchor: Anchor | None = None) -> AuditReport:
    """Check order, links and seals; `head` is the (seq, hash) the log says it ends with,
    `keyed_seq` the event it says the key starts at (0: the first), `anchor` the newest
    head written outside the database."""
    problem, keyed_from = _chain_problem(events, key)
    problem = (problem or _head_problem(events, head) or _keyed_problem(events, keyed_from,
                                                                          keyed_seq)
               or (_anchor_problem(events, anchor) if anchor else None))
    return AuditReport(ok=problem is None, events=len(events), problem=problem,
                       chain_ok=problem is None, keyed_from=keyed_from,
                       anchor=describe(anchor) if anchor else None)


def describe(anchor: Anchor) -> str:
    return (f"{anchor.uri or 'anchor'} (event {anchor.seq}, anchored "
            f"{anchor.anchored_at:%Y-%m-%d %H:%M:%S} UTC)")


def _chain_problem(events: list[AuditEvent], key: bytes) -> tuple[str | None, int | None]:
    prev_hash, expected_seq, keyed_from = GENESIS, 1, None
    for event in events:
        if event.seq != expected_seq:
            return f"event {expected_seq} is missing (next is {event.seq})", keyed_from
        if event.prev_hash != prev_hash:
            return f"event {event.seq} does not follow event {event.seq - 1}", keyed_from
        plain = plain_seal(event.model_dump(), prev_hash) == event.hash
        if is_sealed(event, key):
            keyed_from = keyed_from or event.seq
        elif keyed_from is not None and plain:
            return (f"event {event.seq} was re-sealed without the audit key (plain sha256): "
                    "the log was rewritten from there"), keyed_from
        elif keyed_from is not None:
            return f"event {event.seq} was altered after it was written", keyed_from
        elif not plain:
            return (f"event {event.seq} was altered after it was written, or is sealed with "
                    "another key than this one"), None
        prev_hash, expected_seq = event.hash, expected_seq + 1
    if events and keyed_from is None:
        return ("no event is sealed with the audit key: the log was re-sealed without it, or "
                "this is not the installation's key (MLC_AUDIT_KEY, MLC_HOME/audit-key)"), None
    return None, keyed_from


def _head_problem(events: list[AuditEvent], head: tuple[int, str] | None) -> str | None:
    last = (events[-1].seq, events[-1].hash) if events else None
    if head != last:
        return f"the log ends at {last}, but its head says {head}: rows removed"
    return None


def _keyed_problem(events: list[AuditEvent], keyed_from: int | None,
                   keyed_seq: int | None) -> str | None:
    expected = None if keyed_seq is None or not events else max(keyed_seq, 1)
    if keyed_from == expected:
        return None
    says = "was never keyed" if expected is None else f"is keyed from event {expected}"
    return (f"the log's head says it {says}, but the first event sealed with the key is "
            f"{keyed_from}: the head was edited")


def _anchor_problem(events: list[AuditEvent], anchor: Anchor) -> str | None:
    if anchor.seq == 0:
        return None
    found = next((e for e in events if e.seq == anchor.seq), None)
    if found is None:
        last = events[-1].seq if events else 0
        return (f"anchor {describe(anchor)} vouches for event {anchor.seq}, but the log ends "
                f"at event {last}: rows were removed")
    if found.hash != anchor.hash:
        return (f"event {anchor.seq} is not the one anchored in {describe(anchor)}: the log was "
                "rewritten up to it")
    return None


def _canonical_bytes(fields: dict[str, Any], prev_hash: str) -> bytes:
    content = {k: v for k, v in fields.items() if k not in ("hash", "prev_hash")}
    canonical = json.dumps(
        {**content, "prev_hash": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
        default=_canonical,
    )
    return canonical.encode()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    raise TypeError(f"cannot canonicalise {type(value).__name__}")
