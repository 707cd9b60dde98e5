"""Refused attempts in the audit log: what was asked, by whom (as far as known) and why it was
refused. The refusal writes nothing else, so the log shows the attempt and nothing moved."""

from __future__ import annotations

from typing import Any

from mlc_tasks.registry.store import Registry


def record_refusal(registry: Registry, *, actor: str, action: str, model: str, reason: str,
                   detail: dict[str, Any]) -> None:
    with registry.transaction() as session:
        registry.append_audit(session, actor=actor, action=action, entity="model",
                              entity_id=model[:63], model=model[:63], reason=reason[:2000],
                              detail=detail)
