from datetime import datetime

import pytest

from mlc_tasks.audit import (
    GENESIS,
    KEYED,
    Anchor,
    AuditEvent,
    plain_seal,
    seal,
    verify_chain,
)

KEY = b"k" * 32


def event(seq: int, prev: str, key: bytes | None, action: str = "x", **changes) -> AuditEvent:
    fields = dict(seq=seq, at=datetime(2026, 1, 1, 0, 0, seq), actor="ana", action=action,
                  entity="version", entity_id="v1", model="m", reason="", detail={"i": seq},
                  evidence_sha256=None)
    fields.update(changes)
    digest = seal(fields, prev, key) if key else plain_seal(fields, prev)
    return AuditEvent(**fields, prev_hash=prev, hash=digest)


def chain(n: int, key: bytes | None = KEY, start: list[AuditEvent] | None = None,
          **changes) -> list[AuditEvent]:
    """`n` more events after `start`, sealed with `key` (None: plain sha256, as before keys)."""
    events = list(start or [])
    for seq in range(len(events) + 1, len(events) + n + 1):
        events.append(event(seq, events[-1].hash if events else GENESIS, key, **changes))
    return events


def reseal(events: list[AuditEvent], start: int, key: bytes | None,
           **changes) -> list[AuditEvent]:
    """What an attacker with write access does: edit event `start` and recompute every seal
    from there to the end (with plain sha256 as the code before keys did, or another key)."""
    kept = events[:start - 1]
    for old in events[start - 1:]:
        prev = kept[-1].hash if kept else GENESIS
        fields = {**old.model_dump(exclude={"hash", "prev_hash"}),
                  **(changes if old.seq == start else {})}
        digest = seal(fields, prev, key) if key else plain_seal(fields, prev)
        kept.append(AuditEvent(**fields, prev_hash=prev, hash=digest))
    return kept


def head(events: list[AuditEvent]) -> tuple[int, str]:
    return events[-1].seq, events[-1].hash


def anchor_of(events: list[AuditEvent], seq: int) -> Anchor:
    return Anchor(seq=seq, hash=events[seq - 1].hash, at=events[seq - 1].at,
                  anchored_at=datetime(2026, 1, 2), uri="memory://anchors/a.json")


def test_intact_chain_verifies() -> None:
    events = chain(5)
    report = verify_chain(events, head(events), KEY, 0)
    assert report.ok and report.events == 5 and report.keyed_from == 1


def test_empty_log_verifies() -> None:
    assert verify_chain([], None, KEY).ok


def test_edited_event_is_found() -> None:
    events = chain(5)
    events[2] = events[2].model_copy(update={"actor": "mallory"})
    report = verify_chain(events, head(events), KEY, 0)
    assert not report.ok and "event 3 was altered" in str(report.problem)


def test_removed_event_is_found() -> None:
    events = chain(5)
    full_head = head(events)
    del events[1]
    report = verify_chain(events, full_head, KEY, 0)
    assert not report.ok and "event 2 is missing" in str(report.problem)


def test_removed_last_event_is_found_through_the_head() -> None:
    events = chain(5)
    full_head = head(events)
    report = verify_chain(events[:-1], full_head, KEY, 0)
    assert not report.ok and "rows removed" in str(report.problem)


@pytest.mark.parametrize("field", ["detail", "reason", "at"])
def test_every_field_is_sealed(field: str) -> None:
    events = chain(3)
    changed = {"detail": {"i": 99}, "reason": "edited", "at": datetime(2030, 1, 1)}[field]
    events[0] = events[0].model_copy(update={field: changed})
    assert not verify_chain(events, head(events), KEY, 0).ok


def test_a_chain_re_sealed_with_plain_sha256_is_broken_at_the_edited_event() -> None:
    events = reseal(chain(5), 3, None, actor="mallory")
    report = verify_chain(events, head(events), KEY, 0)
    assert not report.ok and not report.chain_ok
    assert "event 3 was re-sealed without the audit key" in str(report.problem)


@pytest.mark.parametrize("key, problem", [
    (None, "no event is sealed with the audit key"),
    (b"m" * 32, "event 1 was altered after it was written, or is sealed with another key"),
], ids=["plain sha256", "another key"])
def test_a_chain_re_sealed_from_the_first_event_is_broken(key: bytes | None,
                                                         problem: str) -> None:
    events = reseal(chain(4), 1, key, actor="mallory")
    report = verify_chain(events, head(events), KEY, 0)
    assert not report.ok and problem in str(report.problem)


def test_rows_from_before_the_key_are_checked_with_plain_sha256() -> None:
    old = chain(3, key=None)
    events = chain(2, start=chain(1, start=old, action=KEYED))
    report = verify_chain(events, head(events), KEY, 4)
    assert report.ok and report.keyed_from == 4


def test_the_old_rows_cannot_be_rewritten_once_the_key_sealed_them() -> None:
    events = chain(2, start=chain(1, start=chain(3, key=None), action=KEYED))
    rewritten = reseal(events[:3], 2, None, actor="mallory") + events[3:]
    report = verify_chain(rewritten, head(rewritten), KEY, 4)
    assert not report.ok and "event 4 does not follow event 3" in str(report.problem)


def test_a_plain_row_after_the_keyed_part_is_a_rewrite() -> None:
    events = chain(2, key=None, start=chain(3))
    report = verify_chain(events, head(events), KEY, 0)
    assert "event 4 was re-sealed without the audit key" in str(report.problem)


@pytest.mark.parametrize("keyed_seq, says", [(None, "was never keyed"), (3, "from event 3")])
def test_a_head_that_lies_about_where_the_key_starts_is_found(keyed_seq, says: str) -> None:
    events = chain(4)
    report = verify_chain(events, head(events), KEY, keyed_seq)
    assert not report.ok and says in str(report.problem) and "head was edited" in report.problem


def test_the_newest_anchor_is_in_the_chain() -> None:
    events = chain(5)
    report = verify_chain(events, head(events), KEY, 0, anchor_of(events, 4))
    assert report.ok and "memory://anchors/a.json (event 4" in str(report.anchor)


def test_rows_removed_up_to_the_anchor_are_found_though_the_head_was_fixed() -> None:
    events = chain(5)
    anchor = anchor_of(events, 4)
    kept = events[:2]
    report = verify_chain(kept, head(kept), KEY, 0, anchor)
    assert not report.ok and not report.chain_ok
    assert "memory://anchors/a.json" in str(report.problem)
    assert "vouches for event 4, but the log ends at event 2" in str(report.problem)


def test_a_key_holder_who_rewrites_before_the_anchor_is_found() -> None:
    events = chain(5)
    anchor = anchor_of(events, 4)
    rewritten = reseal(events, 2, KEY, actor="mallory")  # a perfect re-seal, with the key
    assert verify_chain(rewritten, head(rewritten), KEY, 0).ok
    report = verify_chain(rewritten, head(rewritten), KEY, 0, anchor)
    assert not report.ok and "event 4 is not the one anchored in memory://anchors/a.json" in (
        str(report.problem))
