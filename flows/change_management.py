"""Change management after a promotion: the replaced champion stays ready for rollback and is
retired once the policy's grace period has passed; with `auto_rollback` on, a critical breach
of a version promoted within its grace period puts the previous champion back, alerts, and
asks a person to review (retry: serve the version again; abort: retire it)."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger

from flows.alerts import raise_alert
from flows.human_tasks import open_task
from flows.on_model_changed import Aborted, await_review, deploy_stage, review_terms
from mlc_tasks import events, runtimes
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.approvals import ROLLBACK_STEP
from mlc_tasks.errors import InvalidInputError, TransientError
from mlc_tasks.evaluation import check_thresholds
from mlc_tasks.lifecycle import State as Life
from mlc_tasks.policy import RetrainingRule
from mlc_tasks.registry import DeploymentRecord, TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources
from mlc_tasks.task_records import TaskKind


def rule_for(ctx: Resources, model: str) -> RetrainingRule:
    record = ctx.registry.get_model(model)
    return ctx.policy().retraining_for(model, record.type, record.risk_tier)


def replaced_at(history: list[DeploymentRecord], version_id: str) -> datetime | None:
    """When production stopped serving the version; None while it still does (or never did)."""
    prod = [d for d in history if d.version_id == version_id and d.env == "prod"]
    if not prod or any(d.replaced_at is None for d in prod):
        return None
    return max(d.replaced_at for d in prod if d.replaced_at is not None)


@flow(name="retire-champions")
def retire_champions() -> list[str]:
    """Retire every replaced champion whose grace period has passed."""
    ctx, now, retired = resources(), utcnow(), []
    for model in ctx.registry.list_models():
        grace = rule_for(ctx, model.name).grace_period
        champion = ChampionBook(ctx.registry).champion(model.name)
        history = ctx.registry.deployments(model.name)
        for version in ctx.registry.list_versions(model.name):
            if version.state != Life.DEPLOYED or (champion and version.id == champion.id):
                continue
            ended = replaced_at(history, version.id)
            if ended is not None and now - ended >= grace:
                ctx.registry.transition(version.id, Life.RETIRED, "retire-champions",
                                        f"replaced in production on {ended:%Y-%m-%d %H:%M} UTC; "
                                        f"the grace period of {grace} has passed")
                retired.append(version.ref)
    get_run_logger().info("retired %s", ", ".join(retired) or "nothing")
    return retired


def critical_breaches(rule: RetrainingRule, results: list[TestResult]) -> list[ThresholdCheck]:
    """The policy's critical bounds checked on what a backtest or monitor measured (a metric
    a result did not measure is not a breach of it)."""
    found = []
    for result in results:
        measured = {k: v for k, v in rule.critical.items() if k in result.metrics}
        found += [c for c in check_thresholds(result.metrics, measured) if not c.passed]
    return found


def rollback_if_critical(ctx: Resources, version: VersionRecord, results: list[TestResult],
                         source: str) -> VersionRecord | None:
    """Put the previous champion back when the policy says so; returns it, or None."""
    rule = rule_for(ctx, version.model)
    breaches = critical_breaches(rule, results)
    if not rule.auto_rollback or not breaches:
        return None
    history = ctx.registry.deployments(version.model)
    serving = [d for d in history if d.version_id == version.id and d.env == "prod"
               and d.replaced_at is None]
    if not serving or utcnow() - serving[-1].deployed_at > rule.grace_period:
        return None  # not in production, or promoted too long ago: people decide
    runtime = ctx.registry.get_runtime(serving[-1].runtime)
    try:
        target = runtimes.rollback_target(history, runtime.name)
    except InvalidInputError as exc:  # nothing earlier to go back to
        get_run_logger().warning("%s: critical breach, but no rollback: %s", version.ref, exc)
        return None
    previous = ctx.registry.get_version(version.model, target.version_number)
    if previous.state != Life.DEPLOYED:
        return None  # retired (or failed) since: nothing ready to go back to
    what = "; ".join(f"{c.metric} {c.value if c.value is None else round(c.value, 4)} "
                     f"(critical {c.op} {c.threshold:g})" for c in breaches)
    runtimes.deploy_version(ctx.registry, ctx.runtime_client(runtime.url), runtime, previous,
                            source, f"automatic rollback from {version.ref}: {what}",
                            prod=ctx.policy().deployment.prod)
    raise_alert(AlertSignal(
        severity=Severity.CRITICAL, model=version.model, version=version.number, source=source,
        monitor="auto-rollback", metric="rollback", window=f"v{version.number}",
        title=f"{version.ref} rolled back to {previous.ref}: {what}"[:300],
        detail=f"{version.ref} was promoted {serving[-1].deployed_at:%Y-%m-%d %H:%M} UTC, within "
               f"the grace period of {rule.grace_period}; production serves {previous.ref} "
               "again. A review task asks whether to serve it again or retire it."))
    try:  # the event starts rollback-review, which asks a person
        events.emit(events.rolled_back_event(version, previous.number, what), ctx.prefect_api_url())
    except TransientError as exc:
        get_run_logger().error("%s; start the review by hand: prefect deployment run "
                               "rollback-review/rollback-review -p model=%s -p number=%d", exc,
                               version.model, version.number)
    return previous


@flow(name="rollback-review")
def rollback_review(model: str, number: int, breach: str = "") -> str:
    """After an automatic rollback, a person decides: retry serves the version in production
    again (a false alarm), abort retires it. Started by the rolled-back event."""
    ctx = resources()
    version = ctx.registry.get_version(model, number)
    if version.state != Life.DEPLOYED:
        return f"{version.ref} is {version.state}: nothing to review"
    task = open_task(ctx, TaskKind.REVIEW, version.id, ROLLBACK_STEP, **review_terms(ctx),
                     detail={"error": f"rolled back: {breach}"[:2000],
                             "where_to_look": "`mlc results NAME` and the rollback alert"})
    try:
        await_review(ctx, version, task, f"automatic rollback: {breach}")
    except Aborted:
        ctx.registry.transition(version.id, Life.RETIRED, "rollback-review",
                                "the rollback was confirmed by review")
        return f"{version.ref} retired"
    deploy_stage(ctx, version, "prod")
    return f"{version.ref} serves production again"
