"""What a run started from outside may ask for. Anyone who reaches Prefect can run a deployment
or emit an event with any parameters, so a parameter never names who acted, and what it asks is
checked: a retraining's trigger is one of a fixed set, and deploy-model never touches
production (that changes only through on-model-changed, `mlc rollback` or a verified manual
deploy through the control-plane API)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from mlc_tasks.errors import DeployRefusedError, InvalidInputError


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
