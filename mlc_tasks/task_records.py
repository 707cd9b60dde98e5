"""Human tasks: an approval, an error review or a governance change that a paused flow run
waits on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TaskKind(StrEnum):
    APPROVAL = "approval"
    REVIEW = "review"
    CHANGE = "change"  # a governance change of a model (mlc_tasks/governance.py)


class TaskStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RETRY = "retry"
    ABORTED = "aborted"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    RETRY = "retry"
    ABORT = "abort"


DECISIONS: dict[TaskKind, frozenset[Decision]] = {
    TaskKind.APPROVAL: frozenset({Decision.APPROVE, Decision.REJECT}),
    TaskKind.REVIEW: frozenset({Decision.RETRY, Decision.ABORT}),
    TaskKind.CHANGE: frozenset({Decision.APPROVE, Decision.REJECT}),
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


class TaskDecision(BaseModel):
    """One attempt to decide a task, accepted or refused (both are kept and audited)."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    id: int
    task_id: int
    actor: str
    decision: Decision
    comment: str
    accepted: bool
    refusal: str | None
    via: Literal["prefect-ui", "cli", "mlc"] | str
    at: datetime
