"""What the registry hands out: frozen pydantic records, never ORM rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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


class TestResult(Record):
    """The standard test record: version, dataset (uri + hash), metrics, each threshold with
    value and pass, overall pass, report link."""

    __test__ = False  # not a pytest test class, despite its name

    id: str
    version_id: str
    kind: str
    dataset_uri: str
    dataset_sha256: str
    metrics: dict[str, float]
    thresholds: list[ThresholdCheck]
    passed: bool
    report_uri: str | None
    created_at: datetime
    window: str | None = None
    outcome: str = "tested"  # or "no data": a backtest that found nothing to test on
