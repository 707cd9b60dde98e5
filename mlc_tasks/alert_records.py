"""Alert records: what every process raises and every channel delivers."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertSignal(BaseModel):
    """What a process reports: one observation of a problem."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    model: str
    version: int | None = None
    source: str = Field(description="the process that raised it, e.g. daily-backtest")
    monitor: str = Field(description="what was checked, e.g. threshold, drift, approval")
    metric: str = ""
    window: str = Field(default="", description="e.g. the date of the data checked")
    title: str
    detail: str = ""
    value: float | None = None
    threshold: float | None = None
    run_url: str | None = Field(default=None, description="the Prefect UI link to the run")

    def fingerprint(self) -> str:
        """model + monitor + metric + window: the same problem, whichever run sees it."""
        key = "\x1f".join((self.model, self.monitor, self.metric, self.window))
        return hashlib.sha256(key.encode()).hexdigest()[:32]


class Alert(BaseModel):
    """An alert with its life: open → acknowledged → resolved."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    id: int
    fingerprint: str
    status: AlertStatus
    severity: Severity
    model: str
    version: int | None
    source: str
    monitor: str
    metric: str
    window: str
    title: str
    detail: str
    value: float | None
    threshold: float | None
    run_url: str | None
    count: int
    first_seen: datetime
    last_seen: datetime
    last_notified: datetime | None
    acknowledged_by: str | None
    resolved_by: str | None
    snoozed_until: datetime | None = Field(
        default=None, description="until then repeats are counted, not notified (UTC)")
    snoozed_by: str | None = None


class DeliveryRecord(BaseModel):
    """One notification of an alert on one channel, and how its sending went."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    channel: str
    kind: str
    status: str
    attempts: int
    last_error: str | None
    external_ref: str | None


class DeliveryReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sent: int = 0
    failed: int = 0
    pending: int = 0
