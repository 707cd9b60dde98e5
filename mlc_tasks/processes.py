"""A process's deployment, declared beside its flow (processes/, MLC_PROCESS_PATHS): its name,
schedule and the custom business events that start it, with the schema of their payload. `mlc
up` serves what is declared; the control-plane API and the notification endpoint check a
custom event against it before anything starts.

A custom event is named `mlc.custom.<name>`; whoever sends it is authenticated (a token, or
the notification endpoint's signature) and recorded, and the run it starts reads the request
from the registry — never who asked from its own parameters."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlc_tasks.errors import InvalidInputError, NotFoundError
from mlc_tasks.packages import describe_errors

CUSTOM_PREFIX = "mlc.custom."
EVENT_NAME = r"^[a-z][a-z0-9-]{0,62}$"
PROCESS_NAME = r"^[a-z][a-z0-9-]{0,62}$"


class EmptyPayload(BaseModel):
    """A custom event that carries nothing but its model."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Process(BaseModel):
    """What `mlc up` serves for a process module: `process = Process(...)` beside a flow of
    the same name."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=PROCESS_NAME, description="the flow's and deployment's name")
    description: str = Field(min_length=1, max_length=500)
    schedule: str | None = Field(
        default=None, description="a cron: one run per registered model (parameter `model`)")
    events: list[str] = Field(
        default_factory=list, description="custom events (mlc.custom.<name>) that start it")
    payload: type[BaseModel] = Field(
        default=EmptyPayload, description="the schema of those events' payload")
    tags: list[str] = Field(default_factory=list)

    @field_validator("events")
    @classmethod
    def _event_names(cls, names: list[str]) -> list[str]:
        return [event_name(n) for n in names]


def event_name(name: str) -> str:
    """A custom event's short name; `mlc.custom.` in front is allowed and dropped."""
    short = name.removeprefix(CUSTOM_PREFIX)
    if not re.fullmatch(EVENT_NAME, short):
        raise InvalidInputError(f"name: '{name[:80]}' is not a custom event name (lowercase "
                                "letters, digits and '-', at most 63; sent as mlc.custom.NAME)")
    return short


def expecting(processes: list[Process], name: str) -> list[Process]:
    """The processes a custom event starts; NotFoundError when none expects it."""
    short = event_name(name)
    found = [p for p in processes if short in p.events]
    if not found:
        known = sorted({e for p in processes for e in p.events})
        raise NotFoundError(f"name: no process expects {CUSTOM_PREFIX}{short} (expected: "
                            f"{', '.join(known) or 'none'})")
    return found


def checked_payload(process: Process, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the process declares it, defaults filled in; errors name the field."""
    try:
        return process.payload.model_validate(payload).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidInputError(f"payload for {process.name}: {describe_errors(exc)}"
                                .replace("field '", "field 'payload.")) from exc
