"""The policy file (YAML, validated): alert routing, business thresholds, approver groups and
approval rules per model type and risk tier, and the runtime tags of each deployment stage."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from mlc_tasks.alert_records import Severity
from mlc_tasks.comparison import ComparisonSettings
from mlc_tasks.drift import DriftSettings
from mlc_tasks.errors import InvalidInputError, PolicyError
from mlc_tasks.fairness import FairnessSettings
from mlc_tasks.packages import METRICS, ModelType, RiskTier
from mlc_tasks.people import Person, canonical_id

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """`90s`, `15m`, `48h`, `2d` (or a timedelta) → timedelta."""
    if isinstance(value, timedelta):
        return value
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(value))
    if not found or float(found[1]) <= 0:
        raise ValueError(f"'{value}' is not a duration such as 90s, 15m, 48h or 2d")
    return timedelta(seconds=float(found[1]) * UNITS[found[2]])


Duration = Annotated[timedelta, BeforeValidator(parse_duration),
                     PlainSerializer(lambda d: f"{d.total_seconds():g}s")]


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


class ApprovalMatch(BaseModel):
    """Every given list must contain the model's value; an empty match matches all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_type: list[ModelType] = Field(default_factory=list)
    risk_tier: list[RiskTier] = Field(default_factory=list)

    def matches(self, model_type: str, risk_tier: str) -> bool:
        return ((not self.model_type or model_type in self.model_type)
                and (not self.risk_tier or risk_tier in self.risk_tier))


Excluded = Literal["submitter", "owner"]


class ApprovalRule(BaseModel):
    """Who must approve a version before production: `quorum` distinct members of `groups`
    within `deadline`, never one of `exclude`; or nobody, when `auto_approve` is true."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: ApprovalMatch = Field(default_factory=ApprovalMatch)
    auto_approve: bool = False
    groups: list[str] = Field(default_factory=list)
    quorum: int = Field(default=1, ge=1)
    deadline: Duration = timedelta(hours=72)
    exclude: list[Excluded] = Field(
        default_factory=lambda: ["submitter"], description="who may not approve: the "
        "version's submitter (always), and the model's owner when named")

    @model_validator(mode="after")
    def _approvers(self) -> ApprovalRule:
        if not self.auto_approve and not self.groups:
            raise ValueError("name the approver 'groups', or set 'auto_approve: true'")
        return self


class DeploymentStages(BaseModel):
    """The runtime tags each stage deploys to: QA first, then production."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    qa: dict[str, str] = Field(default_factory=lambda: {"env": "qa"}, min_length=1)
    prod: dict[str, str] = Field(default_factory=lambda: {"env": "prod"}, min_length=1)


class ReviewPolicy(BaseModel):
    """Who reviews a failed step (any member of the groups; with none named, the
    installation's admins) and by when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: list[str] = Field(default_factory=list)
    deadline: Duration = timedelta(hours=72)


class MonitoringPolicy(BaseModel):
    """How the drift, performance and fairness monitor judges a window of recent data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_days: int = Field(default=7, ge=1, le=366)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    fairness: FairnessSettings = Field(default_factory=FairnessSettings)
    performance_tolerance: float = Field(
        default=0.1, gt=0, lt=1, description="a metric worse than the version's own test by "
        "more than this share of it is a breach")
    min_scoring_rows: int = Field(
        default=200, ge=1, description="fewer captured scoring inputs than this: drift is "
        "measured on the labelled rows' inputs instead")
    report_sample_rows: int = Field(default=20_000, ge=1000,
                                    description="rows per side in the Evidently report")


class Schedules(BaseModel):
    """When the scheduled processes run (cron, UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily_backtest: str = Field(default="0 6 * * *", pattern=r"^\S+( \S+){4}$",
                                description="every morning at 06:00 UTC by default")
    monitor: str = Field(default="30 6 * * *", pattern=r"^\S+( \S+){4}$",
                         description="drift, performance and fairness, after the backtest")


class RetrainingMatch(BaseModel):
    """Every given list must contain the model's value; an empty match matches all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: list[str] = Field(default_factory=list)
    model_type: list[ModelType] = Field(default_factory=list)
    risk_tier: list[RiskTier] = Field(default_factory=list)

    def matches(self, name: str, model_type: str, risk_tier: str) -> bool:
        return ((not self.model or name in self.model)
                and ApprovalMatch(model_type=self.model_type, risk_tier=self.risk_tier)
                .matches(model_type, risk_tier))


class RetrainingRule(BaseModel):
    """When a model is retrained, how its challenger is judged against the champion, and how
    the change is watched once promoted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: RetrainingMatch = Field(default_factory=RetrainingMatch)
    schedule: str | None = Field(default=None, pattern=r"^\S+( \S+){4}$",
                                 description="cron (UTC) of scheduled retraining; none: never")
    on_new_data: Literal["retrain", "backtest", "nothing"] = Field(
        default="retrain", description="what new labelled data in the data location starts")
    window_days: int = Field(default=30, ge=1, le=3660, description="days of the data location "
                             "a retraining without a named file trains on")
    holdout: float = Field(default=0.3, gt=0.05, lt=0.9,
                           description="share of the new rows kept to compare the two models")
    comparison: ComparisonSettings = Field(default_factory=ComparisonSettings)
    grace_period: Duration = Field(default=timedelta(days=7), description="the replaced "
                                   "champion stays ready this long, then is retired")
    auto_rollback: bool = Field(default=False, description="roll back to the previous champion "
                                "on a critical breach within the grace period")
    critical: dict[str, Threshold] = Field(
        default_factory=dict, description="backtest or fairness metric → the bound whose breach "
        "is critical (rolls back when auto_rollback is on)")


class SensorPolicy(BaseModel):
    """How often the data sensor looks, and how long a file must stay unchanged to be read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Duration = timedelta(seconds=15)
    settle: Duration = timedelta(seconds=10)


class GovernancePolicy(BaseModel):
    """Who approves a change of a model's governance fields (a lower risk tier, another type,
    owner, team or data location; a higher tier applies at once) and by when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: list[str] = Field(
        default_factory=list, description="none named: the installation's admins "
        "(MLC_ADMIN_GROUP)")
    deadline: Duration = timedelta(hours=72)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    thresholds: dict[ModelType, dict[str, Threshold]] = Field(
        default_factory=dict, description="per model type: metric → bound")
    people: list[Person] = Field(
        default_factory=list, description="everyone who may decide, each once, with groups")
    approvals: list[ApprovalRule] = Field(
        default_factory=list, description="the first rule that matches a model applies; none "
        "matching: no approval is possible")
    reviews: ReviewPolicy = Field(default_factory=ReviewPolicy)
    schedules: Schedules = Field(default_factory=Schedules)
    monitoring: MonitoringPolicy = Field(default_factory=MonitoringPolicy)
    deployment: DeploymentStages = Field(default_factory=DeploymentStages)
    retraining: list[RetrainingRule] = Field(
        default_factory=list, description="the first rule that matches a model applies; none: "
        "the defaults (retrain on new data, no schedule, no automatic rollback)")
    sensor: SensorPolicy = Field(default_factory=SensorPolicy)
    governance: GovernancePolicy = Field(default_factory=GovernancePolicy)

    @model_validator(mode="after")
    def _known_metrics(self) -> Policy:
        for model_type, bounds in self.thresholds.items():
            unknown = sorted(set(bounds) - METRICS[model_type])
            if unknown:
                raise ValueError(f"thresholds.{model_type}: unknown metrics {unknown}; known: "
                                 f"{', '.join(sorted(METRICS[model_type]))}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_group_lists(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "groups" in raw:
            raise ValueError("groups: name each person once under 'people' (id, name, "
                             "groups), not in group lists")
        return raw

    @model_validator(mode="after")
    def _people_once(self) -> Policy:
        seen: dict[str, int] = {}
        for index, person in enumerate(self.people):
            if person.id in seen:
                raise ValueError(f"people.{index}.id: '{person.id}' is the same person as "
                                 f"people.{seen[person.id]} (ids compare without case and "
                                 "after Unicode normalisation)")
            seen[person.id] = index
        return self

    @property
    def groups(self) -> dict[str, list[str]]:
        """Each group named by someone → its members' canonical ids."""
        found: dict[str, list[str]] = {}
        for person in self.people:
            for group in person.groups:
                found.setdefault(group, []).append(person.id)
        return found

    @model_validator(mode="after")
    def _known_groups(self) -> Policy:
        for index, rule in enumerate(self.approvals):
            unknown = [g for g in rule.groups if g not in self.groups]
            if unknown:
                raise ValueError(f"approvals.{index}.groups: {unknown}: nobody under 'people' "
                                 "is in it")
            members = self.members(rule.groups)
            if not rule.auto_approve and len(members) < rule.quorum:
                raise ValueError(f"approvals.{index}.quorum: {rule.quorum} approvals needed but "
                                 f"the groups have {len(members)} member(s)")
        unknown = [g for g in self.reviews.groups if g not in self.groups]
        if unknown:
            raise ValueError(f"reviews.groups: {unknown}: nobody under 'people' is in it")
        return self

    def thresholds_for(self, model_type: str) -> dict[str, Threshold]:
        return dict(self.thresholds.get(ModelType(model_type), {}))

    def approval_rule(self, model_type: str, risk_tier: str) -> ApprovalRule:
        """The first approval rule matching the model; none matching is a policy gap."""
        for rule in self.approvals:
            if rule.match.matches(model_type, risk_tier):
                return rule
        raise PolicyError(f"the policy has no approval rule for a {risk_tier}-risk "
                          f"{model_type} model; add one under 'approvals'")

    def retraining_for(self, name: str, model_type: str, risk_tier: str) -> RetrainingRule:
        for rule in self.retraining:
            if rule.match.matches(name, model_type, risk_tier):
                return rule
        return RetrainingRule()

    def members(self, groups: list[str]) -> set[str]:
        """The canonical ids of everyone in any of the groups."""
        return {p.id for p in self.people if set(p.groups) & set(groups)}

    def person(self, name: str) -> Person | None:
        wanted = canonical_id(name)
        return next((p for p in self.people if p.id == wanted), None)

    @model_validator(mode="after")
    def _known_governance_groups(self) -> Policy:
        unknown = [g for g in self.governance.groups if g not in self.groups]
        if unknown:
            raise ValueError(f"governance.groups: {unknown}: nobody under 'people' is in it")
        return self


def load_policy(path: Path | None) -> Policy:
    """The policy at `path`, or the default policy when there is no file. Errors name the line
    and the field."""
    if path is None:
        return Policy()
    try:
        text = path.read_text()
        raw = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{path}: cannot read the policy: {exc}") from exc
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInputError(f"{path}: {describe_policy_errors(exc, text)}") from exc


def describe_policy_errors(exc: ValidationError, text: str) -> str:
    parts = []
    for err in exc.errors():
        loc: list[Any] = [p for p in err["loc"] if not str(p).startswith("function-")]
        msg = err["msg"].removeprefix("Value error, ")
        # checks across fields name the field they found wrong, below where they run
        cross_field = re.match(r"([\w.-]+): (.*)", msg)
        if cross_field:
            loc += [int(p) if p.isdigit() else p for p in cross_field[1].split(".")]
            msg = cross_field[2]
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = yaml_line(text, loc)
        where = f"line {line}, " if line else ""
        parts.append(f"{where}field '{field}': {msg}")
    return "; ".join(parts)


def yaml_line(text: str, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on the path `loc` (keys and list indexes)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(
                node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


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
