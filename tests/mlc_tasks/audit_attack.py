"""What someone with write access to the registry's database can do to its audit log, as SQL
behind the registry's back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from mlc_tasks.audit import GENESIS, AuditEvent, plain_seal, seal
from mlc_tasks.registry.tables import AuditHeadRow, AuditRow


def rewrite_chain(engine: Engine, start: int, key: bytes | None = None,
                  until: int | None = None, **changes: Any) -> None:
    """Edit event `start` and recompute every seal from there to the end (or to `until`), and
    the head: with plain sha256 as the code before keys did (key None), or with a key."""
    with Session(engine) as session, session.begin():
        rows = session.execute(select(AuditRow).order_by(AuditRow.seq)).scalars().all()
        prev = rows[start - 2].hash if start > 1 else GENESIS
        for row in rows[start - 1:until]:
            for name, value in (changes if row.seq == start else {}).items():
                setattr(row, name, value)
            fields = AuditEvent.model_validate(row, from_attributes=True).model_dump()
            row.prev_hash = prev
            row.hash = prev = seal(fields, prev, key) if key else plain_seal(fields, prev)
            session.flush()
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        if until is None:
            head.hash = prev


def truncate_chain(engine: Engine, keep: int) -> None:
    """Remove every event after `keep` and make the head say the log ends there."""
    with Session(engine) as session, session.begin():
        last = session.get(AuditRow, keep)
        assert last is not None
        session.execute(delete(AuditRow).where(AuditRow.seq > keep))
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        head.seq, head.hash = keep, last.hash
