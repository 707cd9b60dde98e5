"""A model's governance fields — type, risk tier, owner, team (its `team` tag) and data
location — belong to the registry: set at the first registration, changed only on request.
Pure rules: what differs, which changes apply at once (raising the risk tier) and which wait
for the policy's model-risk group (everything else), and what the approvers read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.packages import ModelSpec, ModelType, RiskTier
from mlc_tasks.registry.records import ModelRecord

FIELDS = ("type", "risk_tier", "owner", "team", "data_location")
TEAM_TAG = "team"
RISK_ORDER = {RiskTier.LOW: 0, RiskTier.MEDIUM: 1, RiskTier.HIGH: 2}
OPTIONS = {"type": "--type", "risk_tier": "--risk-tier", "owner": "--owner", "team": "--team",
           "data_location": "--data-location"}
ENUMS = {"type": [t.value for t in ModelType], "risk_tier": [t.value for t in RiskTier]}
CHANGE_STEP = "change"  # the step of a change task (human_tasks.step)
CHANGE_REQUESTED = "mlc.model.change-requested"  # starts the model-change deployment


class Route(StrEnum):
    AT_ONCE = "at-once"  # stricter: in force immediately
    APPROVAL = "approval"  # looser, or another owner/team/type/location: model-risk decides


class FieldChange(BaseModel):
    """One governance field from its registered value to the one asked for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(description="one of " + ", ".join(FIELDS))
    old: str | None
    new: str | None


class ChangeOutcome(BaseModel):
    """What a change request did: fields applied at once, fields waiting in a change task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    applied: list[FieldChange] = Field(default_factory=list)
    pending: list[FieldChange] = Field(default_factory=list)
    change_id: int | None = Field(default=None, description="the change task, if one opened")
    groups: list[str] = Field(default_factory=list, description="who decides the change task")
    deadline: datetime | None = None
    started: bool = Field(default=False, description="the model-change run was asked for")


def registered_values(model: ModelRecord) -> dict[str, str | None]:
    return {"type": model.type, "risk_tier": model.risk_tier, "owner": model.owner,
            "team": model.tags.get(TEAM_TAG), "data_location": model.data_location}


def package_values(spec: ModelSpec) -> dict[str, str | None]:
    """A package's governance fields (its data location already resolved and confined)."""
    return {"type": spec.type.value, "risk_tier": spec.risk_tier.value, "owner": spec.owner,
            "team": spec.tags.get(TEAM_TAG), "data_location": spec.data_location}


def differences(registered: dict[str, str | None],
                given: dict[str, str | None]) -> list[FieldChange]:
    """The fields of `given` whose value is not the registered one, in FIELDS order."""
    return [FieldChange(field=f, old=registered[f], new=given[f])
            for f in FIELDS if f in given and given[f] != registered[f]]


def package_refusal(name: str, changed: list[FieldChange]) -> str:
    """Why a package that would change governance fields is refused, and how to change them."""
    fields = "; ".join(f"{c.field}: registered {_shown(c.old)}, package {_shown(c.new)}"
                       for c in changed)
    command = " ".join(f"{OPTIONS[c.field]} {c.new}" for c in changed if c.new is not None)
    how = (f", or request the change with `mlc model update {name} {command}` (raising the "
           "risk tier applies at once; every other change waits for the model-risk group)"
           if command else "")
    return (f"model '{name}': the package would change governance fields, which only a change "
            f"request may do ({fields}); nothing was registered. Submit the registered "
            f"values{how}")


def route(change: FieldChange) -> Route:
    """Raising the risk tier applies at once; anything else needs approval."""
    if change.field == "risk_tier" and change.old is not None and change.new is not None:
        if RISK_ORDER[RiskTier(change.new)] > RISK_ORDER[RiskTier(change.old)]:
            return Route.AT_ONCE
    return Route.APPROVAL


def split(changes: list[FieldChange]) -> tuple[list[FieldChange], list[FieldChange]]:
    """(applied at once, waiting for approval)."""
    return ([c for c in changes if route(c) == Route.AT_ONCE],
            [c for c in changes if route(c) == Route.APPROVAL])


def change_groups(configured: list[str], admin_group: str) -> list[str]:
    """Who decides a change task: the policy's governance groups, else the admins' group."""
    return list(configured) or [admin_group]


def still_applies(change: FieldChange, current: dict[str, str | None]) -> bool:
    """An approved change is applied only to a field still at the value it was asked from (a
    field raised in the meantime keeps its stricter value)."""
    return current[change.field] == change.old


def change_markdown(model: str, changes: list[FieldChange], requested_by: str,
                    groups: list[str], deadline: datetime | None, task_id: int) -> str:
    """The change task's form description."""
    rows = [f"| {c.field} | `{_shown(c.old)}` | `{_shown(c.new)}` |" for c in changes]
    by = f", by {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""
    return "\n".join([
        f"## Change the governance of {model}?", "",
        f"Requested by **{requested_by}**. Needs an approval from **{', '.join(groups)}**{by}.",
        "", "| field | registered | requested |", "|---|---|---|", *rows, "",
        "Until this change is approved the registered values stay in force (approval rules, "
        "owner, alert routing, data location).", "",
        f"Decide: `approve` or `reject` (a rejection needs a comment). CLI: `mlc approve "
        f"{task_id} --as YOU`. The requester may not approve their own change."])


def describe(changes: list[FieldChange]) -> str:
    return ", ".join(f"{c.field} {_shown(c.old)} → {_shown(c.new)}" for c in changes)


def _shown(value: str | None) -> str:
    return "(none)" if value is None else f"'{value}'"


def checked_values(given: dict[str, str]) -> dict[str, str]:
    """A change request's values, checked (the data location is checked by the caller against
    the data roots, mlc_tasks/locations.py); InvalidInputError names the field."""
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise InvalidInputError(f"{', '.join(unknown)}: not a governance field "
                                f"({', '.join(FIELDS)})")
    checked = {}
    for field, value in given.items():
        value = value.strip()
        if not value or len(value) > 255:
            raise InvalidInputError(f"{field}: give a value of 1 to 255 characters")
        if field in ENUMS and value not in ENUMS[field]:
            raise InvalidInputError(f"{field}: '{value}' is not one of "
                                    f"{', '.join(ENUMS[field])}")
        checked[field] = value
    return checked


def change_requested_event(model: str, change_id: int, actor: str) -> dict[str, Any]:
    """Starts the model-change deployment: only the change's id travels, its content stays in
    the registry."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": CHANGE_REQUESTED,
        "resource": {"prefect.resource.id": f"mlc.model.{model}",
                     "prefect.resource.name": model, "mlc.model": model},
        "related": [],
        "payload": {"model": model, "change_id": change_id, "requested_by": actor},
    }


def outcome_lines(outcome: ChangeOutcome) -> list[str]:
    """What a change request did, for a person."""
    if not outcome.applied and not outcome.pending:
        return [f"{outcome.model}: nothing to change (those are the registered values)"]
    lines = [f"{outcome.model}: {describe(outcome.applied)}: applied at once"] if (
        outcome.applied) else []
    if outcome.pending:
        by = f" by {outcome.deadline:%Y-%m-%d %H:%M} UTC" if outcome.deadline else ""
        lines.append(f"{outcome.model}: {describe(outcome.pending)}: change task "
                     f"{outcome.change_id} opened, waiting for {', '.join(outcome.groups)}{by}; "
                     "until it is approved the registered values stay in force")
        if not outcome.started:
            lines.append(f"warning: the model-change run did not start (is `mlc up` running?); "
                         f"start it with `prefect deployment run model-change/model-change "
                         f"-p model={outcome.model} -p change_id={outcome.change_id}`")
    return lines
