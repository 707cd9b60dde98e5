"""A model's evidence over a window: only what falls inside it, results summarised per version
and kind, decisions with who made them, and the markdown a reviewer reads."""

from __future__ import annotations

from datetime import timedelta

from mlc_tasks.audit import AuditEvent
from mlc_tasks.evidence import bundle
from tests.mlc_tasks.result_records import T0, check, deployment, result, version

DAY = timedelta(days=1)


def event(action: str, actor: str, days: int, reason: str = "") -> AuditEvent:
    return AuditEvent(seq=days, at=T0 + days * DAY, actor=actor, action=action, entity="task",
                      entity_id="1", model="credit-risk", reason=reason, detail={},
                      evidence_sha256=None, prev_hash="0" * 64, hash="1" * 64)


def test_the_bundle_keeps_the_window_and_summarises_results() -> None:
    v1, v2 = version(1), version(2)
    results = [result("backtest", [check(value=0.8)], created=T0 + 1 * DAY, version_id="v2"),
               result("backtest", [check(value=0.6)], created=T0 + 2 * DAY, version_id="v2"),
               result("test", [check(value=0.9)], created=T0 - 30 * DAY, version_id="v1"),
               result("drift", created=T0 + 3 * DAY, version_id="v2")]
    audit = [event("task.decision", "rita", 1, "fine"),
             event("task.decision_unverified", "unverified", 1),  # no decision: nobody proved
             event("version.retired", "omar", 2, "quarterly review"),
             event("task.decision", "sam", -10)]  # before the window
    found = bundle("credit-risk", T0, T0 + 5 * DAY, v2, [v1, v2], results,
                   [deployment(1, 1, -60 * 24 * 20), deployment(2, 2, 60)], [], audit)
    assert [d.version_number for d in found.deployments] == [2]
    assert [(r.version, r.kind, r.runs, r.passed, r.last.metrics) for r in found.results] == [
        (2, "backtest", 2, 1, {"roc_auc": 0.6}), (2, "drift", 1, 1, {})]
    assert [(e.actor, e.action) for e in found.decisions] == [
        ("rita", "task.decision"), ("omar", "version.retired")]
    text = found.markdown()
    assert "In production now: **credit-risk:2**" in text
    assert "| v2 | backtest | 2 | 1 | roc_auc 0.6000 |" in text
    assert "version.retired by **omar**: quarterly review" in text
    assert "### Alerts\n- none in the window" in text


def test_an_empty_window_says_so() -> None:
    text = bundle("credit-risk", T0, T0 + DAY, None, [], [], [], [], []).markdown()
    assert "In production now: **nothing**" in text
    assert text.count("none in the window") == 3 and "no results in the window" in text
