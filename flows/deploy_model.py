"""deploy-model: put a version on the runtime whose tags match, and record it. Anyone who
reaches Prefect may run it, so it never deploys to production and names no person: its audited
actor is the flow itself."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect import runtime as runtime_info
from prefect.cache_policies import NO_CACHE

from flows.alerts import raise_alert
from mlc_tasks import runtimes
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import DeployRefusedError, MlcError, TransientError
from mlc_tasks.registry.refusals import record_refusal
from mlc_tasks.resources import resources
from mlc_tasks.run_requests import refuse_production

ACTOR = "deploy-model"


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


@flow(name="deploy-model")
def deploy_model(model: str, version: int, tags: dict[str, str], reason: str = "") -> str:
    """Deploy version `version` of `model` onto the one runtime matching `tags` (not
    production)."""
    logger = get_run_logger()
    ctx = resources()
    prod = ctx.policy().deployment.prod
    try:
        refuse_production(tags, prod, "tags")
        record = ctx.registry.get_version(model, version)
        runtime = ctx.choose_runtime(tags)
        refuse_production(runtime.tags, prod, "runtime")
    except DeployRefusedError as exc:  # someone with Prefect access tried: on the record
        record_refusal(ctx.registry, actor=ACTOR, action="deploy.refused", model=model,
                       reason=str(exc), detail={"version": version, "tags": tags,
                                                "flow_run": str(runtime_info.flow_run.id)})
        raise
    client = ctx.runtime_client(runtime.url)
    try:
        done = deploy_version(ctx.registry, client, runtime, record, ACTOR, reason, prod=prod)
    except MlcError as exc:
        raise_alert(deploy_failed(record.model, record.number, runtime.name,
                                  runtime.tags.get("env"), exc))
        raise
    outcome = f"{record.ref} {'deployed on' if done else 'already on'} {runtime.name}"
    logger.info(outcome)
    return outcome
