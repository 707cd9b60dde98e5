"""Accepted inbound notifications: the notification id is the primary key, so the database, not
a check-then-insert, decides which of two identical requests is the first."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from mlc_tasks.notifications import Notification
from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import NotificationRow


class NotificationBook:
    """Accept each notification id once, audited; release it when acting on it failed."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def accept(self, notification: Notification, body_sha256: str, actor: str) -> bool:
        """Record the notification and its audit event in one transaction; False (nothing
        written) when its id was accepted before."""
        try:
            with self.registry.transaction() as session:
                session.add(NotificationRow(id=notification.id, model=notification.model,
                                            action=notification.action, body_sha256=body_sha256,
                                            received_at=utcnow()))
                session.flush()  # the duplicate key fails here, before the audit head is locked
                self.registry.append_audit(
                    session, actor=actor, action="notification.accepted", entity="notification",
                    entity_id=notification.id, model=notification.model,
                    detail={"action": notification.action, "data": notification.data,
                            "note": notification.note},
                    evidence_sha256=body_sha256)
        except IntegrityError:
            return False
        return True

    def release(self, notification: Notification, actor: str, reason: str) -> None:
        """Forget an accepted notification that could not be acted on, so the sender's retry
        with the same id is accepted; audited, since its acceptance was."""
        with self.registry.transaction() as session:
            session.execute(delete(NotificationRow).where(NotificationRow.id == notification.id))
            self.registry.append_audit(
                session, actor=actor, action="notification.released", entity="notification",
                entity_id=notification.id, model=notification.model, reason=reason)

    def seen(self, notification_id: str) -> bool:
        with self.registry.transaction() as session:
            return session.get(NotificationRow, notification_id) is not None
