"""deploy-model and rollback-model: put a version on the runtime whose tags match, or put back
the version a stage served before its current one, and record it. Anyone who reaches Prefect
may run them with any parameters, so on their own they never touch production and name no
person: their audited actor is the flow itself. A person's manual deploy or rollback comes
through the control-plane API, which records who asked for what under a request id and runs
the flow with it as `request`: then, once, the flow acts as that person for exactly what they
asked, production included (approved versions only; mlc_tasks/run_requests.py). Either way a
runtime that does not answer is retried, and a failed deploy raises an alert."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect import runtime as runtime_info
from prefect.cache_policies import NO_CACHE

from flows.alerts import raise_alert
from flows.run_names import run_name
from mlc_tasks import runtimes
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import DeployRefusedError, InvalidInputError, MlcError, TransientError
from mlc_tasks.registry import RuntimeRecord, VersionRecord
from mlc_tasks.registry.refusals import record_refusal
from mlc_tasks.resources import Resources, resources
from mlc_tasks.run_requests import (
    RequestKind,
    refuse_production,
    refuse_unrequested,
    take_request,
)

ACTOR = "deploy-model"
ROLLBACK_ACTOR = "rollback-model"
STAGES = ("prod", "qa")


def _transient_only(_task: Any, _run: Any, state: Any) -> bool:
    """Retry a runtime that did not answer; never retry a refusal."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


deploy_version = task(
    name="deploy-version", retries=2, retry_delay_seconds=[2, 10],
    retry_condition_fn=_transient_only, cache_policy=NO_CACHE,  # a side effect: never cached
)(runtimes.deploy_version)


def deploy_failed(model: str, number: int, runtime: str, env: str | None,
                  exc: Exception) -> AlertSignal:
    return AlertSignal(
        severity=Severity.CRITICAL if env == "prod" else Severity.WARNING,
        model=model, version=number, source="deploy-model", monitor="deployment",
        metric=runtime, window=f"v{number}",
        title=f"deploy of {model}:{number} on {runtime} failed", detail=str(exc))


@flow(name="deploy-model", flow_run_name=run_name("deploy-model"))
def deploy_model(model: str, version: int, tags: dict[str, str], reason: str = "",
                 request: str = "") -> str:
    """Deploy version `version` of `model` onto the one runtime matching `tags`: not
    production, unless `request` is a person's request for exactly this deploy (recorded by
    the control-plane API, carried out once, as them).

    Args:
        model: the registered model
        version: the version number to deploy
        tags: runtime tags that must all match, e.g. {"env": "qa"}
        reason: why, for the audit log
        request: the id of a person's recorded deploy request (production needs one)
    """
    logger = get_run_logger()
    ctx = resources()
    try:
        actor, record, runtime = checked_deploy(ctx, model, version, tags, reason, request)
    except DeployRefusedError as exc:  # someone with Prefect access tried: on the record
        refused(ctx, RequestKind.DEPLOY, ACTOR, model, exc,
                {"version": version, "tags": tags, "request": request[:64]})
        raise
    done = deploy_or_alert(ctx, runtime, record, actor, reason, ACTOR)
    outcome = f"{record.ref} {'deployed on' if done else 'already on'} {runtime.name}"
    logger.info(outcome)
    return outcome


@flow(name="rollback-model", flow_run_name=run_name("rollback-model"))
def rollback_model(model: str, env: str = "prod", reason: str = "rollback",
                   request: str = "") -> str:
    """Put back the version `model` served on stage `env` (prod or qa) before its current one.
    Production only at a person's request for exactly this rollback (`mlc rollback`, recorded
    by the control-plane API, carried out once, as them); QA also without one.

    Args:
        model: the registered model
        env: the stage, prod or qa
        reason: why, for the audit log
        request: the id of a person's recorded rollback request (production needs one)
    """
    logger = get_run_logger()
    ctx = resources()
    try:
        actor, runtime = checked_rollback(ctx, model, env, reason, request)
    except DeployRefusedError as exc:
        refused(ctx, RequestKind.ROLLBACK, ROLLBACK_ACTOR, model, exc,
                {"env": env[:20], "request": request[:64]})
        raise
    target = runtimes.rollback_target(ctx.registry.deployments(model), runtime.name)
    record = ctx.registry.get_version(model, target.version_number)
    done = deploy_or_alert(ctx, runtime, record, actor, f"{reason}: back to {record.ref}",
                           ROLLBACK_ACTOR)
    outcome = f"{record.ref} {'back on' if done else 'already on'} {runtime.name}"
    logger.info(outcome)
    return outcome


def checked_deploy(ctx: Resources, model: str, version: int, tags: dict[str, str],
                   reason: str, request: str) -> tuple[str, VersionRecord, RuntimeRecord]:
    """Who deploys what where: the person who asked exactly this (production allowed), or,
    without a request, this flow (production refused, asked or found)."""
    if request:
        actor = take_request(ctx.registry, RequestKind.DEPLOY, request, model,
                             {"version": version, "tags": tags, "reason": reason}, ACTOR,
                             _flow_run())
        return (actor, ctx.registry.get_version(model, version),
                ctx.choose_runtime(tags, model))
    prod = ctx.policy().deployment.prod
    refuse_production(tags, prod, "tags")
    record = ctx.registry.get_version(model, version)
    runtime = ctx.choose_runtime(tags, model)
    refuse_production(runtime.tags, prod, "runtime")
    return ACTOR, record, runtime


def checked_rollback(ctx: Resources, model: str, env: str, reason: str, request: str
                     ) -> tuple[str, RuntimeRecord]:
    """Who rolls back which runtime: the person who asked exactly this, or, without a
    request, this flow (never production)."""
    if env not in STAGES:
        raise InvalidInputError(f"env: '{env[:20]}' is not prod or qa")
    stages = ctx.policy().deployment
    wanted = stages.prod if env == "prod" else stages.qa
    if request:
        actor = take_request(ctx.registry, RequestKind.ROLLBACK, request, model,
                             {"env": env, "reason": reason}, ROLLBACK_ACTOR, _flow_run())
        return actor, ctx.choose_runtime(wanted, model)
    refuse_unrequested(wanted, stages.prod, "env", ROLLBACK_ACTOR, "mlc rollback")
    runtime = ctx.choose_runtime(wanted, model)
    refuse_unrequested(runtime.tags, stages.prod, "runtime", ROLLBACK_ACTOR, "mlc rollback")
    return ROLLBACK_ACTOR, runtime


def deploy_or_alert(ctx: Resources, runtime: RuntimeRecord, record: VersionRecord, actor: str,
                    reason: str, source: str) -> Any:
    """Deploy as `actor` (retried while the runtime does not answer); a failure alerts, from
    `source` (the flow)."""
    client = ctx.runtime_client(runtime.url)
    try:
        return deploy_version(ctx.registry, client, runtime, record, actor, reason,
                              prod=ctx.policy().deployment.prod)
    except MlcError as exc:
        signal = deploy_failed(record.model, record.number, runtime.name,
                               runtime.tags.get("env"), exc)
        raise_alert(signal.model_copy(update={"source": source}))
        raise


def refused(ctx: Resources, kind: RequestKind, actor: str, model: str, exc: Exception,
            asked: dict[str, Any]) -> None:
    """A refused run on the record: what it was given, and why it was refused."""
    record_refusal(ctx.registry, actor=actor, action=kind.refused, model=model,
                   reason=str(exc), detail={**asked, "flow_run": _flow_run()})


def _flow_run() -> str:
    return str(runtime_info.flow_run.id)
