"""Sending a custom business event: check it against the processes that expect it, record who
sent it and the payload each process will read, then emit the Prefect event whose trigger starts
them. Used by the control-plane API (`mlc events emit`), the signed notification endpoint and a
process asking for another (flows/steps.py request_process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlc_tasks import events
from mlc_tasks.errors import TransientError
from mlc_tasks.processes import Process, checked_payload, event_name, expecting
from mlc_tasks.registry.requests import record_request
from mlc_tasks.registry.store import Registry


class Sent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str
    model: str
    request: str
    processes: list[str]


def send_custom_event(registry: Registry, processes: list[Process], *, actor: str, name: str,
                      model: str, payload: dict[str, Any],
                      emit: Callable[[dict[str, Any]], None]) -> Sent:
    """Check (the name, the model, the payload against each expecting process's schema; errors
    name the field), record, emit. Nothing is recorded when a check fails; a failed emit is
    reported with the recorded request's id."""
    short = event_name(name)
    found = expecting(processes, short)
    registry.get_model(model)  # NotFoundError for an unknown model
    payloads = {p.name: checked_payload(p, payload) for p in found}
    request = record_request(registry, actor=actor, model=model, event=short, payloads=payloads)
    try:
        emit(events.custom_event(short, model, request))
    except TransientError as exc:
        raise TransientError(f"event request {request} is recorded, but no run started: "
                             f"{exc}") from exc
    return Sent(event=short, model=model, request=request, processes=sorted(payloads))
