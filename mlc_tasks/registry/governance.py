"""Governance changes in the inventory: a stricter value (a higher risk tier) is written at
once; any other change is recorded as a change task (a human task of kind `change` on the
model's latest version, its content in the task's detail) and written only when the task is
approved, in the transaction that closes it. One change waits per model at a time: a second
request is refused until the first is decided (replacing it would change what its approvers
are looking at)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlc_tasks import governance
from mlc_tasks.errors import ChangePendingError, InvalidInputError, NotFoundError
from mlc_tasks.governance import ChangeOutcome, FieldChange
from mlc_tasks.registry.records import ModelRecord
from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import HumanTaskRow, ModelRow, VersionRow
from mlc_tasks.task_records import TaskKind, TaskStatus

REQUESTER_ROLE = "requested the change to"  # approvals.refusal: "<who> requested … <ref>"


class ChangeRecord(BaseModel):
    """A governance change as the registry holds it: the content comes from here only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int  # the change task's id
    model: str
    version_id: str
    status: TaskStatus
    changes: list[FieldChange]
    requested_by: str
    groups: list[str]
    deadline: datetime | None
    flow_run_id: str | None
    outcome: str


class GovernanceBook:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def request(self, name: str, given: dict[str, str | None], actor: str, *,
                groups: list[str], deadline: timedelta) -> ChangeOutcome:
        """Apply what is stricter at once and open a change task for the rest; a field given
        at its registered value is no change. ChangePendingError while another change waits."""
        if not groups:
            raise InvalidInputError("a change task needs a group to decide it")
        with self.registry.transaction() as session:
            model = self._locked_model(session, name)
            asked = governance.differences(_values(model), given)
            at_once, pending = governance.split(asked)
            if pending:
                self._refuse_second(session, model)
            if at_once:
                write(self.registry, session, model, at_once, actor, "stricter: in force at once",
                      None)
            if not pending:
                return ChangeOutcome(model=name, applied=at_once)
            row = self._open(session, model, pending, actor, groups, utcnow() + deadline)
            return ChangeOutcome(model=name, applied=at_once, pending=pending, change_id=row.id,
                                 groups=groups, deadline=row.deadline)

    def change(self, change_id: int) -> ChangeRecord:
        with self.registry.transaction() as session:
            row = session.get(HumanTaskRow, change_id)
            if row is None or row.kind != TaskKind.CHANGE:
                raise NotFoundError(f"no change {change_id} (see `mlc tasks --all`)")
            return _record(session, row)

    def open_change(self, name: str) -> ChangeRecord | None:
        """The model's change waiting for approval, if any."""
        with self.registry.transaction() as session:
            row = _open_row(session, self._model(session, name).id)
            return _record(session, row) if row else None

    # ---- writing -------------------------------------------------------------------------

    def _open(self, session: Session, model: ModelRow, pending: list[FieldChange], actor: str,
              groups: list[str], deadline: datetime) -> HumanTaskRow:
        version_id, number = _latest_version(session, model.id)
        key = f"{version_id}:{TaskKind.CHANGE}:{governance.CHANGE_STEP}"  # as TaskBook opens
        changes = [c.model_dump() for c in pending]
        row = HumanTaskRow(
            open_key=key, kind=TaskKind.CHANGE.value, status=TaskStatus.OPEN.value,
            version_id=version_id, step=governance.CHANGE_STEP, groups=groups, quorum=1,
            deadline=deadline, flow_run_id=None, holder=None, created_at=utcnow(),
            closed_at=None, outcome="", detail={
                "requested_by": actor, "changes": changes,
                "change": governance.describe(pending), "excluded": {actor: REQUESTER_ROLE}})
        session.add(row)
        session.flush()
        self.registry.append_audit(
            session, actor=actor, action="model.change_requested", entity="model",
            entity_id=model.name, model=model.name, reason=governance.describe(pending),
            detail={"change": row.id, "changes": changes, "groups": groups})
        self.registry.append_audit(
            session, actor=actor, action=f"task.{TaskKind.CHANGE}.opened", entity="task",
            entity_id=str(row.id), model=model.name, reason=governance.describe(pending),
            detail={"number": number, "step": governance.CHANGE_STEP, "groups": groups,
                    "quorum": 1, "deadline": deadline.isoformat()})
        return row

    @staticmethod
    def _refuse_second(session: Session, model: ModelRow) -> None:
        waiting = _open_row(session, model.id)
        if waiting is not None:
            raise ChangePendingError(
                f"model '{model.name}' has change {waiting.id} waiting for "
                f"{', '.join(waiting.groups)} ({waiting.detail.get('change', '')}); it is "
                f"decided first: `mlc approve {waiting.id}` or `mlc reject {waiting.id}`")

    def _locked_model(self, session: Session, name: str) -> ModelRow:
        """The model row under its lock, its latest version's row locked first: the order
        every writer keeps (task, version, model, audit head), so PostgreSQL never finds two
        writers each waiting for the other."""
        model_id = self._model(session, name).id
        version_id, _ = _latest_version(session, model_id)
        session.execute(select(VersionRow.id).where(VersionRow.id == version_id)
                        .with_for_update())
        return session.execute(select(ModelRow).where(ModelRow.id == model_id)
                               .with_for_update()).scalar_one()

    @staticmethod
    def _model(session: Session, name: str) -> ModelRow:
        row = session.execute(select(ModelRow).where(ModelRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no model named '{name}'")
        return row


# ---- what TaskBook calls when it decides a change task -----------------------------------


def lock_for_decision(session: Session, row: HumanTaskRow) -> str:
    """Lock the model a change task writes when approved (after its task and version, before
    the audit head) and return who requested the change: they may not approve it."""
    session.execute(select(ModelRow.id).join(VersionRow, VersionRow.model_id == ModelRow.id)
                    .where(VersionRow.id == row.version_id).with_for_update(of=ModelRow))
    return str(row.detail.get("requested_by", ""))


def apply_approved(registry: Registry, session: Session, row: HumanTaskRow,
                   actor: str) -> None:
    """Write an approved change, in the transaction that closes its task. A field no longer at
    the value the change was asked from (raised since) keeps its value."""
    model = session.execute(
        select(ModelRow).join(VersionRow, VersionRow.model_id == ModelRow.id)
        .where(VersionRow.id == row.version_id).with_for_update(of=ModelRow)).scalar_one()
    current = _values(model)
    changes = [FieldChange.model_validate(c) for c in row.detail.get("changes", [])]
    still = [c for c in changes if governance.still_applies(c, current)]
    skipped = [c.field for c in changes if c not in still]
    reason = f"change {row.id} approved" + (
        f"; kept {', '.join(skipped)}: changed since the request" if skipped else "")
    if still:
        write(registry, session, model, still, actor, reason, row.id)


def write(registry: Registry, session: Session, model: ModelRow, changes: list[FieldChange],
          actor: str, reason: str, change_id: int | None) -> None:
    for change in changes:
        if change.field == governance.TEAM_TAG:
            tags = {k: v for k, v in model.tags.items() if k != governance.TEAM_TAG}
            model.tags = tags | ({governance.TEAM_TAG: change.new} if change.new else {})
        else:
            setattr(model, change.field, change.new)
    detail: dict[str, Any] = {c.field: c.new for c in changes}
    registry.append_audit(
        session, actor=actor, action="model.updated", entity="model", entity_id=model.name,
        model=model.name, reason=reason,
        detail={**detail, "from": {c.field: c.old for c in changes}, "change": change_id})


# ---- rows ----------------------------------------------------------------------------------


def _values(model: ModelRow) -> dict[str, str | None]:
    return governance.registered_values(ModelRecord.model_validate(model))


def _latest_version(session: Session, model_id: int) -> tuple[str, int]:
    number = session.execute(select(func.max(VersionRow.number))
                             .where(VersionRow.model_id == model_id)).scalar_one()
    version_id = session.execute(select(VersionRow.id).where(
        VersionRow.model_id == model_id, VersionRow.number == number)).scalar_one()
    return version_id, number


def _open_row(session: Session, model_id: int) -> HumanTaskRow | None:
    return session.execute(
        select(HumanTaskRow).join(VersionRow, VersionRow.id == HumanTaskRow.version_id)
        .where(VersionRow.model_id == model_id, HumanTaskRow.kind == TaskKind.CHANGE.value,
               HumanTaskRow.status == TaskStatus.OPEN.value)
        .order_by(HumanTaskRow.id).limit(1)).scalar_one_or_none()


def _record(session: Session, row: HumanTaskRow) -> ChangeRecord:
    model = session.execute(select(ModelRow.name).join(
        VersionRow, VersionRow.model_id == ModelRow.id).where(
        VersionRow.id == row.version_id)).scalar_one()
    return ChangeRecord(
        id=row.id, model=model, version_id=row.version_id, status=TaskStatus(row.status),
        changes=[FieldChange.model_validate(c) for c in row.detail.get("changes", [])],
        requested_by=str(row.detail.get("requested_by", "")), groups=list(row.groups),
        deadline=row.deadline, flow_run_id=row.flow_run_id, outcome=row.outcome)
