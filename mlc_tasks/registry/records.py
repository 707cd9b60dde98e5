"""What the registry hands out: frozen pydantic records, never ORM rows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.lifecycle import State
from mlc_tasks.scoring import Column


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)


class ModelRecord(Record):
    name: str
    type: str
    owner: str
    risk_tier: str
    tags: dict[str, str]
    description: str
    created_at: datetime
    data_location: str | None = None


class NewVersion(Record):
    """What registration needs to know about a version, from its package."""

    source_sha256: str
    artifact_uri: str | None
    artifact_sha256: str | None
    format: str | None
    artifact_types: list[str]
    trusted_types: list[str]
    input_schema: list[Column]
    label: str
    metrics: list[str]
    sensitive_attributes: list[str]
    sample_rows: list[dict[str, Any]]
    training: dict[str, Any] | None
    parent_version_id: str | None
    training_data_sha256: str | None
    parameters: dict[str, Any]
    seed: int | None
    package_uri: str | None


class VersionRecord(NewVersion):
    """A registered version: what its package said, plus identity and life-cycle state."""

    id: str
    model: str
    number: int
    state: State
    created_by: str
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.number}"


class RuntimeRecord(Record):
    name: str
    url: str
    tags: dict[str, str]
    capabilities: dict[str, Any]
    started_at: datetime
    last_heartbeat: datetime


class DeploymentRecord(Record):
    id: int
    model: str
    version_number: int
    version_id: str
    runtime: str
    env: str | None
    deployed_at: datetime
    replaced_at: datetime | None
    deployed_by: str
    reason: str


class ThresholdCheck(Record):
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool


class ResultKind(StrEnum):
    """What a test result judged. Stored as its value; a fairness result is one per sensitive
    attribute and stored as "fairness:<attribute>" (`fairness_kind`), so the stored string
    is the same as before these were an enum (no migration)."""

    TEST = "test"                # the version's test job (a challenger's: the held-out rows)
    HOLDOUT = "holdout"          # a champion on a challenger's held-out rows
    BACKTEST = "backtest"        # the production version on a day's labelled rows
    DRIFT = "drift"              # the window's inputs against the training data
    PERFORMANCE = "performance"  # the window's metrics against the version's own test
    FAIRNESS = "fairness"        # group metrics for one sensitive attribute


class ResultOutcome(StrEnum):
    """Whether a result judged anything: only a tested result can pass."""

    TESTED = "tested"
    NO_DATA = "no data"                      # nothing arrived in the window
    INSUFFICIENT_DATA = "insufficient data"  # a group too small to judge (fairness)


KIND_MAX_LENGTH = 128  # the column's width (registry/tables.py)


def fairness_kind(attribute: str) -> str:
    """The stored kind of a fairness result: "fairness:<attribute>"."""
    try:
        return stored_kind(f"{ResultKind.FAIRNESS}:{attribute}")
    except ValueError as exc:
        raise InvalidInputError(f"sensitive attribute '{attribute[:KIND_MAX_LENGTH]}' cannot "
                                f"name a result ({exc}; at most {KIND_MAX_LENGTH} characters "
                                "in all)") from exc


def parse_kind(stored: str) -> tuple[ResultKind, str | None]:
    """(the kind, the sensitive attribute of a fairness result, else None); a string that is
    neither a kind nor "fairness:<attribute>" is an error naming it."""
    family, colon, attribute = stored.partition(":")
    allowed = ", ".join(k.value for k in ResultKind if k is not ResultKind.FAIRNESS)
    problem = f"kind: '{stored[:KIND_MAX_LENGTH]}' is not {allowed} or fairness:<attribute>"
    try:
        kind = ResultKind(family)
    except ValueError:
        raise ValueError(problem) from None
    named = kind is ResultKind.FAIRNESS  # only a fairness result names an attribute
    if bool(colon) != named or (named and not attribute) or len(stored) > KIND_MAX_LENGTH:
        raise ValueError(problem)
    return kind, attribute or None


def stored_kind(value: str) -> str:
    """The kind as a ResultKind, or a fairness kind's string, checked."""
    kind, attribute = parse_kind(value)
    return value if attribute else kind


# a field holding a result's kind: a ResultKind, or "fairness:<attribute>" (a str), checked
StoredKind = Annotated[str, AfterValidator(stored_kind)]


class TestResult(Record):
    """The standard test record: version, dataset (uri + hash), metrics, each threshold with
    value and pass, overall pass, report link."""

    __test__ = False  # not a pytest test class, despite its name

    id: str
    version_id: str
    kind: StoredKind
    dataset_uri: str
    dataset_sha256: str
    metrics: dict[str, float]
    thresholds: list[ThresholdCheck]
    passed: bool
    report_uri: str | None
    created_at: datetime
    window: str | None = None
    outcome: ResultOutcome = ResultOutcome.TESTED

    @property
    def family(self) -> ResultKind:
        """The kind without a fairness result's attribute."""
        return parse_kind(self.kind)[0]

    @property
    def attribute(self) -> str | None:
        """The sensitive attribute a fairness result judged; None for the other kinds."""
        return parse_kind(self.kind)[1]
