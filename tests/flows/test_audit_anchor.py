"""audit-anchor on a real Prefect server: anchors the head, and a broken log or edited state
tables fail the run with a critical alert."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from flows.audit_anchor import audit_anchor
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import AuditChainError
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.mlc_tasks.audit_attack import rewrite_chain


@pytest.fixture
def logged(local_settings: MlcSettings, examples_dir: Path,
           monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("MLC_HOME", str(local_settings.home))  # what the flow's resources read
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    submit_package(examples_dir / "house-prices", registry,
                   ArtifactStore(local_settings.artifact_url()), list(REVIEWED_TYPES), "ana")
    return registry


def test_the_head_is_anchored_once(logged: Registry, local_settings: MlcSettings) -> None:
    sink = local_settings.home / "audit-anchors"
    done = audit_anchor()
    [written] = sink.iterdir()
    assert done == f"anchored event 2 in {written}"
    assert audit_anchor().startswith("already anchored event 2 in")
    assert len(list(sink.iterdir())) == 1 and AlertBook(logged).list() == []


def test_a_broken_log_is_not_anchored_and_alerts(logged: Registry,
                                                 local_settings: MlcSettings) -> None:
    rewrite_chain(logged.engine, 2, actor="mallory")
    with pytest.raises(AuditChainError, match="not anchored: event 2 was re-sealed"):
        audit_anchor()
    assert not (local_settings.home / "audit-anchors").exists()
    [alert] = AlertBook(logged).list(model="audit-log")
    assert (alert.severity, alert.metric, alert.title) == (
        "critical", "chain", "the audit log is broken")
    assert "event 2 was re-sealed without the audit key" in alert.detail


def test_edited_state_tables_are_anchored_but_alert(logged: Registry) -> None:
    with logged.engine.begin() as conn:
        conn.execute(text("UPDATE versions SET state = 'approved'"))
    with pytest.raises(AuditChainError, match="anchored event 2 in .*, but versions row "
                                              "house-prices:1"):
        audit_anchor()
    [alert] = AlertBook(logged).list(model="audit-log")
    assert alert.metric == "state" and "is 'approved', but its events leave it" in alert.detail
