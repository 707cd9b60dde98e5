from datetime import datetime

import pytest

from mlc_tasks.audit import GENESIS, AuditEvent, seal, verify_chain


def chain(n: int) -> list[AuditEvent]:
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = dict(seq=seq, at=datetime(2026, 1, 1, 0, 0, seq), actor="ana", action="x",
                      entity="version", entity_id="v1", model="m", reason="", detail={"i": seq},
                      evidence_sha256=None)
        digest = seal(fields, prev)
        events.append(AuditEvent(**fields, prev_hash=prev, hash=digest))
        prev = digest
    return events


def head(events: list[AuditEvent]) -> tuple[int, str]:
    return events[-1].seq, events[-1].hash


def test_intact_chain_verifies() -> None:
    events = chain(5)
    report = verify_chain(events, head(events))
    assert report.ok and report.events == 5


def test_empty_log_verifies() -> None:
    assert verify_chain([], None).ok


def test_edited_event_is_found() -> None:
    events = chain(5)
    events[2] = events[2].model_copy(update={"actor": "mallory"})
    report = verify_chain(events, head(events))
    assert not report.ok and "event 3 was altered" in str(report.problem)


def test_removed_event_is_found() -> None:
    events = chain(5)
    full_head = head(events)
    del events[1]
    report = verify_chain(events, full_head)
    assert not report.ok and "event 2 is missing" in str(report.problem)


def test_removed_last_event_is_found_through_the_head() -> None:
    events = chain(5)
    full_head = head(events)
    report = verify_chain(events[:-1], full_head)
    assert not report.ok and "rows removed" in str(report.problem)


@pytest.mark.parametrize("field", ["detail", "reason", "at"])
def test_every_field_is_sealed(field: str) -> None:
    events = chain(3)
    changed = {"detail": {"i": 99}, "reason": "edited", "at": datetime(2030, 1, 1)}[field]
    events[0] = events[0].model_copy(update={field: changed})
    assert not verify_chain(events, head(events)).ok
