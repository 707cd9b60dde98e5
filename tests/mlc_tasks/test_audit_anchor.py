"""Anchors: the audit log's head written outside the database (a folder here; any fsspec URL),
and what they catch that the key cannot: rows removed up to the anchor, and a rewrite by
someone who holds the key."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest

from mlc_tasks.audit import GENESIS, Anchor
from mlc_tasks.audit_anchor import anchor_log, newest_anchor, write_anchor
from mlc_tasks.errors import AuditChainError, InvalidInputError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.mlc_tasks.audit_attack import rewrite_chain, truncate_chain

AT = datetime(2026, 12, 1, 10, 0)


@pytest.fixture
def sink(tmp_path: Path) -> str:
    return str(tmp_path / "anchors")


@pytest.fixture
def logged(examples_dir: Path, registry: Registry, store) -> Registry:
    """A registry with a few events in its log."""
    version, _ = submit_package(examples_dir / "house-prices", registry, store,
                                list(REVIEWED_TYPES), "ana")
    registry.transition(version.id, State.TESTED, "ci")
    return registry


def anchor(seq: int, at: datetime = AT) -> Anchor:
    return Anchor(seq=seq, hash=GENESIS, at=None, anchored_at=at)


def test_anchoring_writes_one_object_per_head(logged: Registry, sink: str) -> None:
    first = anchor_log(logged, sink, now=AT)
    head = logged.audit_head()
    assert first.written and (first.anchor.seq, first.anchor.hash) == (head.seq, head.hash)
    assert first.anchor.uri.startswith(sink + "/") and Path(first.anchor.uri).exists()
    again = anchor_log(logged, sink)  # the head has not moved: nothing new is written
    assert not again.written and again.anchor == newest_anchor(sink)
    assert len(list(Path(sink).iterdir())) == 1
    version = logged.list_versions("house-prices")[0]
    logged.transition(version.id, State.APPROVED, "rita")
    moved = anchor_log(logged, sink)
    assert moved.written and moved.anchor.seq == head.seq + 1
    assert newest_anchor(sink) == moved.anchor and len(list(Path(sink).iterdir())) == 2


def test_an_anchor_is_never_overwritten(sink: str) -> None:
    written = write_anchor(sink, anchor(3))
    before = Path(written.uri).read_bytes()
    with pytest.raises(AuditChainError, match="exists already: not overwritten"):
        write_anchor(sink, anchor(3).model_copy(update={"hash": "f" * 64}))
    assert Path(written.uri).read_bytes() == before


def test_the_newest_anchor_is_the_highest_event_and_other_objects_are_ignored(
        sink: str) -> None:
    assert newest_anchor(sink) is None  # no folder yet
    write_anchor(sink, anchor(12, datetime(2026, 1, 1)))
    write_anchor(sink, anchor(9, datetime(2026, 6, 1)))
    (Path(sink) / "notes.txt").write_text("not an anchor")
    newest = newest_anchor(sink)
    assert newest is not None and newest.seq == 12 and newest.uri.endswith(".json")


@pytest.mark.parametrize("content, problem", [
    (b"{not json", "is not an anchor"),
    (b'{"seq": 5, "hash": "x", "anchored_at": "2026-12-01T10:00:00"}', "hash"),
    (b'{"seq": 4, "hash": "' + b"0" * 64 + b'", "anchored_at": "2026-12-01T10:00:00"}',
     "holds event 4, not the one its name says"),
])
def test_an_anchor_that_does_not_read_is_an_error_naming_it(sink: str, content: bytes,
                                                             problem: str) -> None:
    Path(sink).mkdir()
    name = "000000000005-20261201T100000000000Z.json"
    (Path(sink) / name).write_bytes(content)
    with pytest.raises(InvalidInputError, match=problem) as raised:
        newest_anchor(sink)
    assert name in str(raised.value)


def test_any_fsspec_url_is_a_sink(logged: Registry) -> None:
    url = f"memory://audit-anchors-{uuid.uuid4().hex}"
    done = anchor_log(logged, url)
    assert done.anchor.uri.startswith(url + "/") and newest_anchor(url) == done.anchor


def test_rows_removed_up_to_the_anchor_are_broken_naming_the_anchor(logged: Registry,
                                                                    sink: str) -> None:
    done = anchor_log(logged, sink)
    truncate_chain(logged.engine, done.anchor.seq - 1)  # and the head fixed: the key is fine
    assert logged.verify_audit().chain_ok  # without the anchor nothing shows
    report = logged.verify_audit(newest_anchor(sink))
    assert not report.ok and not report.chain_ok
    assert f"anchor {done.anchor.uri}" in str(report.problem)
    assert f"vouches for event {done.anchor.seq}, but the log ends at event " \
           f"{done.anchor.seq - 1}: rows were removed" in str(report.problem)


def test_a_rewrite_by_a_key_holder_is_broken_naming_the_anchor(logged: Registry, sink: str,
                                                               settings: MlcSettings) -> None:
    done = anchor_log(logged, sink)
    rewrite_chain(logged.engine, 2, settings.resolved_audit_key().encode(), actor="mallory")
    assert logged.verify_audit().chain_ok  # a perfect re-seal, with the key
    report = logged.verify_audit(newest_anchor(sink))
    assert not report.ok and f"event {done.anchor.seq} is not the one anchored in " \
                             f"{done.anchor.uri}" in str(report.problem)


def test_a_broken_log_is_not_anchored(logged: Registry, sink: str) -> None:
    anchor_log(logged, sink)
    version = logged.list_versions("house-prices")[0]
    logged.transition(version.id, State.APPROVED, "rita")
    rewrite_chain(logged.engine, 2, actor="mallory")
    with pytest.raises(AuditChainError, match="not anchored: event 2 was re-sealed"):
        anchor_log(logged, sink)
    assert len(list(Path(sink).iterdir())) == 1
