"""audit-anchor: every hour, check the audit log against its newest anchor and write its head
outside the database (MLC_AUDIT_ANCHOR_URL). A broken log is not anchored; a broken log, or
state tables that disagree with it, raise a critical alert and fail the run."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.alerts import raise_alert
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.audit_anchor import anchor_log
from mlc_tasks.errors import AuditChainError, AuditKeyError
from mlc_tasks.resources import resources

FLOW = "audit-anchor"
TITLES = {"chain": "the audit log is broken",
          "state": "the state tables disagree with the audit log"}


def audit_alert(what: str, problem: str) -> AlertSignal:
    """One open alert per kind of problem (the chain, the state tables), however often seen."""
    return AlertSignal(severity=Severity.CRITICAL, model="audit-log", source=FLOW,
                       monitor="audit", metric=what, title=TITLES[what],
                       detail=f"{problem}\n\nSee `mlc audit verify`.")


@flow(name=FLOW)
def audit_anchor() -> str:
    """Anchor the audit log's head (not again when it has not moved); returns what was done."""
    ctx = resources()
    try:
        done = anchor_log(ctx.registry, ctx.settings.anchor_url())
    except (AuditChainError, AuditKeyError) as exc:
        raise_alert(audit_alert("chain", str(exc)))
        raise
    outcome = (f"{'anchored' if done.written else 'already anchored'} event {done.anchor.seq} "
               f"in {done.anchor.uri}")
    get_run_logger().info(outcome)
    if done.report.disagreements:
        raise_alert(audit_alert("state", "\n".join(done.report.disagreements)))
        raise AuditChainError(f"{outcome}, but {done.report.disagreements[0]}")
    return outcome
