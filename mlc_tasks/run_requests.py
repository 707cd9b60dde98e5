"""What a run started from outside may ask for. Anyone who reaches Prefect can run a deployment
or emit an event with any parameters, so a parameter never names who acted, and what it asks is
checked: a retraining's trigger is one of a fixed set, and deploy-model never touches
production (that changes only through on-model-changed, `mlc rollback` or a verified manual
deploy through the control-plane API)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mlc_tasks.errors import DeployRefusedError, InvalidInputError

if TYPE_CHECKING:
    from mlc_tasks.audit import AuditEvent
    from mlc_tasks.registry import Registry


class Trigger(StrEnum):
    """What asked for a retraining (recorded in its audit detail; the actor is the flow)."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    NEW_DATA = "new data"
    NOTIFICATION = "notification"


def checked_trigger(value: str) -> Trigger:
    try:
        return Trigger(value)
    except ValueError as exc:
        allowed = ", ".join(f"'{t.value}'" for t in Trigger)
        raise InvalidInputError(f"trigger: '{value[:100]}' is not one of {allowed}") from exc


# the built-in policy's production stage (policy.DeploymentStages), for callers given none
BUILT_IN_PROD: Mapping[str, str] = MappingProxyType({"env": "prod"})


def is_production(tags: Mapping[str, str], prod: Mapping[str, str]) -> bool:
    """Whether runtime tags carry all the policy's production tags (deployment.prod)."""
    return all(tags.get(k) == v for k, v in prod.items())


def refuse_production(tags: dict[str, str], prod: dict[str, str], field: str) -> None:
    """Refuse a deploy whose requested tags, or chosen runtime's tags (`field` says which),
    carry all the policy's production tags."""
    if is_production(tags, prod):
        raise DeployRefusedError(
            f"{field}: {_tags(tags)} is production ({_tags(prod)}); deploy-model does not "
            "deploy there: production changes only through on-model-changed, `mlc rollback` "
            "or a verified manual deploy through the control-plane API")


def _tags(tags: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items())) or "(none)"


# ---- a person's manual deploy or rollback ---------------------------------------------------
# Production changes by hand only at a person's request: the control-plane API records who
# asked for what (`deploy.requested` or `rollback.requested`, its actor the verified principal,
# under a fresh request id) and runs deploy-model or rollback-model with that id as `request`.
# The flow takes a request once, and acts as that person for exactly what they asked: an
# unknown id, one already taken, one older than REQUEST_TTL (the API runs the flow at once; a
# request left by a run that never started must not wait for someone to replay it), or
# parameters that differ from the request (another model, version, tags, stage or reason) are
# refused. The id is no secret (the run's parameters show it); what it grants is only what
# the person asked, once, now.

REQUEST_TTL = timedelta(minutes=10)


class RequestKind(StrEnum):
    """What a person asked the control-plane API to do by hand; its audit actions."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"

    @property
    def requested(self) -> str:
        return f"{self.value}.requested"

    @property
    def taken(self) -> str:
        return f"{self.value}.request_taken"

    @property
    def refused(self) -> str:
        return f"{self.value}.refused"


def record_request(registry: Registry, kind: RequestKind, model: str, actor: str,
                   asked: dict[str, Any]) -> str:
    """Who asked for what, on the record under a fresh request id (returned); the API calls
    this for the verified caller before it runs the flow."""
    request = str(uuid.uuid4())
    with registry.transaction() as session:
        registry.append_audit(session, actor=actor, action=kind.requested, entity="model",
                              entity_id=model, model=model, reason=str(asked.get("reason", "")),
                              detail={"request": request, **asked})
    return request


def take_request(registry: Registry, kind: RequestKind, request: str, model: str,
                 asked: dict[str, Any], taker: str, flow_run: str,
                 now: datetime | None = None) -> str:
    """The person who asked `kind` of `model` with exactly `asked` under `request`, who the
    flow then acts as; the request is marked taken (by `taker`, in `flow_run`). Read and marked
    in one transaction with the audit log's head locked: two runs given one id queue, and the
    second finds it taken. A refusal (DeployRefusedError) writes nothing."""
    from sqlalchemy import select

    # here, not at the top: the registry imports this module
    from mlc_tasks.audit import AuditEvent
    from mlc_tasks.registry.store import utcnow
    from mlc_tasks.registry.tables import AuditHeadRow, AuditRow

    with registry.transaction() as session:
        session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update())
        rows = session.execute(select(AuditRow).where(AuditRow.action.in_(
            (kind.requested, kind.taken))).order_by(AuditRow.seq)).scalars()
        events = [AuditEvent.model_validate(r, from_attributes=True) for r in rows]
        requester = checked_request(events, kind, request, model, asked, now or utcnow())
        registry.append_audit(
            session, actor=taker, action=kind.taken, entity="model", entity_id=model,
            model=model, reason=f"{kind.value} requested by {requester}",
            detail={"request": request, "requested_by": requester, "flow_run": flow_run})
    return requester


def checked_request(events: list[AuditEvent], kind: RequestKind, request: str, model: str,
                    asked: dict[str, Any], now: datetime) -> str:
    """Who recorded `request` (among `events`, the requests and takings of this kind), if it
    asked `kind` of `model` with exactly `asked`, within REQUEST_TTL before `now` (naive UTC),
    and no run took it before; else a DeployRefusedError naming `request`."""
    shown = f"'{request[:64]}'"
    found = next((e for e in events if e.action == kind.requested
                  and e.detail.get("request") == request), None)
    if found is None:
        raise DeployRefusedError(f"request: no {kind.value} was requested as {shown} (a person "
                                 f"asks through the control-plane API: `mlc {kind.value}`)")
    if any(e.action == kind.taken and e.detail.get("request") == request for e in events):
        raise DeployRefusedError(f"request: {kind.value} request {shown} was already taken "
                                 "by a run; each request is carried out once")
    if now - found.at > REQUEST_TTL:
        raise DeployRefusedError(f"request: {kind.value} request {shown} of {found.at:%H:%M:%S} "
                                 f"UTC has expired (a request is carried out within "
                                 f"{REQUEST_TTL.seconds // 60} minutes); ask again")
    _refuse_other_ask(found, shown, kind, model, asked)
    return found.actor


def _refuse_other_ask(found: AuditEvent, shown: str, kind: RequestKind, model: str,
                      asked: dict[str, Any]) -> None:
    """A run's parameters must be what the person asked: the model, and every field."""
    if found.model != model:
        raise DeployRefusedError(f"request: {shown} asked to {kind.value} {found.model}, "
                                 f"not {model[:63]}")
    for field, value in asked.items():
        if found.detail.get(field) != value:
            raise DeployRefusedError(f"request: {shown} asked for {field} "
                                     f"{_shown(found.detail.get(field))}, not {_shown(value)}")


def refuse_unrequested(tags: dict[str, str], prod: dict[str, str], field: str, flow: str,
                       command: str) -> None:
    """Refuse a run without a request whose stage (`field`: its tags, or the chosen runtime's)
    is production: `flow` goes there only at a person's request."""
    if is_production(tags, prod):
        raise DeployRefusedError(
            f"{field}: {_tags(tags)} is production ({_tags(prod)}); {flow} goes there only "
            f"at a person's request, which the control-plane API records (`{command}`) and "
            "passes as `request`")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}…"
