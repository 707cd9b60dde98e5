"""Change management's rules after a promotion: the replaced champion stays ready for rollback
for the policy's grace period and is retired after it; with `auto_rollback` on, a critical
breach of a version promoted within its grace period puts the previous champion back."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from mlc_tasks import production
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.evaluation import check_thresholds
from mlc_tasks.lifecycle import State
from mlc_tasks.policy import RetrainingRule
from mlc_tasks.registry import DeploymentRecord, TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.runtimes import rollback_target


def critical_breaches(rule: RetrainingRule, results: list[TestResult]) -> list[ThresholdCheck]:
    """The policy's critical bounds checked on what a backtest or monitor measured (a metric
    a result did not measure is not a breach of it)."""
    found = []
    for result in results:
        measured = {k: v for k, v in rule.critical.items() if k in result.metrics}
        found += [c for c in check_thresholds(result.metrics, measured) if not c.passed]
    return found


class RollbackPlan(BaseModel):
    """Production goes back from the breached version: how it serves it now, and the
    deployment to go back to (None, with the reason, when there is nothing earlier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    breaches: list[ThresholdCheck]
    serving: DeploymentRecord
    target: DeploymentRecord | None
    refusal: str = ""

    @property
    def breach(self) -> str:
        """The breaches in one line, for the audit reason, the alert and the review."""
        return "; ".join(f"{c.metric} {c.value if c.value is None else round(c.value, 4)} "
                         f"(critical {c.op} {c.threshold:g})" for c in self.breaches)


def plan_rollback(rule: RetrainingRule, version: VersionRecord, results: list[TestResult],
                  history: list[DeploymentRecord], env: str, now: datetime
                  ) -> RollbackPlan | None:
    """A plan when the policy rolls back by itself: auto_rollback on, a critical breach, and
    production (`env`) serving the version since less than the grace period. None when it
    does not: no breach, not in production, or promoted too long ago (then people decide)."""
    breaches = critical_breaches(rule, results)
    if not rule.auto_rollback or not breaches:
        return None
    current = production.serving(history, version.id, env)
    if current is None or now - current.deployed_at > rule.grace_period:
        return None
    try:
        target = rollback_target(history, current.runtime)
    except InvalidInputError as exc:  # the runtime served nothing earlier
        return RollbackPlan(breaches=breaches, serving=current, target=None, refusal=str(exc))
    return RollbackPlan(breaches=breaches, serving=current, target=target)


def ready_to_serve(previous: VersionRecord) -> bool:
    """Only a replaced champion still kept for rollback (deployed) goes back into production;
    one retired or failed since does not."""
    return previous.state == State.DEPLOYED


def rolled_back_signal(version: VersionRecord, previous: VersionRecord, plan: RollbackPlan,
                       grace: timedelta, source: str) -> AlertSignal:
    """The critical alert of an automatic rollback: one per rolled-back version."""
    return AlertSignal(
        severity=Severity.CRITICAL, model=version.model, version=version.number, source=source,
        monitor="auto-rollback", metric="rollback", window=f"v{version.number}",
        title=f"{version.ref} rolled back to {previous.ref}: {plan.breach}"[:300],
        detail=f"{version.ref} was promoted {plan.serving.deployed_at:%Y-%m-%d %H:%M} UTC, "
               f"within the grace period of {grace}; production serves {previous.ref} again. "
               "A review task asks whether to serve it again or retire it.")


def retirement_due(version: VersionRecord, champion_id: str | None,
                   history: list[DeploymentRecord], env: str, grace: timedelta, now: datetime
                   ) -> datetime | None:
    """When production (`env`) stopped serving a replaced champion whose grace period has
    passed (it is retired now); None for the champion, a version not kept for rollback, or
    one still within its grace period."""
    if version.state != State.DEPLOYED or version.id == champion_id:
        return None
    ended = production.replaced_at(history, version.id, env)
    return ended if ended is not None and now - ended >= grace else None


def retirement_reason(ended: datetime, grace: timedelta) -> str:
    return (f"replaced in production on {ended:%Y-%m-%d %H:%M} UTC; the grace period of "
            f"{grace} has passed")
