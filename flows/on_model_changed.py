"""on-model-changed: a submitted version's way to production — train (if asked), test, scan,
approve (per policy), deploy to QA then production — with a human review whenever a step
fails. Started by the `mlc.model.ready` event that `mlc submit` emits.

Every step checks the registry first, so a rerun (or a run restarted by `mlc up` while a
task was pending) redoes nothing that is finished and deploys nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from deployments.context import Context
from flows.alerts import current_run_url, raise_alert
from flows.deploy_model import deploy_failed, deploy_version
from flows.human_tasks import open_task, wait_for_decision
from flows.test_model import test_model
from mlc_tasks import approvals, runtimes, training
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import MlcError
from mlc_tasks.lifecycle import State as Life
from mlc_tasks.packages import ModelType
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.scan import ScanResult, scan_version
from mlc_tasks.submission import stored_spec
from mlc_tasks.task_records import HumanTask, TaskKind, TaskStatus

T = TypeVar("T")
FLOW = "on-model-changed"
WHERE_TO_LOOK = {
    "train": "the training data location and the package's training spec (model.yaml)",
    "test": "the package's test data and the test-model subflow run",
    "scan": "the scan result in this run's logs; runtime capabilities with `mlc runtimes`",
    "approval": "the policy file's approvals and groups sections",
    "deploy-qa": "`mlc runtimes` (is the QA runtime up and live?) and its log",
    "deploy-prod": "`mlc runtimes` (is the production runtime up and live?) and its log",
}


class Aborted(Exception):
    """A reviewer aborted, or nobody reviewed in time: the version has ended failed."""


@task(name="train-version", cache_policy=NO_CACHE)
def train_version(version: VersionRecord) -> VersionRecord:
    ctx = Context()
    model_type = ModelType(ctx.registry.get_model(version.model).type)
    artifact = training.train_artifact(version, model_type, ctx.settings.trusted_types,
                                       ctx.store())
    return ctx.registry.attach_artifact(version.id, artifact, FLOW, "training job")


@task(name="scan-version", cache_policy=NO_CACHE)
def scan(version: VersionRecord) -> ScanResult:
    """Scan against the runtimes of both stages (a stage without a live runtime fails here,
    before anyone spends time approving)."""
    ctx = Context()
    stages = ctx.policy().deployment
    candidates = [ctx.choose_runtime(stages.qa), ctx.choose_runtime(stages.prod)]
    requirements = stored_spec(str(version.package_uri)).requirements
    result = scan_version(version, requirements, candidates)
    with ctx.registry.transaction() as session:
        ctx.registry.append_audit(
            session, actor=FLOW, action="version.scanned", entity="version",
            entity_id=version.id, model=version.model, reason=result.failures() or "passed",
            detail={"number": version.number, **result.model_dump()},
            evidence_sha256=version.artifact_sha256)
    return result


@task(name="smoke-test", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def smoke_test(url: str, version: VersionRecord) -> int:
    return runtimes.smoke_test(Context().runtime_client(url), version)


@flow(name=FLOW)
def on_model_changed(model: str, number: int) -> State:
    """Take version `number` of `model` from submission to production."""
    ctx, logger = Context(), get_run_logger()
    version = ctx.registry.get_version(model, number)
    if version.state in (Life.DEPLOYED, Life.REJECTED, Life.FAILED, Life.RETIRED):
        return Completed(message=f"{version.ref} is {version.state}: nothing to do")
    try:
        version = train_step(ctx, version)
        if not reviewed(ctx, version, "test", lambda: test_model(model, number)):
            return reject(ctx, version, "missed the policy's test thresholds")
        found = reviewed(ctx, version, "scan", lambda: stored_scan(ctx, version) or scan(version))
        if not found.passed:
            return reject(ctx, version, f"security scan: {found.failures()}")
        if not approve(ctx, version, found):
            closed = ctx.registry.get_version(model, number)
            return Completed(message=f"{closed.ref} is {closed.state}")
        for stage in ("qa", "prod"):
            reviewed(ctx, version, f"deploy-{stage}", lambda s=stage: deploy_stage(ctx, version, s))
    except Aborted as exc:
        return Failed(message=str(exc))
    logger.info("%s is in production", version.ref)
    return Completed(message=f"{version.ref} deployed to QA and production")


def train_step(ctx: Context, version: VersionRecord) -> VersionRecord:
    if version.artifact_uri is not None:
        return version
    return reviewed(ctx, version, "train", lambda: train_version(version))


def reviewed(ctx: Context, version: VersionRecord, step: str, work: Callable[[], T]) -> T:
    """Run a step; when it fails, alert and open a review task, then retry or abort as the
    reviewer decides."""
    while True:
        try:
            return work()
        except Exception as exc:  # any failure of a step goes to a person, unexpected or not
            get_run_logger().error("%s failed at %s: %s", version.ref, step, exc)
            decided = review(ctx, version, step, exc)
            if decided.status != TaskStatus.RETRY:
                raise Aborted(f"{version.ref} failed at {step}: {decided.outcome}") from exc


def review(ctx: Context, version: VersionRecord, step: str, exc: Exception) -> HumanTask:
    policy = ctx.policy()
    error = f"{type(exc).__name__}: {exc}"
    if step.startswith("deploy-") and isinstance(exc, MlcError):
        raise_alert(deploy_failed(version.model, version.number, step, step.removeprefix(
            "deploy-"), exc))
    task = open_task(ctx, TaskKind.REVIEW, version.id, step, groups=policy.reviews.groups,
                     quorum=1, deadline=policy.reviews.deadline,
                     detail={"error": error[:2000], "where_to_look": WHERE_TO_LOOK[step]})
    description = review_markdown(version, step, error, task.id)
    return wait_for_decision(ctx, task, description, lambda: ctx.policy().members(task.groups))


def review_markdown(version: VersionRecord, step: str, error: str, task_id: int) -> str:
    return "\n".join([
        f"## {version.ref} failed at **{step}**", "",
        f"```\n{error[:1500]}\n```", "",
        f"Where to look: {WHERE_TO_LOOK[step]}.", "",
        f"Run: {current_run_url() or '-'}", "",
        f"Choose `retry` (after fixing the cause) or `abort` (the version ends failed). "
        f"CLI: `mlc review {task_id} --as YOU --action retry|abort`."])


def stored_scan(ctx: Context, version: VersionRecord) -> ScanResult | None:
    """A passed scan of this version recorded by an earlier run."""
    for event in reversed(ctx.registry.audit_events(version.model)):
        if event.action == "version.scanned" and event.entity_id == version.id:
            found = ScanResult.model_validate({"checks": event.detail["checks"]})
            return found if found.passed else None
    return None


def approve(ctx: Context, version: VersionRecord, found: ScanResult) -> bool:
    """Approval as the policy says for the model's type and risk tier. True when approved."""
    version = ctx.registry.get_version(version.model, version.number)
    if version.state in (Life.APPROVED, Life.DEPLOYED):
        return True
    model = ctx.registry.get_model(version.model)
    policy = ctx.policy()
    rule = reviewed(ctx, version, "approval",
                    lambda: policy.approval_rule(model.type, model.risk_tier))
    if rule.auto_approve:
        ctx.registry.transition(version.id, Life.APPROVED, "policy:auto-approve",
                                f"{model.risk_tier}-risk {model.type}: approval not required")
        return True
    task = open_task(ctx, TaskKind.APPROVAL, version.id, "approval", groups=rule.groups,
                     quorum=rule.quorum, deadline=rule.deadline,
                     detail={"submitted_by": version.created_by})
    description = evidence(ctx, version, found, task)
    decided = wait_for_decision(ctx, task, description, lambda: ctx.policy().members(rule.groups))
    return decided.status == TaskStatus.APPROVED


def evidence(ctx: Context, version: VersionRecord, found: ScanResult, task: HumanTask) -> str:
    env = ctx.policy().deployment.prod.get("env", "prod")
    previous = ctx.registry.version_in_env_at(version.model, env, utcnow())
    return approvals.evidence_markdown(
        version, previous, latest_test(ctx, version), latest_test(ctx, previous) if previous
        else None, found.model_dump(), task)


def latest_test(ctx: Context, version: VersionRecord) -> TestResult | None:
    results = [r for r in ctx.registry.test_results(version.id) if r.kind == "test"]
    return results[-1] if results else None


def deploy_stage(ctx: Context, version: VersionRecord, stage: str) -> None:
    """Deploy onto the stage's runtime (by the policy's tags), smoke-test it, record it."""
    tags = getattr(ctx.policy().deployment, stage)
    runtime = ctx.choose_runtime(tags)
    current = ctx.registry.get_version(version.model, version.number)
    delays = ctx.settings.deploy_retry_delays
    deploy = deploy_version.with_options(retries=len(delays), retry_delay_seconds=delays or 0)
    deploy(ctx.registry, ctx.runtime_client(runtime.url), runtime, current, FLOW,
           f"{FLOW}: {stage} stage")
    rows = smoke_test(runtime.url, current)
    get_run_logger().info("%s serves %s on %s (smoke test: %d rows)", runtime.name,
                          version.ref, stage, rows)


def reject(ctx: Context, version: VersionRecord, reason: str) -> State:
    ctx.registry.transition(version.id, Life.REJECTED, FLOW, reason)
    raise_alert(AlertSignal(
        severity=Severity.WARNING, model=version.model, version=version.number, source=FLOW,
        monitor="gate", metric="rejected", window=f"v{version.number}",
        title=f"{version.ref} rejected: {reason}"[:300],
        detail="The version did not pass a gate of on-model-changed and will not be deployed."))
    return Completed(message=f"{version.ref} rejected: {reason}")


