"""Requests to start a process (a custom business event, or one process asking for another),
kept in the audit log: who asked — a verified person or the signed notification endpoint — for
which model and with what payload. Anyone who reaches Prefect can start a run with any
parameters, so a run names only its request's id and claims it here, once per process."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.registry.store import Registry

REQUESTED = "process.requested"
STARTED = "process.started"


class ProcessRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request: str
    model: str
    event: str
    requested_by: str
    payload: dict[str, Any]
    processes: list[str]
    at: datetime


def record_request(registry: Registry, *, actor: str, model: str, event: str,
                   payloads: dict[str, dict[str, Any]]) -> str:
    """Record that `actor` asked the processes in `payloads` (name → its checked payload) to
    run for `model`; returns the request's id."""
    request = str(uuid.uuid4())
    with registry.transaction() as session:
        registry.append_audit(session, actor=actor, action=REQUESTED, entity="model",
                              entity_id=model, model=model, reason=f"event {event}",
                              detail={"request": request, "event": event,
                                      "payloads": payloads})
    return request


def claim_request(registry: Registry, request: str, model: str, process: str) -> ProcessRequest:
    """The request `process` was started for, claimed: refused (InvalidInputError naming
    `event`) when it was never recorded, is for another model or process, or was claimed by
    this process before. The claim is written first, under the audit log's lock, and the check
    made after it in the same transaction, so of two racing runs one starts."""
    short = request[:64]
    with registry.transaction() as session:
        registry.append_audit(session, actor=process, action=STARTED, entity="model",
                              entity_id=model[:63], model=model[:63], reason=f"request {short}",
                              detail={"request": short, "process": process})
        found = [e for e in registry.audit_events_in(session, model[:63])
                 if e.detail.get("request") == short]
        asked = [e for e in found if e.action == REQUESTED]
        if not asked or process not in asked[0].detail.get("payloads", {}):
            raise InvalidInputError(f"event: no request '{short}' for {process} of {model} "
                                    "was recorded (send events with `mlc events emit`)")
        if sum(e.action == STARTED and e.actor == process for e in found) > 1:
            raise InvalidInputError(f"event: request '{short}' already started {process}")
        return ProcessRequest(
            request=short, model=model, event=asked[0].detail["event"],
            requested_by=asked[0].actor, payload=asked[0].detail["payloads"][process],
            processes=sorted(asked[0].detail["payloads"]), at=asked[0].at)
