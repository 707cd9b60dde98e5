"""Change management after a promotion: the replaced champion stays ready for rollback and is
retired once the policy's grace period has passed; with `auto_rollback` on, a critical breach
of a version promoted within its grace period puts the previous champion back, alerts, and
asks a person to review (retry: serve the version again; abort: retire it)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.alerts import raise_alert
from flows.human_tasks import open_task
from flows.run_names import run_name
from flows.steps import await_review, deploy_stage, review_terms
from mlc_tasks import events, production, rollback, runtimes
from mlc_tasks.approvals import ROLLBACK_STEP
from mlc_tasks.errors import StepAbortedError, TransientError
from mlc_tasks.lifecycle import State as Life
from mlc_tasks.policy import RetrainingRule
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources
from mlc_tasks.task_records import TaskKind


def rule_for(ctx: Resources, model: str) -> RetrainingRule:
    record = ctx.registry.get_model(model)
    return ctx.policy().retraining_for(model, record.type, record.risk_tier)


@flow(name="retire-champions")
def retire_champions() -> list[str]:
    """Retire every replaced champion whose grace period has passed."""
    ctx, now, retired = resources(), utcnow(), []
    env = production.prod_env(ctx.policy().deployment.prod)
    for model in ctx.registry.list_models():
        grace = rule_for(ctx, model.name).grace_period
        champion = ChampionBook(ctx.registry).champion(model.name)
        history = ctx.registry.deployments(model.name)
        for version in ctx.registry.list_versions(model.name):
            ended = rollback.retirement_due(version, champion.id if champion else None,
                                            history, env, grace, now)
            if ended is not None:
                runtimes.retire_version(ctx.registry, ctx.runtime_client, version,
                                        "retire-champions",
                                        rollback.retirement_reason(ended, grace))
                retired.append(version.ref)
    get_run_logger().info("retired %s", ", ".join(retired) or "nothing")
    return retired


def rollback_if_critical(ctx: Resources, version: VersionRecord, results: list[TestResult],
                         source: str) -> VersionRecord | None:
    """Put the previous champion back when the policy says so; returns it, or None."""
    rule, prod = rule_for(ctx, version.model), ctx.policy().deployment.prod
    plan = rollback.plan_rollback(rule, version, results, ctx.registry.deployments(version.model),
                                  production.prod_env(prod), utcnow())
    if plan is None:
        return None
    if plan.target is None:
        get_run_logger().warning("%s: critical breach, but no rollback: %s", version.ref,
                                 plan.refusal)
        return None
    previous = ctx.registry.get_version(version.model, plan.target.version_number)
    if not rollback.ready_to_serve(previous):
        return None
    runtime = ctx.registry.get_runtime(plan.serving.runtime)
    runtimes.deploy_version(ctx.registry, ctx.runtime_client(runtime.url), runtime, previous,
                            source, f"automatic rollback from {version.ref}: {plan.breach}",
                            prod=prod)
    raise_alert(rollback.rolled_back_signal(version, previous, plan, rule.grace_period, source))
    start_review(ctx, version, previous, plan.breach)
    return previous


def start_review(ctx: Resources, version: VersionRecord, previous: VersionRecord,
                 breach: str) -> None:
    """The rolled-back event starts rollback-review, which asks a person; when it cannot be
    sent, the log says how to start the review by hand."""
    try:
        events.emit(events.rolled_back_event(version, previous.number, breach),
                    ctx.prefect_api_url())
    except TransientError as exc:
        get_run_logger().error("%s; start the review by hand: prefect deployment run "
                               "rollback-review/rollback-review -p model=%s -p number=%d", exc,
                               version.model, version.number)


ROLLBACK_CHOICES = ("Choose `retry` (serve the version in production again: a false alarm) or "
                    "`abort` (retire it; the previous champion stays).")


@flow(name="rollback-review", flow_run_name=run_name("rollback-review"))
def rollback_review(model: str, number: int, breach: str = "") -> str:
    """After an automatic rollback, a person decides: retry serves the version in production
    again (a false alarm), abort retires it. Started by the rolled-back event.

    Args:
        model: the model that was rolled back
        number: the version that was taken out of production
        breach: what made the rollback happen (the alert's title)
    """
    ctx = resources()
    version = ctx.registry.get_version(model, number)
    if version.state != Life.DEPLOYED:
        return f"{version.ref} is {version.state}: nothing to review"
    task = open_task(ctx, TaskKind.REVIEW, version.id, ROLLBACK_STEP, **review_terms(),
                     detail={"error": f"rolled back: {breach}"[:2000],
                             "where_to_look": "`mlc results NAME` and the rollback alert",
                             "how_to_decide": ROLLBACK_CHOICES})
    try:
        await_review(version, task, f"automatic rollback: {breach}")
    except StepAbortedError:
        runtimes.retire_version(ctx.registry, ctx.runtime_client, version, "rollback-review",
                                "the rollback was confirmed by review")
        return f"{version.ref} retired"
    deploy_stage(version, "prod")
    return f"{version.ref} serves production again"
