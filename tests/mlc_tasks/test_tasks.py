"""Human tasks in the inventory (SQLite, and PostgreSQL when configured): who may decide,
quorum, expiry, and that every attempt is kept and audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlc_tasks.approvals import SYSTEM_ACTOR, refusal
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import Decision, TaskKind, TaskStatus

RISK = {"rita", "omar", "sam"}
PLATFORM = {"sam", "mia"}


@pytest.fixture
def tested(package, registry, store) -> VersionRecord:
    version, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "sam")
    return registry.transition(version.id, State.TESTED, "test-model", "passed")


def approval(registry: Registry, version: VersionRecord, quorum: int = 1,
             deadline: timedelta = timedelta(hours=1)):
    task, _ = TaskBook(registry).open_task(
        TaskKind.APPROVAL, version.id, "approval", groups=["risk"], quorum=quorum,
        deadline=utcnow() + deadline, detail={}, flow_run_id="run-1", holder="host:1",
        actor="on-model-changed")
    return task


def test_a_rerun_takes_over_the_open_task(registry, tested) -> None:
    book = TaskBook(registry)
    first = approval(registry, tested)
    again, new = book.open_task(TaskKind.APPROVAL, tested.id, "approval", groups=["risk"],
                                quorum=1, deadline=utcnow() + timedelta(hours=5), detail={},
                                flow_run_id="run-2", holder="host:2", actor="on-model-changed")
    assert not new and again.id == first.id
    assert (again.flow_run_id, again.holder, again.deadline) == ("run-2", "host:2",
                                                                 first.deadline)
    assert [t.id for t in book.list()] == [first.id]


@pytest.mark.postgres
def test_quorum_counts_distinct_members_and_approves_the_version(registry, tested) -> None:
    book = TaskBook(registry)
    task = approval(registry, tested, quorum=2)
    assert book.decide(task.id, "rita", Decision.APPROVE, "", "cli", RISK).accepted
    twice = book.decide(task.id, "\uff32ITA", Decision.APPROVE, "", "cli", RISK)  # fullwidth R
    assert not twice.accepted and "already given" in str(twice.refusal)
    assert book.get(task.id).status == TaskStatus.OPEN
    assert registry.get_version_by_id(tested.id).state == State.TESTED
    assert book.decide(task.id, "omar", Decision.APPROVE, "ok", "cli", RISK).accepted
    closed = book.get(task.id)
    assert (closed.status, closed.outcome) == (TaskStatus.APPROVED, "approved by 2 of 2 needed")
    assert registry.get_version_by_id(tested.id).state == State.APPROVED
    late = book.decide(task.id, "Rita ", Decision.APPROVE, "", "cli", RISK)
    assert not late.accepted and "already approved" in str(late.refusal)
    assert [(d.actor, d.accepted) for d in book.decisions(task.id)] == [
        ("rita", True), ("\uff32ITA", False), ("omar", True), ("Rita ", False)]
    audited = [(e.action, e.actor) for e in registry.audit_events(tested.model)
               if e.entity == "task"]
    assert audited == [("task.approval.opened", "on-model-changed"),
                       ("task.decision", "rita"), ("task.decision_refused", "\uff32ITA"),
                       ("task.decision", "omar"), ("task.approval.approved", "omar"),
                       ("task.decision_refused", "Rita ")]
    assert registry.verify_audit().ok


@pytest.mark.postgres
def test_refused_attempts_change_nothing_but_are_kept(registry, tested) -> None:
    book = TaskBook(registry)
    task = approval(registry, tested)
    for actor, decision, why in [("mallory", Decision.APPROVE, "not a member of risk"),
                                 ("sam", Decision.APPROVE, "submitted"),
                                 (" SAM", Decision.APPROVE, "submitted"),
                                 ("rita", Decision.RETRY, "not a decision for a approval"),
                                 ("rita", Decision.REJECT, "needs a reason")]:
        made = book.decide(task.id, actor, decision, "", "prefect-input", RISK)
        assert not made.accepted and why in str(made.refusal)
    assert book.get(task.id).status == TaskStatus.OPEN
    assert registry.get_version_by_id(tested.id).state == State.TESTED
    rejected = book.decide(task.id, "rita", Decision.REJECT, "recall too low", "cli", RISK)
    assert rejected.accepted
    assert registry.get_version_by_id(tested.id).state == State.REJECTED
    assert book.get(task.id).outcome == "rejected: recall too low"


def test_expiry_rejects_the_version_once_due(registry, tested) -> None:
    book = TaskBook(registry)
    task = approval(registry, tested, deadline=timedelta(seconds=30))
    assert not book.expire(task.id)  # not yet due
    assert book.expire(task.id, now=utcnow() + timedelta(minutes=1))
    assert not book.expire(task.id, now=utcnow() + timedelta(minutes=1))  # once
    closed = book.get(task.id)
    assert (closed.status, closed.outcome) == (TaskStatus.EXPIRED, "expired")
    assert registry.get_version_by_id(tested.id).state == State.REJECTED
    assert book.list() == []


def test_review_abort_fails_the_version_and_retry_leaves_it(registry, tested) -> None:
    book = TaskBook(registry)
    retry, _ = book.open_task(TaskKind.REVIEW, tested.id, "scan", groups=["platform"], quorum=1,
                              deadline=utcnow() + timedelta(hours=1),
                              detail={"error": "no runtime"}, flow_run_id=None, holder=None,
                              actor="on-model-changed")
    assert book.decide(retry.id, "sam", Decision.RETRY, "", "cli", PLATFORM).accepted
    assert book.get(retry.id).status == TaskStatus.RETRY
    assert registry.get_version_by_id(tested.id).state == State.TESTED
    abort, new = book.open_task(TaskKind.REVIEW, tested.id, "scan", groups=["platform"], quorum=1,
                                deadline=utcnow() + timedelta(hours=1),
                                detail={"error": "still no runtime"}, flow_run_id=None,
                                holder=None, actor="on-model-changed")
    assert new and abort.id != retry.id
    assert book.decide(abort.id, "sam", Decision.ABORT, "give up", "cli", PLATFORM).accepted
    assert registry.get_version_by_id(tested.id).state == State.FAILED
    assert "still no runtime" in book.get(abort.id).outcome


def test_the_submitter_may_not_retry_their_rolled_back_version(registry, tested) -> None:
    """After an automatic rollback, `retry` serves the version in production again: like an
    approval, never by its submitter; another reviewer may."""
    book = TaskBook(registry)
    task, _ = book.open_task(TaskKind.REVIEW, tested.id, "rollback", groups=["platform"],
                             quorum=1, deadline=utcnow() + timedelta(hours=1), detail={},
                             flow_run_id=None, holder=None, actor="rollback-review")
    own = book.decide(task.id, "sam", Decision.RETRY, "", "cli", PLATFORM)
    assert not own.accepted and "sam submitted" in str(own.refusal)
    assert book.decide(task.id, "mia", Decision.RETRY, "", "cli", PLATFORM).accepted


def test_a_task_naming_no_group_is_decided_by_nobody(registry, tested) -> None:
    """Deny by default: no group means no one, not anyone."""
    book = TaskBook(registry)
    task, _ = book.open_task(TaskKind.REVIEW, tested.id, "scan", groups=[], quorum=1,
                             deadline=utcnow() + timedelta(hours=1), detail={},
                             flow_run_id=None, holder=None, actor="on-model-changed")
    made = book.decide(task.id, "mia", Decision.RETRY, "", "cli", {"mia"})
    assert not made.accepted and "names no group, so nobody may decide" in str(made.refusal)
    assert book.get(task.id).status == TaskStatus.OPEN


def test_the_deadline_timer_name_is_reserved(registry, tested) -> None:
    task = approval(registry, tested)
    assert "reserved" in str(refusal(task, "sam", RISK | {SYSTEM_ACTOR}, [], SYSTEM_ACTOR,
                                     Decision.APPROVE, ""))


def test_a_decision_cannot_move_a_version_backwards(registry, tested) -> None:
    """An abort after the version reached production closes the task and leaves the version."""
    book = TaskBook(registry)
    task, _ = book.open_task(TaskKind.REVIEW, tested.id, "deploy-prod", groups=["platform"],
                             quorum=1,
                             deadline=utcnow() + timedelta(hours=1), detail={},
                             flow_run_id=None, holder=None, actor="on-model-changed")
    registry.transition(tested.id, State.APPROVED, "x")
    registry.transition(tested.id, State.DEPLOYED, "x")
    assert book.decide(task.id, "mia", Decision.ABORT, "", "cli", PLATFORM).accepted
    assert book.get(task.id).status == TaskStatus.ABORTED
    assert registry.get_version_by_id(tested.id).state == State.DEPLOYED
