"""Alerts in the inventory: one per problem while it lasts, and the outbox that delivers them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlc_tasks.alert_records import (
    Alert,
    AlertSignal,
    AlertStatus,
    DeliveryRecord,
    Severity,
)
from mlc_tasks.errors import IllegalTransitionError, InvalidInputError, NotFoundError
from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import AlertRow, DeliveryAttemptRow, DeliveryRow

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def should_notify(last_notified: datetime | None, now: datetime, window: timedelta) -> bool:
    """Notify a repeat only once per suppression window."""
    return last_notified is None or now - last_notified >= window


class AlertBook:
    """Raise, acknowledge and resolve alerts; queue and record their deliveries."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def raise_alert(
        self, signal: AlertSignal, channels: list[str], window: timedelta,
        now: datetime | None = None,
    ) -> tuple[Alert, bool]:
        """Open an alert, or count a repeat of the open one; queue a notification on each
        channel when it is new or the suppression window has passed. Returns (alert, queued)."""
        return self.registry.retry_on_conflict(
            lambda: self._raise(signal, channels, window, now or utcnow()))

    def _raise(self, signal: AlertSignal, channels: list[str], window: timedelta,
               now: datetime) -> tuple[Alert, bool]:
        with self.registry.transaction() as session:
            row = session.execute(
                select(AlertRow).where(AlertRow.open_key == signal.fingerprint()).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                row = self._new_row(signal, now)
                session.add(row)
                kind = "opened"
            else:
                self._repeat(row, signal, now)
                kind = "repeated"
            notify = row.status == AlertStatus.OPEN and self._due(row, now, window)
            session.flush()
            if notify:
                row.last_notified = now
                self._queue(session, row.id, channels, kind, now)
            return Alert.model_validate(row), notify

    @staticmethod
    def _due(row: AlertRow, now: datetime, window: timedelta) -> bool:
        """New, or past the suppression window; a snooze holds every notification until its
        time, and the first repeat after it is notified whatever the window says."""
        if row.snoozed_until is not None:
            if now < row.snoozed_until:
                return False
            row.snoozed_until = None
            return True
        return should_notify(row.last_notified, now, window)

    @staticmethod
    def _new_row(signal: AlertSignal, now: datetime) -> AlertRow:
        fields = signal.model_dump(mode="json")
        return AlertRow(**fields, fingerprint=signal.fingerprint(), open_key=signal.fingerprint(),
                        status=AlertStatus.OPEN.value, count=1, first_seen=now, last_seen=now,
                        last_notified=None, acknowledged_by=None, resolved_by=None)

    @staticmethod
    def _repeat(row: AlertRow, signal: AlertSignal, now: datetime) -> None:
        row.count += 1
        row.last_seen = now
        row.title, row.detail, row.value, row.run_url = (signal.title, signal.detail,
                                                         signal.value, signal.run_url)
        if SEVERITY_RANK[signal.severity] > SEVERITY_RANK[Severity(row.severity)]:
            row.severity = signal.severity.value

    @staticmethod
    def _queue(session: Session, alert_id: int, channels: list[str], kind: str,
               now: datetime) -> None:
        for channel in channels:
            session.add(DeliveryRow(alert_id=alert_id, channel=channel, kind=kind,
                                    status="pending", attempts=0, created_at=now,
                                    next_attempt_at=now))

    def acknowledge(self, alert_id: int, actor: str) -> Alert:
        with self.registry.transaction() as session:
            row = self._locked(session, alert_id)
            if row.status != AlertStatus.OPEN:
                raise IllegalTransitionError(f"alert {alert_id} is {row.status}, not open")
            row.status, row.acknowledged_by = AlertStatus.ACKNOWLEDGED.value, actor
            self._audit(session, row, actor, "alert.acknowledged")
            return Alert.model_validate(row)

    def resolve(self, alert_id: int, actor: str) -> Alert:
        """Resolve; every channel that was told of the alert is told it is resolved (a
        ServiceNow incident is closed)."""
        with self.registry.transaction() as session:
            row = self._locked(session, alert_id)
            if row.status == AlertStatus.RESOLVED:
                raise IllegalTransitionError(f"alert {alert_id} is already resolved")
            row.status, row.resolved_by, row.open_key = AlertStatus.RESOLVED.value, actor, None
            told = session.execute(
                select(DeliveryRow.channel).where(DeliveryRow.alert_id == alert_id).distinct()
            ).scalars()
            self._queue(session, row.id, sorted(told), "resolved", utcnow())
            self._audit(session, row, actor, "alert.resolved")
            return Alert.model_validate(row)

    def snooze(self, alert_id: int, until: datetime, actor: str,
               now: datetime | None = None) -> Alert:
        """Hold the alert's notifications until `until` (naive UTC); it stays open, repeats
        are counted, and the first repeat after that time is notified again."""
        now = now or utcnow()
        if until <= now:
            raise InvalidInputError(f"until: {until:%Y-%m-%d %H:%M} UTC is not in the future")
        with self.registry.transaction() as session:
            row = self._locked(session, alert_id)
            if row.status == AlertStatus.RESOLVED:
                raise IllegalTransitionError(f"alert {alert_id} is resolved: nothing to snooze")
            row.snoozed_until, row.snoozed_by = until, actor
            self._audit(session, row, actor, "alert.snoozed",
                        until=until.isoformat(timespec="seconds"))
            return Alert.model_validate(row)

    def _audit(self, session: Session, row: AlertRow, actor: str, action: str,
               **extra: str) -> None:
        self.registry.append_audit(session, actor=actor, action=action, entity="alert",
                                   entity_id=str(row.id), model=row.model,
                                   detail={"title": row.title, "fingerprint": row.fingerprint,
                                           **extra})

    @staticmethod
    def _locked(session: Session, alert_id: int) -> AlertRow:
        row = session.execute(
            select(AlertRow).where(AlertRow.id == alert_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no alert with id {alert_id}")
        return row

    def list(self, status: AlertStatus | None = None, model: str | None = None) -> list[Alert]:
        with self.registry.transaction() as session:
            query = select(AlertRow).order_by(AlertRow.last_seen.desc(), AlertRow.id.desc())
            if status is not None:
                query = query.where(AlertRow.status == status.value)
            if model is not None:
                query = query.where(AlertRow.model == model)
            return [Alert.model_validate(r) for r in session.execute(query).scalars()]

    def get(self, alert_id: int) -> Alert:
        with self.registry.transaction() as session:
            return Alert.model_validate(self._locked(session, alert_id))

    # ---- outbox ----------------------------------------------------------------------------

    def due_deliveries(self, now: datetime) -> list[tuple[int, str, str, Alert]]:
        """(delivery id, channel, kind, alert) of every pending delivery that is due."""
        with self.registry.transaction() as session:
            rows = session.execute(
                select(DeliveryRow, AlertRow)
                .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
                .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
                .order_by(DeliveryRow.id)
            ).all()
            return [(d.id, d.channel, d.kind, Alert.model_validate(a)) for d, a in rows]

    def record_attempt(self, delivery_id: int, outcome: str, error: str | None,
                       next_attempt_at: datetime | None = None,
                       external_ref: str | None = None) -> None:
        """outcome: sent | transient (stays pending until next_attempt_at) | permanent."""
        now = utcnow()
        with self.registry.transaction() as session:
            row = session.execute(
                select(DeliveryRow).where(DeliveryRow.id == delivery_id).with_for_update()
            ).scalar_one()
            session.add(DeliveryAttemptRow(delivery_id=delivery_id, at=now, outcome=outcome,
                                           error=error))
            row.attempts += 1
            row.last_error = error
            if outcome == "sent":
                row.status, row.delivered_at, row.external_ref = "sent", now, external_ref
            elif outcome == "permanent":
                row.status = "failed"
            else:
                row.next_attempt_at = next_attempt_at or now

    def deliveries(self, alert_id: int) -> list[DeliveryRecord]:
        with self.registry.transaction() as session:
            rows = session.execute(
                select(DeliveryRow).where(DeliveryRow.alert_id == alert_id).order_by(DeliveryRow.id)
            ).scalars()
            return [DeliveryRecord.model_validate(r) for r in rows]
