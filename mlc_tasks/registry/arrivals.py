"""What the data sensor has seen: each file's size and modification time (to tell when it has
stopped changing) and each new content once (to start one run per content, whatever its name
and however often the sensor or `mlc up` restarts)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import DataArrivalRow, SensedFileRow

KNOWN = "known"  # content that was there at the first look: never an arrival, never sent


class SensedFile(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    model: str
    path: str
    fingerprint: str
    changed_at: datetime
    sha256: str | None


class Arrival(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    model: str
    sha256: str
    path: str
    action: str
    arrived_at: datetime
    emitted_at: datetime | None


class ArrivalBook:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def observe(self, model: str, path: str, fingerprint: str, now: datetime) -> SensedFile:
        """Note the file as seen now; a changed fingerprint restarts its quiet period and
        forgets its content hash."""
        return self.registry.retry_on_conflict(lambda: self._observe(model, path, fingerprint,
                                                                     now))

    def _observe(self, model: str, path: str, fingerprint: str, now: datetime) -> SensedFile:
        with self.registry.transaction() as session:
            row = session.execute(select(SensedFileRow).where(
                SensedFileRow.model == model, SensedFileRow.path == path).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                row = SensedFileRow(model=model, path=path, fingerprint=fingerprint,
                                    changed_at=now, sha256=None)
                session.add(row)
            elif row.fingerprint != fingerprint:
                row.fingerprint, row.changed_at, row.sha256 = fingerprint, now, None
            session.flush()
            return SensedFile.model_validate(row)

    def watched(self, model: str) -> bool:
        """Whether the sensor has looked at this model's location before."""
        with self.registry.transaction() as session:
            return session.execute(select(SensedFileRow.id).where(
                SensedFileRow.model == model).limit(1)).first() is not None

    def mark_read(self, model: str, path: str, fingerprint: str, sha256: str) -> None:
        with self.registry.transaction() as session:
            row = session.execute(select(SensedFileRow).where(
                SensedFileRow.model == model, SensedFileRow.path == path).with_for_update()
            ).scalar_one()
            if row.fingerprint == fingerprint:  # else it changed while being read: read again
                row.sha256 = sha256

    def arrive(self, model: str, sha256: str, path: str, action: str, actor: str
               ) -> Arrival | None:
        """Record new content; None when this content arrived before (any name, any time)."""
        try:
            with self.registry.transaction() as session:
                if session.execute(select(DataArrivalRow.id).where(
                        DataArrivalRow.model == model, DataArrivalRow.sha256 == sha256)
                        ).first() is not None:
                    return None
                row = DataArrivalRow(model=model, sha256=sha256, path=path, action=action,
                                     arrived_at=utcnow(), emitted_at=None)
                session.add(row)
                session.flush()
                self.registry.append_audit(
                    session, actor=actor, action="data.arrived", entity="model", entity_id=model,
                    model=model, reason=f"new labelled data: {path}",
                    detail={"path": path, "action": action}, evidence_sha256=sha256)
                return Arrival.model_validate(row)
        except IntegrityError:  # another sensor run recorded the same content first
            return None

    def know(self, model: str, sha256: str, path: str) -> None:
        """Remember content that was there before the sensor looked: the same bytes, rewritten
        or copied under any name, are not new data."""
        try:
            with self.registry.transaction() as session:
                if session.execute(select(DataArrivalRow.id).where(
                        DataArrivalRow.model == model, DataArrivalRow.sha256 == sha256)
                        ).first() is None:
                    now = utcnow()
                    session.add(DataArrivalRow(model=model, sha256=sha256, path=path,
                                               action=KNOWN, arrived_at=now, emitted_at=now))
        except IntegrityError:  # another sensor run remembered it first
            pass

    def unsent(self) -> list[Arrival]:
        """Arrivals whose event was not sent yet (a sensor run died between the two)."""
        with self.registry.transaction() as session:
            rows = session.execute(select(DataArrivalRow).where(
                DataArrivalRow.emitted_at.is_(None)).order_by(DataArrivalRow.id)).scalars()
            return [Arrival.model_validate(r) for r in rows]

    def mark_emitted(self, arrival_id: int) -> None:
        with self.registry.transaction() as session:
            session.get_one(DataArrivalRow, arrival_id).emitted_at = utcnow()

    def arrivals(self, model: str) -> list[Arrival]:
        with self.registry.transaction() as session:
            rows = session.execute(select(DataArrivalRow).where(
                DataArrivalRow.model == model, DataArrivalRow.action != KNOWN)
                .order_by(DataArrivalRow.id)).scalars()
            return [Arrival.model_validate(r) for r in rows]
