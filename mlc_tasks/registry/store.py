"""Registry: every read and write of the inventory, each write audited in its transaction."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mlc_tasks import audit, audit_replay, governance, lifecycle
from mlc_tasks.errors import (
    AuditKeyError,
    GovernanceFieldError,
    NotFoundError,
    RuntimeFullError,
    RuntimePinnedError,
)
from mlc_tasks.lifecycle import State
from mlc_tasks.packages import ModelSpec
from mlc_tasks.registry.audit_state import read_state
from mlc_tasks.registry.migrate import upgrade
from mlc_tasks.registry.records import (
    DeploymentRecord,
    ModelRecord,
    NewVersion,
    RuntimeRecord,
    TestResult,
    VersionRecord,
)
from mlc_tasks.registry.tables import (
    AuditHeadRow,
    AuditRow,
    DeploymentRow,
    ModelRow,
    RuntimeRow,
    TestResultRow,
    VersionRow,
)
from mlc_tasks.run_requests import BUILT_IN_PROD, is_production

log = logging.getLogger(__name__)
T = TypeVar("T")


def utcnow() -> datetime:
    """Naive UTC: SQLite and PostgreSQL `timestamp` give back the same value."""
    return datetime.now(UTC).replace(tzinfo=None)


def create_registry_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        _use_wal(dbapi_connection)
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue instead of deadlocking.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _use_wal(dbapi_connection: Any, attempts: int = 100) -> None:
    """Switch a new database to WAL (it stays so). The switch needs the file to itself and
    SQLite does not wait for that, so two processes opening a new database retry."""
    for attempt in range(attempts):
        try:
            if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


class Registry:
    """The inventory behind one database URL; migrations are applied on open. Only a registry
    opened with the audit key (settings.resolved_audit_key()) writes: every write is audited
    and the audit log is sealed with the key."""

    def __init__(self, url: str, migrate: bool = True, audit_key: str | None = None) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_registry_engine(url)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._audit_key = audit_key.encode() if audit_key else None
        if self._audit_key is not None:
            self._key_audit_log(self._audit_key)

    def close(self) -> None:
        self.engine.dispose()

    # transaction, retry_on_conflict and append_audit are the extension points for stores that
    # share this database and its audit log (registry/alerts.py).

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def retry_on_conflict(self, work: Callable[[], T], attempts: int = 5) -> T:
        """Unique constraints settle races between processes; the loser reads the winner's row."""
        for attempt in range(attempts):
            try:
                return work()
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    # ---- audit -----------------------------------------------------------------------------

    def append_audit(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        entity: str,
        entity_id: str,
        model: str | None,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        evidence_sha256: str | None = None,
    ) -> None:
        key = self._require_audit_key("write")
        head = self._locked_audit_head(session)
        self._require_sealed_last(session, head, key)
        self._append(session, head, key, actor=actor, action=action, entity=entity,
                     entity_id=entity_id, model=model, reason=reason, detail=detail or {},
                     evidence_sha256=evidence_sha256)

    def _append(self, session: Session, head: AuditHeadRow, key: bytes, **content: Any) -> None:
        fields = {"seq": head.seq + 1, "at": utcnow(), **content}
        digest = audit.seal(fields, head.hash, key)
        session.add(AuditRow(**fields, prev_hash=head.hash, hash=digest))
        head.seq, head.hash = fields["seq"], digest

    @staticmethod
    def _require_sealed_last(session: Session, head: AuditHeadRow, key: bytes) -> None:
        """A log is extended only from an event sealed with this key: a process with another
        key, or a log whose end was altered, writes nothing."""
        last = session.get(AuditRow, head.seq) if head.seq else None
        if last is not None and not audit.is_sealed(
                audit.AuditEvent.model_validate(last, from_attributes=True), key):
            raise AuditKeyError(
                f"the audit log's last event ({head.seq}) is not sealed with this audit key: "
                "another key (MLC_AUDIT_KEY or MLC_HOME/audit-key differs between processes), "
                "or the log was altered; nothing was written (see `mlc audit verify`)")

    def _key_audit_log(self, key: bytes) -> None:
        """Once per database (audit_head.keyed_seq unset): events written before the key
        existed keep their plain sha256 seals and an audit.keyed event seals their head under
        the key; every later event is keyed. A new log is keyed from its first event. (Unsetting
        keyed_seq to have a log re-sealed without the key keyed again is what anchors catch.)"""
        with self.transaction() as session:
            if session.execute(select(AuditHeadRow.keyed_seq)).scalar_one() is not None:
                return  # keyed already: no lock taken
            head = self._locked_audit_head(session)
            if head.keyed_seq is not None:
                return
            if head.seq:
                self._append(session, head, key, actor="mlc", action=audit.KEYED,
                             entity="audit", entity_id="head", model=None,
                             reason="events before this one were sealed without a key "
                                    "(plain sha256); this event seals their head",
                             detail={"sealed_seq": head.seq, "sealed_hash": head.hash},
                             evidence_sha256=None)
            head.keyed_seq = head.seq  # the audit.keyed event; 0: keyed from the first
            log.info("audit log keyed from event %d", max(head.keyed_seq, 1))

    def _require_audit_key(self, what: str) -> bytes:
        if self._audit_key is None:
            raise AuditKeyError(
                f"this registry was opened without the audit key and cannot {what} the audit "
                "log: open it with Registry(url, audit_key=settings.resolved_audit_key())")
        return self._audit_key

    @staticmethod
    def _locked_audit_head(session: Session) -> AuditHeadRow:
        return session.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one()

    def audit_events(self, model: str | None = None) -> list[audit.AuditEvent]:
        with self.transaction() as session:
            return self._audit_events(session, model)

    def audit_events_in(self, session: Session, model: str | None) -> list[audit.AuditEvent]:
        """The audit events as this transaction sees them (its own writes included)."""
        return self._audit_events(session, model)

    @staticmethod
    def _audit_events(session: Session, model: str | None) -> list[audit.AuditEvent]:
        query = select(AuditRow).order_by(AuditRow.seq)
        if model is not None:
            query = query.where(AuditRow.model == model)
        rows = session.execute(query).scalars()
        return [audit.AuditEvent.model_validate(r, from_attributes=True) for r in rows]

    def verify_audit(self, anchor: audit.Anchor | None = None) -> audit.AuditReport:
        """Check the keyed chain, its head and the newest anchor (written outside the
        database), and replay the events against the state tables."""
        key = self._require_audit_key("check")
        with self.transaction() as session:  # rows and head from one snapshot (the head is locked)
            head = self._locked_audit_head(session)
            events = self._audit_events(session, None)
            state = read_state(session)
            last = (head.seq, head.hash) if head.seq else None
            report = audit.verify_chain(events, last, key, head.keyed_seq, anchor)
        differ = audit_replay.disagreements(events, state)
        return report.model_copy(update={
            "ok": report.ok and not differ, "disagreements": differ,
            "problem": report.problem or (differ[0] if differ else None)})

    def audit_head(self) -> audit.ChainHead:
        """The last event's seq, seal and time (what an anchor records)."""
        with self.transaction() as session:
            head = self._locked_audit_head(session)
            last = session.get(AuditRow, head.seq) if head.seq else None
            return audit.ChainHead(seq=head.seq, hash=head.hash,
                                   at=last.at if last is not None else None)

    # ---- models and versions ---------------------------------------------------------------

    def register_version(
        self, spec: ModelSpec, new: NewVersion, actor: str
    ) -> tuple[VersionRecord, bool]:
        """Register a version; the same source submitted again returns the existing version and
        False. Creates or updates the model's description fields."""
        return self.retry_on_conflict(lambda: self._register_version(spec, new, actor))

    def _register_version(
        self, spec: ModelSpec, new: NewVersion, actor: str
    ) -> tuple[VersionRecord, bool]:
        with self.transaction() as session:
            model = self._upsert_model(session, spec, actor)
            existing = session.execute(
                select(VersionRow).where(
                    VersionRow.model_id == model.id, VersionRow.source_sha256 == new.source_sha256
                )
            ).scalar_one_or_none()
            if existing is not None:
                return self._version_record(existing, model.name), False
            last = session.execute(
                select(func.max(VersionRow.number)).where(VersionRow.model_id == model.id)
            ).scalar()
            number = (last or 0) + 1
            row = VersionRow(
                id=uuid.uuid4().hex,
                model_id=model.id,
                number=number,
                state=State.SUBMITTED.value,
                created_by=actor,
                created_at=utcnow(),
                **new.model_dump(mode="json"),
            )
            session.add(row)
            session.flush()
            self.append_audit(
                session,
                actor=actor,
                action="version.submitted",
                entity="version",
                entity_id=row.id,
                model=model.name,
                detail={"number": number, "artifact_sha256": new.artifact_sha256},
                evidence_sha256=new.source_sha256,
            )
            return self._version_record(row, model.name), True

    def _upsert_model(self, session: Session, spec: ModelSpec, actor: str) -> ModelRow:
        model = session.execute(
            select(ModelRow).where(ModelRow.name == spec.name).with_for_update()
        ).scalar_one_or_none()
        fields = {
            "type": spec.type.value,
            "owner": spec.owner,
            "risk_tier": spec.risk_tier.value,
            "tags": dict(spec.tags),
            "description": spec.description,
            "data_location": spec.data_location,
        }
        if model is None:
            model = ModelRow(name=spec.name, created_at=utcnow(), **fields)
            session.add(model)
            session.flush()
            self.append_audit(session, actor=actor, action="model.created", entity="model",
                        entity_id=spec.name, model=spec.name, detail=fields)
        else:
            self._refuse_governance_change(model, spec)
        if any(getattr(model, k) != v for k, v in fields.items()):
            changed = {k: v for k, v in fields.items() if getattr(model, k) != v}
            for key, value in changed.items():
                setattr(model, key, value)
            self.append_audit(session, actor=actor, action="model.updated", entity="model",
                        entity_id=spec.name, model=spec.name, detail=changed)
        return model

    def check_governance(self, spec: ModelSpec) -> None:
        """Refuse, before anything is stored, a package that would change its registered
        model's governance fields (registration checks again, under the model's lock)."""
        with self.transaction() as session:
            model = session.execute(
                select(ModelRow).where(ModelRow.name == spec.name)).scalar_one_or_none()
            if model is not None:
                self._refuse_governance_change(model, spec)

    @staticmethod
    def _refuse_governance_change(model: ModelRow, spec: ModelSpec) -> None:
        """Type, risk tier, owner, team and data location are the registry's after the first
        registration: a package that differs is refused (mlc_tasks/governance.py)."""
        registered = governance.registered_values(ModelRecord.model_validate(model))
        changed = governance.differences(registered, governance.package_values(spec))
        if changed:
            raise GovernanceFieldError(governance.package_refusal(spec.name, changed))

    def get_model(self, name: str) -> ModelRecord:
        with self.transaction() as session:
            return ModelRecord.model_validate(self._model_row(session, name))

    def list_models(self) -> list[ModelRecord]:
        with self.transaction() as session:
            rows = session.execute(select(ModelRow).order_by(ModelRow.name)).scalars()
            return [ModelRecord.model_validate(r) for r in rows]

    def list_versions(self, model: str, limit: int | None = None) -> list[VersionRecord]:
        with self.transaction() as session:
            row = self._model_row(session, model)
            query = (
                select(VersionRow)
                .where(VersionRow.model_id == row.id)
                .order_by(VersionRow.number.desc())
                .limit(limit)
            )
            return [self._version_record(v, model) for v in session.execute(query).scalars()]

    def get_version(self, model: str, number: int) -> VersionRecord:
        with self.transaction() as session:
            row = self._model_row(session, model)
            version = session.execute(
                select(VersionRow).where(
                    VersionRow.model_id == row.id, VersionRow.number == number
                )
            ).scalar_one_or_none()
            if version is None:
                raise NotFoundError(f"model '{model}' has no version {number}")
            return self._version_record(version, model)

    def get_version_by_id(self, version_id: str) -> VersionRecord:
        with self.transaction() as session:
            found = session.execute(
                select(VersionRow, ModelRow.name)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .where(VersionRow.id == version_id)
            ).one_or_none()
            if found is None:
                raise NotFoundError(f"no version with id {version_id}")
            return self._version_record(found[0], found[1])

    def version_states(self, version_ids: list[str]) -> dict[str, State]:
        """The life-cycle state of each of these versions (those that exist), in one query."""
        with self.transaction() as session:
            rows = session.execute(select(VersionRow.id, VersionRow.state)
                                   .where(VersionRow.id.in_(version_ids))).all()
            return {version_id: State(state) for version_id, state in rows}

    def transition(
        self, version_id: str, target: State, actor: str, reason: str = ""
    ) -> VersionRecord:
        """Move a version along the life-cycle table; an illegal move changes nothing."""
        with self.transaction() as session:
            return self.move_version(session, version_id, target, actor, reason)

    def move_version(
        self, session: Session, version_id: str, target: State, actor: str, reason: str = ""
    ) -> VersionRecord:
        """`transition` inside a caller's transaction (an extension point, like append_audit)."""
        row, model = self._locked_version(session, version_id)
        self._set_state(session, row, model, target, actor, reason)
        return self._version_record(row, model)

    def attach_artifact(
        self, version_id: str, artifact: dict[str, Any], actor: str, reason: str
    ) -> VersionRecord:
        """Record what the training job produced (artifact uri, sha256, format, types, data
        hash) and move the version submitted → trained; a version that has an artifact already
        keeps it."""
        fields = {"artifact_uri", "artifact_sha256", "format", "artifact_types",
                  "trusted_types", "training_data_sha256"}
        if set(artifact) != fields:
            raise ValueError(f"attach_artifact needs exactly {sorted(fields)}")
        with self.transaction() as session:
            row, model = self._locked_version(session, version_id)
            if row.artifact_uri is not None:
                return self._version_record(row, model)
            for key, value in artifact.items():
                setattr(row, key, value)
            self.append_audit(session, actor=actor, action="version.artifact_attached",
                              entity="version", entity_id=row.id, model=model, reason=reason,
                              detail={"number": row.number, **artifact},
                              evidence_sha256=artifact["artifact_sha256"])
            self._set_state(session, row, model, State.TRAINED, actor, reason)
            return self._version_record(row, model)

    def _set_state(
        self, session: Session, row: VersionRow, model: str, target: State, actor: str, reason: str
    ) -> None:
        current = State(row.state)
        if current == target:
            return
        lifecycle.check_transition(current, target)
        row.state = target.value
        if target is State.RETIRED:  # a retired version is served nowhere: runtimes unload it
            for deployment, _, _, runtime in session.execute(
                    self._deployment_query().where(DeploymentRow.version_id == row.id,
                                                   DeploymentRow.replaced_at.is_(None))).all():
                self._close_deployment(session, deployment, row, model, runtime, actor, reason)
        self.append_audit(session, actor=actor, action=f"version.{target.value}", entity="version",
                    entity_id=row.id, model=model, reason=reason,
                    detail={"number": row.number, "from": current.value, "to": target.value})

    def _locked_version(self, session: Session, version_id: str) -> tuple[VersionRow, str]:
        found = session.execute(
            select(VersionRow, ModelRow.name)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(VersionRow.id == version_id)
            .with_for_update(of=VersionRow)
        ).one_or_none()
        if found is None:
            raise NotFoundError(f"no version with id {version_id}")
        return found[0], found[1]

    def _model_row(self, session: Session, name: str) -> ModelRow:
        row = session.execute(select(ModelRow).where(ModelRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no model named '{name}'")
        return row

    @staticmethod
    def _version_record(row: VersionRow, model: str) -> VersionRecord:
        fields = {c: getattr(row, c) for c in VersionRecord.model_fields if c != "model"}
        return VersionRecord.model_validate({**fields, "model": model})

    # ---- runtimes --------------------------------------------------------------------------

    def upsert_runtime(
        self, name: str, url: str, tags: dict[str, str], capabilities: dict[str, Any],
        repin_by: str | None = None,
    ) -> RuntimeRecord:
        """Register a runtime (again). Its URL is pinned at the first registration: another URL
        is refused unless an admin re-pins it (`repin_by`, audited as runtime.repinned)."""
        return self.retry_on_conflict(
            lambda: self._upsert_runtime(name, url, tags, capabilities, repin_by))

    def _upsert_runtime(
        self, name: str, url: str, tags: dict[str, str], capabilities: dict[str, Any],
        repin_by: str | None,
    ) -> RuntimeRecord:
        now = utcnow()
        with self.transaction() as session:
            row = session.execute(
                select(RuntimeRow).where(RuntimeRow.name == name).with_for_update()
            ).scalar_one_or_none()
            if row is not None and row.url != url:
                if repin_by is None:
                    raise RuntimePinnedError(
                        f"runtime '{name}' is pinned to {row.url}; it cannot register at {url} "
                        "unless an admin re-pins it (mlc runtime start ... --repin)")
                self.append_audit(session, actor=repin_by, action="runtime.repinned",
                                  entity="runtime", entity_id=name, model=None,
                                  detail={"from": row.url, "to": url})
            changed = row is None or (row.url, row.tags, row.capabilities) != (
                url, tags, capabilities)
            if row is None:
                row = RuntimeRow(name=name, started_at=now, last_heartbeat=now, url=url,
                                 tags=tags, capabilities=capabilities)
                session.add(row)
            row.url, row.tags, row.capabilities = url, tags, capabilities
            row.started_at = row.last_heartbeat = now
            if changed:
                self.append_audit(session, actor="runtime:" + name, action="runtime.registered",
                            entity="runtime", entity_id=name, model=None,
                            detail={"url": url, "tags": tags, "capabilities": capabilities})
            session.flush()
            return RuntimeRecord.model_validate(row)

    def heartbeat(self, name: str) -> None:
        with self.transaction() as session:
            session.execute(
                update(RuntimeRow).where(RuntimeRow.name == name).values(last_heartbeat=utcnow())
            )

    def list_runtimes(self) -> list[RuntimeRecord]:
        with self.transaction() as session:
            rows = session.execute(select(RuntimeRow).order_by(RuntimeRow.name)).scalars()
            return [RuntimeRecord.model_validate(r) for r in rows]

    def get_runtime(self, name: str) -> RuntimeRecord:
        with self.transaction() as session:
            row = session.execute(
                select(RuntimeRow).where(RuntimeRow.name == name)
            ).scalar_one_or_none()
            if row is None:
                raise NotFoundError(f"no runtime named '{name}'")
            return RuntimeRecord.model_validate(row)

    # ---- deployments -----------------------------------------------------------------------

    def record_deployment(
        self, version_id: str, runtime: str, actor: str, reason: str,
        prod: Mapping[str, str] = BUILT_IN_PROD,
    ) -> DeploymentRecord:
        """Record that a runtime now serves a version: close the runtime's previous deployment
        of the same model (other models on it are untouched), move the version's state
        (approved → deployed), audit; all in one transaction. The runtime is production when its
        (locked) tags hold all of `prod`, the policy's production tags (deployment.prod): then
        only an approved or deployed version may go, and it becomes the champion. A runtime
        that already serves as many models as its capabilities' `max_models` takes no other."""
        now = utcnow()
        with self.transaction() as session:
            runtime_row = session.execute(  # locked: one open deployment per runtime and model
                select(RuntimeRow).where(RuntimeRow.name == runtime).with_for_update()
            ).scalar_one_or_none()
            if runtime_row is None:
                raise NotFoundError(f"no runtime named '{runtime}'")
            row, model = self._locked_version(session, version_id)
            self._check_room(session, runtime_row, row.model_id, model)
            env = runtime_row.tags.get("env")
            production = is_production(runtime_row.tags, prod)
            target = lifecycle.state_after_deploy(State(row.state), production)
            self._set_state(session, row, model, target, actor, reason)
            if production:  # what production serves is the champion
                session.execute(update(ModelRow).where(ModelRow.id == row.model_id)
                                .values(champion_version_id=row.id))
            session.execute(
                update(DeploymentRow)
                .where(DeploymentRow.runtime_id == runtime_row.id,
                       DeploymentRow.model_id == row.model_id,
                       DeploymentRow.replaced_at.is_(None))
                .values(replaced_at=now)
            )
            deployment = DeploymentRow(version_id=row.id, runtime_id=runtime_row.id,
                                       model_id=row.model_id, env=env, deployed_at=now,
                                       deployed_by=actor, reason=reason)
            session.add(deployment)
            session.flush()
            self.append_audit(session, actor=actor, action="version.deployed_to", entity="version",
                        entity_id=row.id, model=model, reason=reason,
                        detail={"number": row.number, "runtime": runtime, "env": env,
                                "production": production, "per_model": True},
                        evidence_sha256=row.artifact_sha256)
            return self._deployment_record(deployment, row, model, runtime)

    @staticmethod
    def _check_room(session: Session, runtime: RuntimeRow, model_id: int, model: str) -> None:
        limit = runtime.capabilities.get("max_models")
        served = set(session.execute(
            select(DeploymentRow.model_id).where(DeploymentRow.runtime_id == runtime.id,
                                                 DeploymentRow.replaced_at.is_(None))).scalars())
        if isinstance(limit, int) and model_id not in served and len(served) >= limit:
            raise RuntimeFullError(f"runtime {runtime.name} serves {len(served)} of its "
                                   f"{limit} models (MLC_RUNTIME_MAX_MODELS); {model} does not "
                                   "fit")

    def record_undeployment(self, version_id: str, runtime: str, actor: str, reason: str
                            ) -> DeploymentRecord | None:
        """Record that a runtime no longer serves a version (unloaded); None when the registry
        had it served there no more."""
        with self.transaction() as session:
            row, model = self._locked_version(session, version_id)
            found = session.execute(
                self._deployment_query().where(RuntimeRow.name == runtime,
                                               DeploymentRow.version_id == version_id,
                                               DeploymentRow.replaced_at.is_(None))
            ).one_or_none()
            if found is None:
                return None
            self._close_deployment(session, found[0], row, model, runtime, actor, reason)
            return self._deployment_record(*found)

    def _close_deployment(self, session: Session, deployment: DeploymentRow, row: VersionRow,
                          model: str, runtime: str, actor: str, reason: str) -> None:
        deployment.replaced_at = utcnow()
        self.append_audit(session, actor=actor, action="version.undeployed_from",
                          entity="version", entity_id=row.id, model=model, reason=reason,
                          detail={"number": row.number, "runtime": runtime,
                                  "env": deployment.env})

    def current_deployment(self, runtime: str, model: str) -> DeploymentRecord | None:
        """What `runtime` serves of `model` now, if anything."""
        with self.transaction() as session:
            found = session.execute(
                self._deployment_query()
                .where(RuntimeRow.name == runtime, ModelRow.name == model,
                       DeploymentRow.replaced_at.is_(None))
            ).one_or_none()
            return self._deployment_record(*found) if found else None

    def served_on(self, runtime: str | None = None) -> list[DeploymentRecord]:
        """The open deployments (what is served now) on `runtime`, or on every runtime, by
        runtime and model."""
        with self.transaction() as session:
            query = self._deployment_query().where(DeploymentRow.replaced_at.is_(None))
            if runtime is not None:
                query = query.where(RuntimeRow.name == runtime)
            rows = session.execute(query.order_by(RuntimeRow.name, ModelRow.name)).all()
            return [self._deployment_record(*r) for r in rows]

    def deployments(self, model: str) -> list[DeploymentRecord]:
        with self.transaction() as session:
            rows = session.execute(
                self._deployment_query()
                .where(ModelRow.name == model)
                .order_by(DeploymentRow.deployed_at, DeploymentRow.id)
            ).all()
            return [self._deployment_record(*r) for r in rows]

    def version_in_env_at(self, model: str, env: str, at: datetime) -> VersionRecord | None:
        """Which version served `env` (e.g. prod) for a model at time `at` (naive UTC)."""
        with self.transaction() as session:
            found = session.execute(
                select(VersionRow, ModelRow.name)
                .join(DeploymentRow, DeploymentRow.version_id == VersionRow.id)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .where(
                    ModelRow.name == model,
                    DeploymentRow.env == env,
                    DeploymentRow.deployed_at <= at,
                    (DeploymentRow.replaced_at.is_(None)) | (DeploymentRow.replaced_at > at),
                )
                .order_by(DeploymentRow.deployed_at.desc(), DeploymentRow.id.desc())
                .limit(1)
            ).one_or_none()
            return self._version_record(*found) if found else None

    @staticmethod
    def _deployment_query() -> Any:
        return (
            select(DeploymentRow, VersionRow, ModelRow.name, RuntimeRow.name)
            .join(VersionRow, VersionRow.id == DeploymentRow.version_id)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .join(RuntimeRow, RuntimeRow.id == DeploymentRow.runtime_id)
        )

    @staticmethod
    def _deployment_record(
        row: DeploymentRow, version: VersionRow, model: str, runtime: str
    ) -> DeploymentRecord:
        return DeploymentRecord(
            id=row.id, model=model, version_number=version.number, version_id=version.id,
            runtime=runtime, env=row.env, deployed_at=row.deployed_at,
            replaced_at=row.replaced_at, deployed_by=row.deployed_by, reason=row.reason,
        )

    # ---- test results ----------------------------------------------------------------------

    def add_test_result(self, result: TestResult, actor: str) -> TestResult:
        """Store a result; one for a window (the date a backtest covers) replaces the earlier
        result of the same kind for that window, so a rerun never duplicates it."""
        with self.transaction() as session:
            _, model = self._locked_version(session, result.version_id)
            replaced = 0
            if result.window is not None:
                replaced = session.execute(
                    delete(TestResultRow).where(
                        TestResultRow.version_id == result.version_id,
                        TestResultRow.kind == result.kind,
                        TestResultRow.window == result.window)).rowcount
            data = result.model_dump(mode="json")
            data["created_at"] = result.created_at
            # NaN (e.g. ROC AUC on a day with one class) is not JSON: a metric that could not
            # be computed is absent, and its check (already failed) shows no value
            data["metrics"] = {k: v for k, v in result.metrics.items() if math.isfinite(v)}
            for check in data["thresholds"]:
                if check["value"] is not None and not math.isfinite(check["value"]):
                    check["value"] = None
            session.add(TestResultRow(**data))
            self.append_audit(session, actor=actor, action="test_result.recorded", entity="version",
                        entity_id=result.version_id, model=model,
                        detail={"kind": result.kind, "passed": result.passed,
                                "window": result.window, "outcome": result.outcome,
                                "replaced": replaced, "metrics": data["metrics"]},
                        evidence_sha256=result.dataset_sha256 or None)
            return result

    def test_results(self, version_id: str) -> list[TestResult]:
        with self.transaction() as session:
            rows = session.execute(
                select(TestResultRow)
                .where(TestResultRow.version_id == version_id)
                .order_by(TestResultRow.created_at)
            ).scalars()
            return [TestResult.model_validate(r) for r in rows]
