"""The policy file (YAML, validated): alert routing and business thresholds. Other processes
add their sections here (approvals, schedules)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlc_tasks.alert_records import Severity
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.packages import METRICS, ModelType, describe_errors


class RouteMatch(BaseModel):
    """Every given list must contain the alert's value; an empty match matches all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: list[Severity] = Field(default_factory=list)
    model_type: list[ModelType] = Field(default_factory=list)
    team: list[str] = Field(default_factory=list)


class Route(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    match: RouteMatch = Field(default_factory=RouteMatch)
    channels: list[str] = Field(min_length=1)


class AlertPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    routes: list[Route] | None = Field(
        default=None, description="None: every configured channel gets every alert.")


class Threshold(BaseModel):
    """A business threshold on one metric: at least `min` or at most `max`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of 'min' and 'max'")
        return self


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    thresholds: dict[ModelType, dict[str, Threshold]] = Field(
        default_factory=dict, description="per model type: metric → bound")

    @model_validator(mode="after")
    def _known_metrics(self) -> Policy:
        for model_type, bounds in self.thresholds.items():
            unknown = sorted(set(bounds) - METRICS[model_type])
            if unknown:
                raise ValueError(f"thresholds.{model_type}: unknown metrics {unknown}; known: "
                                 f"{', '.join(sorted(METRICS[model_type]))}")
        return self

    def thresholds_for(self, model_type: str) -> dict[str, Threshold]:
        return dict(self.thresholds.get(ModelType(model_type), {}))


def load_policy(path: Path | None) -> Policy:
    """The policy at `path`, or the default policy when there is no file."""
    if path is None:
        return Policy()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{path}: cannot read the policy: {exc}") from exc
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInputError(f"{path}: {describe_errors(exc)}") from exc


def route_alert(
    policy: AlertPolicy, severity: Severity, model_type: str | None, team: str | None,
    configured: list[str],
) -> list[str]:
    """The channels an alert goes to: the union of every matching route's channels, in the
    order first named; without routes, every configured channel."""
    if policy.routes is None:
        return list(configured)
    chosen: list[str] = []
    for route in policy.routes:
        if _matches(route.match, severity, model_type, team):
            chosen += [c for c in route.channels if c not in chosen]
    return chosen


def _matches(match: RouteMatch, severity: Severity, model_type: str | None,
             team: str | None) -> bool:
    return ((not match.severity or severity in match.severity)
            and (not match.model_type or model_type in match.model_type)
            and (not match.team or team in match.team))
