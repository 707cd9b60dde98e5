"""The registry's tables (SQLAlchemy 2). Changes here need an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(255))
    risk_tier: Mapped[str] = mapped_column(String(16))
    tags: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # where labelled data arrives, one folder per day (any fsspec URL), for backtests
    data_location: Mapped[str | None] = mapped_column(Text)
    # the one version production serves or is being promoted to; moved only under this row's
    # lock, with compare-and-swap (registry/champions.py)
    champion_version_id: Mapped[str | None] = mapped_column(String(32))


class VersionRow(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        UniqueConstraint("model_id", "source_sha256"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), index=True)
    # sha256 of the artifact, or of model.yaml + training data for a package still to train;
    # the same source submitted twice is the same version.
    source_sha256: Mapped[str] = mapped_column(String(64))
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(16))
    artifact_types: Mapped[list[Any]]
    trusted_types: Mapped[list[Any]]
    input_schema: Mapped[list[Any]]
    label: Mapped[str] = mapped_column(String(255))
    metrics: Mapped[list[Any]]
    sensitive_attributes: Mapped[list[Any]]
    sample_rows: Mapped[list[Any]]
    training: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent_version_id: Mapped[str | None] = mapped_column(ForeignKey("versions.id"))
    training_data_sha256: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    seed: Mapped[int | None]
    package_uri: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class RuntimeRow(Base):
    __tablename__ = "runtimes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    url: Mapped[str] = mapped_column(Text)
    tags: Mapped[dict[str, Any]]
    capabilities: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    last_heartbeat: Mapped[datetime]


class DeploymentRow(Base):
    """A version served on a runtime from deployed_at until replaced_at: a runtime serves many
    models, with at most one open deployment per (runtime, model)."""

    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_env_time", "env", "deployed_at"),
        Index("ux_deployments_open_per_runtime_model", "runtime_id", "model_id", unique=True,
              sqlite_where=text("replaced_at IS NULL"),
              postgresql_where=text("replaced_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("versions.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    runtime_id: Mapped[int] = mapped_column(ForeignKey("runtimes.id"), index=True)
    env: Mapped[str | None] = mapped_column(String(63))  # the runtime's env tag at the time
    deployed_at: Mapped[datetime]
    replaced_at: Mapped[datetime | None]
    deployed_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)


class TestResultRow(Base):
    __tablename__ = "test_results"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(128))  # records.ResultKind; fairness:<attribute>
    dataset_uri: Mapped[str] = mapped_column(Text)
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]]
    thresholds: Mapped[list[Any]]
    passed: Mapped[bool]
    report_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    window: Mapped[str | None] = mapped_column(String(32))  # e.g. the date a backtest covers
    # records.ResultOutcome
    outcome: Mapped[str] = mapped_column(String(32), server_default="tested")


class AuditRow(Base):
    """Append-only; each row's hash (HMAC under the audit key, mlc_tasks/audit.py) covers its
    content and the previous row's hash."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(63), index=True)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """One row: the last sequence number and hash, locked while a row is appended, so that the
    chain never forks and a removed last row is noticed."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
    # the event the audit key starts at (0: the first; null: no key has opened the log yet);
    # events before it were sealed with plain sha256 (mlc_tasks/audit.py)
    keyed_seq: Mapped[int | None]


class AlertRow(Base):
    """One alert per problem; `open_key` holds the fingerprint until the alert is resolved, so
    a unique index allows exactly one unresolved alert per fingerprint, even under races."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(63))
    monitor: Mapped[str] = mapped_column(String(63))
    metric: Mapped[str] = mapped_column(String(63))
    window: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None]
    threshold: Mapped[float | None]
    run_url: Mapped[str | None] = mapped_column(Text)
    count: Mapped[int]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_notified: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    snoozed_until: Mapped[datetime | None]
    snoozed_by: Mapped[str | None] = mapped_column(String(255))


class DeliveryRow(Base):
    """The outbox: one notification of one alert on one channel, committed with the alert and
    sent afterwards; a pending row is sent again by the next run."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # opened | repeated | resolved
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(Text)
    external_ref: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class DeliveryAttemptRow(Base):
    __tablename__ = "alert_delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("alert_deliveries.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # sent | transient | permanent
    error: Mapped[str | None] = mapped_column(Text)


class HumanTaskRow(Base):
    """An approval or error review. `open_key` (version:kind:step) is set while the task is
    open, so a rerun of the flow finds the same task instead of opening a second one."""

    __tablename__ = "human_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    open_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("versions.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    groups: Mapped[list[Any]]
    quorum: Mapped[int]
    deadline: Mapped[datetime | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    holder: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(Text)


class TaskDecisionRow(Base):
    """Every attempt to decide a task, accepted or refused."""

    __tablename__ = "task_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("human_tasks.id"), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    accepted: Mapped[bool]
    refusal: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]


class ComparisonRow(Base):
    """A champion/challenger comparison on the same held-out rows and its decision."""

    __tablename__ = "comparisons"
    __table_args__ = (
        UniqueConstraint("champion_version_id", "challenger_version_id", "dataset_sha256"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(63), index=True)
    champion_version_id: Mapped[str] = mapped_column(ForeignKey("versions.id"), index=True)
    challenger_version_id: Mapped[str] = mapped_column(ForeignKey("versions.id"), index=True)
    dataset_uri: Mapped[str] = mapped_column(Text)
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(32))  # promote, insufficient evidence, ...
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class SensedFileRow(Base):
    """A file the data sensor saw in a model's data location, with its size and modification
    time when last seen: a file is read only once that has not changed for a while."""

    __tablename__ = "sensed_files"
    __table_args__ = (UniqueConstraint("model", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(63))
    path: Mapped[str] = mapped_column(String(1024))
    fingerprint: Mapped[str] = mapped_column(String(255))  # size and mtime
    changed_at: Mapped[datetime]  # when the fingerprint was last seen to change
    sha256: Mapped[str | None] = mapped_column(String(64))  # once read


class DataArrivalRow(Base):
    """New labelled data, one per content: the same bytes under another name or after a
    restart is not a second arrival (the unique constraint settles races)."""

    __tablename__ = "data_arrivals"
    __table_args__ = (UniqueConstraint("model", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(63), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))  # retrain | backtest | known
    arrived_at: Mapped[datetime]
    emitted_at: Mapped[datetime | None]  # its event sent; until then the sensor sends it again


class NotificationRow(Base):
    """An accepted inbound notification; its id is the primary key, so a replay is refused."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(16))
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]


class PrincipalRow(Base):
    """A person or service that holds credentials. Only the token's sha256 is kept; the
    authenticator secret is kept to check codes (the registry is admin-only)."""

    __tablename__ = "principals"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # canonical (people.py)
    kind: Mapped[str] = mapped_column(String(16))  # person | service
    scopes: Mapped[list[Any]]
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime]
    enrolled_by: Mapped[str] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None]


class CredentialUseRow(Base):
    """A one-time code (its step counter) or a proof's nonce, once accepted: never again."""

    __tablename__ = "credential_uses"
    __table_args__ = (UniqueConstraint("principal_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # totp | proof
    value: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
