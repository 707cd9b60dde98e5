"""Custom business events on the control-plane API: `POST /v1/events` starts every process
that expects the event (flows/catalog.py), for the authenticated caller, who is recorded as the
one who asked; the payload is checked against each process's declared schema first.

    POST /v1/events  {"name": "quarterly-review", "model": "credit-risk", "payload": {...}}
                     200 {event, model, request, processes}; 400 a bad name or payload (the
                     field named), 401/403, 404 no such model or no process expects it"""


# no `from __future__ import annotations`: FastAPI must see the dependency (a closure)
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from deployments.api_auth import allowed
from flows.catalog import load_processes
from mlc_tasks import events
from mlc_tasks.business_events import Sent, send_custom_event
from mlc_tasks.packages import NAME_PATTERN
from mlc_tasks.people import Principal, Scope
from mlc_tasks.processes import EVENT_NAME
from mlc_tasks.resources import Resources

MAX_PAYLOAD_BYTES = 16 * 1024


class EventBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(max_length=80, description="the custom event, e.g. quarterly-review "
                      f"(sent as mlc.custom.NAME; {EVENT_NAME})")
    model: str = Field(pattern=NAME_PATTERN)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("payload")
    @classmethod
    def _small(cls, payload: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"over {MAX_PAYLOAD_BYTES} bytes of JSON")
        return payload


def events_router(ctx: Resources) -> APIRouter:
    router = APIRouter(prefix="/v1")
    operator = allowed(ctx, Scope.OPERATE)

    @router.post("/events")
    def emit(body: EventBody, principal: Annotated[Principal, Depends(operator)]) -> Sent:
        """Start the processes that expect this custom event, as the caller."""
        declared = [d.process for d in load_processes(ctx.settings.process_folders())]
        return send_custom_event(ctx.registry, declared, actor=principal.id, name=body.name,
                                 model=body.model, payload=body.payload,
                                 emit=lambda e: events.emit(e, ctx.prefect_api_url()))

    return router
