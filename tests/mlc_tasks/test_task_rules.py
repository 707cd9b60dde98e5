"""The pure rules of human tasks (mlc_tasks/approvals.py), table by table: how an accepted
decision ends a task and where it moves the version, who is excluded from deciding, where an
expired task leaves the version; and a process's question in the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlc_tasks.approvals import ROLLBACK_STEP, closing, excluded_for, expiry, refusal
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import Answer, HumanTask, TaskDecision, TaskKind, TaskStatus

AT = datetime(2026, 12, 1, tzinfo=UTC)
CHOICES = ["keep", "retrain", "retire"]


def task(kind: TaskKind, quorum: int = 1, step: str = "approval", **detail: Any) -> HumanTask:
    if kind == TaskKind.QUESTION:
        detail.setdefault("choices", CHOICES)
    return HumanTask(id=7, kind=kind, status=TaskStatus.OPEN, version_id="v", model="m",
                     number=1, step=step, groups=["risk"], quorum=quorum, deadline=None,
                     flow_run_id=None, holder=None, detail=detail, created_at=AT,
                     closed_at=None, outcome="")


def made(actor: str, decision: str, accepted: bool = True, comment: str = "") -> TaskDecision:
    return TaskDecision(id=1, task_id=7, actor=actor, decision=decision, comment=comment,
                        accepted=accepted, refusal=None, via="api", at=AT)


@pytest.mark.parametrize(("kind", "quorum", "decided", "status", "state"), [
    (TaskKind.APPROVAL, 1, [made("rita", "approve")], TaskStatus.APPROVED, State.APPROVED),
    (TaskKind.APPROVAL, 2, [made("rita", "approve")], None, None),
    (TaskKind.APPROVAL, 2, [made("rita", "approve"), made("RITA", "approve")], None, None),
    (TaskKind.APPROVAL, 2, [made("rita", "approve"), made("omar", "approve", False),
                            made("sam", "approve")], TaskStatus.APPROVED, State.APPROVED),
    (TaskKind.APPROVAL, 2, [made("rita", "reject", comment="no")], TaskStatus.REJECTED,
     State.REJECTED),
    (TaskKind.REVIEW, 1, [made("mia", "retry")], TaskStatus.RETRY, None),
    (TaskKind.REVIEW, 1, [made("mia", "abort")], TaskStatus.ABORTED, State.FAILED),
    (TaskKind.QUESTION, 1, [made("rita", "keep")], TaskStatus.ANSWERED, None),
    (TaskKind.QUESTION, 2, [made("rita", "keep"), made("omar", "retire")], None, None),
    (TaskKind.QUESTION, 2, [made("rita", "keep"), made("omar", "retire"),
                            made("sam", "retire")], TaskStatus.ANSWERED, None),
])
def test_how_an_accepted_decision_ends_a_task(kind: TaskKind, quorum: int,
                                              decided: list[TaskDecision],
                                              status: TaskStatus | None,
                                              state: State | None) -> None:
    end = closing(task(kind, quorum), decided[-1].decision, decided)
    assert (end.status if end else None, end.version_state if end else None) == (status, state)


@pytest.mark.parametrize(("kind", "step", "detail", "excluded"), [
    (TaskKind.APPROVAL, "approval", {}, {"sam": "submitted"}),
    (TaskKind.APPROVAL, "approval", {"excluded": {"Olga": "owns"}},
     {"sam": "submitted", "olga": "owns"}),
    (TaskKind.CHANGE, "change", {}, {"sam": "submitted"}),
    (TaskKind.REVIEW, "deploy-qa", {"excluded": {"olga": "owns"}}, {}),
    (TaskKind.REVIEW, ROLLBACK_STEP, {}, {"sam": "submitted"}),
    (TaskKind.QUESTION, "quarterly-review", {}, {}),
    (TaskKind.QUESTION, "quarterly-review", {"excluded": {"sam": "submitted"}},
     {"sam": "submitted"}),
])
def test_who_may_not_decide(kind: TaskKind, step: str, detail: dict[str, Any],
                            excluded: dict[str, str]) -> None:
    assert excluded_for(task(kind, step=step, **detail), "Sam") == excluded


@pytest.mark.parametrize(("kind", "state"), [
    (TaskKind.APPROVAL, State.REJECTED), (TaskKind.REVIEW, State.FAILED),
    (TaskKind.CHANGE, None), (TaskKind.QUESTION, None)])
def test_where_an_expired_task_leaves_the_version(kind: TaskKind, state: State | None) -> None:
    assert expiry(task(kind)) == state


@pytest.mark.parametrize(("decision", "why"), [
    ("retrain", None),
    ("approve", "'approve' is not a decision for a question task (use keep, retrain, retire)"),
    ("delete", "'delete' is not a decision for a question task"),
])
def test_a_question_takes_only_its_own_choices(decision: str, why: str | None) -> None:
    found = refusal(task(TaskKind.QUESTION), "sam", {"rita"}, [], "rita", decision, "")
    assert found == why or (why is not None and found is not None and found.startswith(why))


@pytest.fixture
def version(package: Any, registry: Registry, store: Any) -> VersionRecord:
    found, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "sam")
    return found


def test_a_question_is_answered_by_its_quorum_and_moves_nothing(
        registry: Registry, version: VersionRecord) -> None:
    book = TaskBook(registry)
    opened, new = book.open_task(
        TaskKind.QUESTION, version.id, "quarterly-review", groups=["risk"], quorum=2,
        deadline=utcnow() + timedelta(days=14), flow_run_id=None, holder=None,
        actor="quarterly-review",
        detail={"choices": CHOICES, "process": "quarterly-review",
                "excluded": {"sam": "submitted"}})
    assert new and opened.process == "quarterly-review" and opened.choices == CHOICES
    members = {"rita", "omar", "sam"}
    assert book.decide(opened.id, "sam", "keep", "", "api", members).refusal == (
        "sam submitted credit-risk:1 and cannot decide on its question")
    assert book.decide(opened.id, "rita", "retire", "", "api", members).accepted
    assert book.get(opened.id).status == TaskStatus.OPEN  # one of two
    assert book.decide(opened.id, "omar", "retire", "old data", "api", members).accepted
    closed = book.get(opened.id)
    assert (closed.status, closed.outcome) == (TaskStatus.ANSWERED, "answered retire by 2")
    assert registry.get_version(version.model, version.number).state == version.state
    answer = Answer.of(closed, book.decisions(opened.id))
    assert (answer.choice, answer.people, answer.comment) == ("retire", ["rita", "omar"],
                                                             "old data")


def test_an_expired_question_has_no_answer(registry: Registry, version: VersionRecord) -> None:
    book = TaskBook(registry)
    opened, _ = book.open_task(
        TaskKind.QUESTION, version.id, "quarterly-review", groups=["risk"], quorum=1,
        deadline=utcnow() - timedelta(seconds=1), flow_run_id=None, holder=None,
        actor="quarterly-review", detail={"choices": CHOICES})
    assert book.expire(opened.id)
    closed = book.get(opened.id)
    assert closed.status == TaskStatus.EXPIRED
    assert Answer.of(closed, book.decisions(opened.id)).choice is None
    assert registry.get_version(version.model, version.number).state == version.state
