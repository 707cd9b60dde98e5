"""Human tasks: an approval, an error review, a governance change, or a question any process
asks (its choices its own) that a paused flow run waits on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TaskKind(StrEnum):
    APPROVAL = "approval"
    REVIEW = "review"
    CHANGE = "change"  # a governance change of a model (mlc_tasks/governance.py)
    QUESTION = "question"  # any process's question, with its own choices (flows/steps.py ask)


class TaskStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RETRY = "retry"
    ABORTED = "aborted"
    ANSWERED = "answered"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    RETRY = "retry"
    ABORT = "abort"


DECISIONS: dict[TaskKind, frozenset[Decision]] = {
    TaskKind.APPROVAL: frozenset({Decision.APPROVE, Decision.REJECT}),
    TaskKind.REVIEW: frozenset({Decision.RETRY, Decision.ABORT}),
    TaskKind.CHANGE: frozenset({Decision.APPROVE, Decision.REJECT}),
    TaskKind.QUESTION: frozenset(),  # the task's own choices (detail["choices"])
}
CHOICE_PATTERN = r"^[a-z][a-z0-9-]{0,15}$"  # fits the decision column; safe in a CLI and a URL
# the form's (decision field, person field) for each kind: the Prefect UI shows these names
FORM_FIELDS: dict[TaskKind, tuple[str, str]] = {
    TaskKind.APPROVAL: ("decision", "approver"),
    TaskKind.CHANGE: ("decision", "approver"),
    TaskKind.REVIEW: ("action", "reviewer"),
    TaskKind.QUESTION: ("choice", "person"),
}


class HumanTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    id: int
    kind: TaskKind
    status: TaskStatus
    version_id: str
    model: str
    number: int
    step: str = Field(description="approval, or the failed step: train, test, scan, deploy-qa…")
    groups: list[str]
    quorum: int
    deadline: datetime | None
    flow_run_id: str | None
    holder: str | None = Field(description="host:pid of the process waiting on the task")
    detail: dict[str, Any]
    created_at: datetime
    closed_at: datetime | None
    outcome: str

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.number}"

    @property
    def choices(self) -> list[str]:
        """What a decider may answer: the question's own choices, else the kind's decisions."""
        if self.kind == TaskKind.QUESTION:
            return [str(c) for c in self.detail.get("choices", [])]
        return sorted(d.value for d in DECISIONS[self.kind])

    @property
    def process(self) -> str:
        """The process that asked (recorded when the task opened)."""
        return str(self.detail.get("process", "on-model-changed"))


class TaskDecision(BaseModel):
    """One attempt to decide a task, accepted or refused (both are kept and audited)."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    id: int
    task_id: int
    actor: str
    decision: str = Field(description="a Decision, or one of a question's choices")
    comment: str
    accepted: bool
    refusal: str | None
    via: Literal["prefect-ui", "cli", "mlc"] | str
    at: datetime


class Answer(BaseModel):
    """What a person answered a process's question (flows/steps.py ask): the choice, or None
    when nobody answered by the deadline; who answered, verified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: int
    choice: str | None
    people: list[str]
    comment: str

    @classmethod
    def of(cls, task: HumanTask, decisions: list[TaskDecision]) -> Answer:
        if task.status != TaskStatus.ANSWERED:
            return cls(task_id=task.id, choice=None, people=[], comment=task.outcome)
        accepted = [d for d in decisions if d.accepted]
        choice = accepted[-1].decision
        given = [d for d in accepted if d.decision == choice]
        return cls(task_id=task.id, choice=choice, people=[d.actor for d in given],
                   comment="\n".join(d.comment for d in given if d.comment))
