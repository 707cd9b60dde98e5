"""Human tasks in the inventory: open one per version and step, record every decision attempt
(accepted or refused) and close the task and move the version in the same transaction."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlc_tasks import approvals
from mlc_tasks.errors import NotFoundError
from mlc_tasks.lifecycle import TRANSITIONS, State
from mlc_tasks.people import canonical_id
from mlc_tasks.registry import governance
from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import HumanTaskRow, ModelRow, TaskDecisionRow, VersionRow
from mlc_tasks.task_records import (
    HumanTask,
    TaskDecision,
    TaskKind,
    TaskStatus,
)


class TaskBook:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # ---- opening and reading -----------------------------------------------------------

    def open_task(
        self, kind: TaskKind, version_id: str, step: str, *, groups: list[str], quorum: int,
        deadline: datetime | None, detail: dict[str, Any], flow_run_id: str | None,
        holder: str | None, actor: str,
    ) -> tuple[HumanTask, bool]:
        """Open a task, or take over the open one for the same version, kind and step (a
        rerun or a restarted flow): it then points at the new flow run. Returns (task, new)."""
        return self.registry.retry_on_conflict(lambda: self._open(
            kind, version_id, step, groups, quorum, deadline, detail, flow_run_id, holder, actor))

    def _open(self, kind: TaskKind, version_id: str, step: str, groups: list[str], quorum: int,
              deadline: datetime | None, detail: dict[str, Any], flow_run_id: str | None,
              holder: str | None, actor: str) -> tuple[HumanTask, bool]:
        key = f"{version_id}:{kind}:{step}"
        with self.registry.transaction() as session:
            row = session.execute(
                select(HumanTaskRow).where(HumanTaskRow.open_key == key).with_for_update()
            ).scalar_one_or_none()
            if row is not None:  # the run that waits now, and its link, replace the old
                row.flow_run_id, row.holder = flow_run_id, holder
                if detail.get("run_url"):
                    row.detail = {**row.detail, "run_url": detail["run_url"]}
                return self._record(session, row), False
            row = HumanTaskRow(open_key=key, kind=kind.value, status=TaskStatus.OPEN.value,
                               version_id=version_id, step=step, groups=groups, quorum=quorum,
                               deadline=deadline, flow_run_id=flow_run_id, holder=holder,
                               detail=detail, created_at=utcnow(), closed_at=None, outcome="")
            session.add(row)
            session.flush()
            task = self._record(session, row)
            self.registry.append_audit(
                session, actor=actor, action=f"task.{kind}.opened", entity="task",
                entity_id=str(row.id), model=task.model,
                reason=str(detail.get("error", "")),
                detail={"number": task.number, "step": step, "groups": groups, "quorum": quorum,
                        "deadline": deadline.isoformat() if deadline else None})
            return task, True

    def get(self, task_id: int) -> HumanTask:
        with self.registry.transaction() as session:
            return self._record(session, self._row(session, task_id))

    def list(self, status: TaskStatus | None = TaskStatus.OPEN,
             model: str | None = None) -> list[HumanTask]:
        with self.registry.transaction() as session:
            query = (select(HumanTaskRow)
                     .join(VersionRow, VersionRow.id == HumanTaskRow.version_id)
                     .join(ModelRow, ModelRow.id == VersionRow.model_id)
                     .order_by(HumanTaskRow.id))
            if status is not None:
                query = query.where(HumanTaskRow.status == status.value)
            if model is not None:
                query = query.where(ModelRow.name == model)
            return [self._record(session, r) for r in session.execute(query).scalars()]

    def decisions(self, task_id: int) -> list[TaskDecision]:
        with self.registry.transaction() as session:
            return self._decisions(session, task_id)

    # ---- deciding ----------------------------------------------------------------------

    def show_evidence(self, task_id: int, markdown: str) -> str:
        """Keep the evidence a decider is shown (the form's description) with the task, so
        every channel shows the same and a proof can name it; returns its sha256."""
        digest = hashlib.sha256(markdown.encode()).hexdigest()
        with self.registry.transaction() as session:
            row = self._row(session, task_id, lock=True)
            if row.detail.get("evidence_sha256") != digest:
                row.detail = {**row.detail, "evidence": markdown, "evidence_sha256": digest}
        return digest

    def attach_packet(self, task_id: int, sha256: str, url: str) -> HumanTask:
        """Keep the evidence packet published for the task (mlc_tasks/evidence_packet.py) with
        it, so the form, Slack and the Command Center link the same document."""
        with self.registry.transaction() as session:
            row = self._row(session, task_id, lock=True)
            if row.detail.get("packet_sha256") != sha256 or row.detail.get("packet_url") != url:
                row.detail = {**row.detail, "packet_sha256": sha256, "packet_url": url}
            return self._record(session, row)

    def refuse_unverified(self, task_id: int, claimed: str, decision: str, comment: str,
                          via: str, refusal: str) -> TaskDecision:
        """Record an attempt nobody proved: what was claimed, and why it does not count."""
        with self.registry.transaction() as session:
            row = self._row(session, task_id, lock=True)
            task = self._record(session, row)
            # the canonical spelling, so wrong codes count against one person however typed
            made = TaskDecisionRow(task_id=task_id, actor=canonical_id(claimed)[:255],
                                   decision=decision[:16],
                                   comment=comment, accepted=False, refusal=refusal, via=via,
                                   at=utcnow())
            session.add(made)
            session.flush()
            self.registry.append_audit(
                session, actor="unverified", action="task.decision_unverified", entity="task",
                entity_id=str(task_id), model=task.model, reason=refusal,
                detail={"number": task.number, "kind": task.kind.value, "claimed": claimed,
                        "decision": decision[:16], "via": via, "comment": comment})
            return TaskDecision.model_validate(made)

    def recent_refusals(self, claimed: str, refusal: str, window: timedelta) -> int:
        """How often an attempt claiming to be this person was refused for this reason lately
        (over every task: guessing one task's codes and then another's is still guessing)."""
        since = utcnow() - window
        with self.registry.transaction() as session:
            return int(session.execute(
                select(func.count()).select_from(TaskDecisionRow).where(
                    TaskDecisionRow.actor == claimed, TaskDecisionRow.refusal == refusal,
                    TaskDecisionRow.at >= since)).scalar_one())

    def decide(self, task_id: int, actor: str, decision: str, comment: str, via: str,
               members: set[str], evidence_sha256: str | None = None,
               packet_sha256: str | None = None) -> TaskDecision:
        """Record one attempt (with the sha256 of the form and of the evidence packet the
        decider was shown). A refused attempt (also one that comes after the task closed,
        e.g. a second after its deadline) is kept with its reason and changes nothing else; an
        accepted one may close the task (quorum reached, rejected, retry, abort) and move the
        version, in one transaction."""
        with self.registry.transaction() as session:
            row = self._row(session, task_id, lock=True)
            # the version next, before the audit head: every writer locks in this order
            submitter = session.execute(select(VersionRow.created_by).where(
                VersionRow.id == row.version_id).with_for_update()).scalar_one()
            if row.kind == TaskKind.CHANGE:  # its requester is its submitter
                submitter = governance.lock_for_decision(session, row)
            task = self._record(session, row)
            earlier = self._decisions(session, task_id)
            refused = (f"task {task_id} is already {task.status}"
                       + (f" ({task.outcome})" if task.outcome else "")
                       if task.status != TaskStatus.OPEN else
                       approvals.refusal(task, submitter, members, earlier, actor, decision,
                                         comment))
            made = TaskDecisionRow(task_id=task_id, actor=actor, decision=str(decision)[:16],
                                   comment=comment, accepted=refused is None, refusal=refused,
                                   via=via, at=utcnow())
            session.add(made)
            session.flush()
            self.registry.append_audit(
                session, actor=actor, action="task.decision" if refused is None
                else "task.decision_refused", entity="task", entity_id=str(task_id),
                model=task.model, reason=refused or comment, evidence_sha256=evidence_sha256,
                detail={"number": task.number, "kind": task.kind.value, "step": task.step,
                        "decision": str(decision), "via": via, "verified": True,
                        **({"packet_sha256": packet_sha256} if packet_sha256 else {})})
            if refused is None:
                self._apply(session, row, task, decision, actor,
                            earlier + [TaskDecision.model_validate(made)])
            return TaskDecision.model_validate(made)

    def _apply(self, session: Session, row: HumanTaskRow, task: HumanTask, decision: str,
               actor: str, decided: list[TaskDecision]) -> None:
        end = approvals.closing(task, decision, decided)
        if end is not None:
            self._close(session, row, end.status, end.outcome, actor, end.version_state)

    def expire(self, task_id: int, now: datetime | None = None) -> bool:
        """Close an open task whose deadline has passed: status expired, and an approval's
        version ends rejected with reason 'expired'. False if it is closed or not yet due."""
        now = now or utcnow()
        with self.registry.transaction() as session:
            row = self._row(session, task_id, lock=True)
            if row.status != TaskStatus.OPEN or row.deadline is None or row.deadline > now:
                return False
            session.execute(select(VersionRow.id).where(VersionRow.id == row.version_id)
                            .with_for_update())  # lock order: task, version, audit head
            self._close(session, row, TaskStatus.EXPIRED, "expired", approvals.SYSTEM_ACTOR,
                        approvals.expiry(self._record(session, row)))
            return True

    def cancel(self, task_id: int, reason: str, actor: str) -> None:
        """Close a task nobody needs to decide any more (e.g. the version is already past
        its step); the version is left as it is."""
        with self.registry.transaction() as session:
            row = self._row(session, task_id, lock=True)
            if row.status == TaskStatus.OPEN:
                self._close(session, row, TaskStatus.ABORTED, reason, actor, None)

    def _close(self, session: Session, row: HumanTaskRow, status: TaskStatus, outcome: str,
               actor: str, version_state: State | None) -> None:
        row.status, row.outcome, row.closed_at, row.open_key = (status.value, outcome, utcnow(),
                                                                None)
        task = self._record(session, row)
        self.registry.append_audit(
            session, actor=actor, action=f"task.{row.kind}.{status.value}", entity="task",
            entity_id=str(row.id), model=task.model, reason=outcome,
            detail={"number": task.number, "step": row.step})
        if row.kind == TaskKind.CHANGE:  # a change writes the model, never the version's state
            if status == TaskStatus.APPROVED:
                governance.apply_approved(self.registry, session, row, actor)
            return
        current = session.execute(select(VersionRow.state).where(
            VersionRow.id == row.version_id)).scalar_one()
        if version_state is not None and version_state in TRANSITIONS[State(current)]:
            self.registry.move_version(session, row.version_id, version_state, actor, outcome)

    # ---- rows --------------------------------------------------------------------------

    @staticmethod
    def _row(session: Session, task_id: int, lock: bool = False) -> HumanTaskRow:
        query = select(HumanTaskRow).where(HumanTaskRow.id == task_id)
        row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no human task {task_id} (see `mlc tasks`)")
        return row

    @staticmethod
    def _decisions(session: Session, task_id: int) -> list[TaskDecision]:
        rows = session.execute(select(TaskDecisionRow).where(TaskDecisionRow.task_id == task_id)
                               .order_by(TaskDecisionRow.id)).scalars()
        return [TaskDecision.model_validate(r) for r in rows]

    @staticmethod
    def _record(session: Session, row: HumanTaskRow) -> HumanTask:
        model, number = session.execute(
            select(ModelRow.name, VersionRow.number)
            .join(VersionRow, VersionRow.model_id == ModelRow.id)
            .where(VersionRow.id == row.version_id)).one()
        fields = {c: getattr(row, c) for c in HumanTask.model_fields
                  if c not in ("model", "number")}
        return HumanTask.model_validate({**fields, "model": model, "number": number})
