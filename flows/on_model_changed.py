"""on-model-changed: a submitted version's way to production — train (if asked), test, scan,
approve (per policy), deploy to QA then production — with a human review whenever a step
fails. Started by the `mlc.model.ready` event that `mlc submit` emits.

Every step checks the registry first, so a rerun (or a run restarted by `mlc up` while a
task was pending) redoes nothing that is finished and deploys nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_UI_URL
from prefect.states import Completed, Failed, State

from flows.human_tasks import open_task, wait_for_decision
from flows.model_testing import model_test
from flows.run_names import run_name
from flows.steps import deploy_stage, latest_results, open_tasks, raise_alert, reviewed
from mlc_tasks import approvals, training
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.comparison import Comparison, comparison_markdown
from mlc_tasks.errors import ChampionChangedError, StepAbortedError
from mlc_tasks.lifecycle import State as Life
from mlc_tasks.packages import ModelType
from mlc_tasks.people import is_system
from mlc_tasks.policy import ApprovalRule
from mlc_tasks.registry import ModelRecord, TestResult, VersionRecord
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources, resources
from mlc_tasks.run_health import holder_alive
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
    "rollback": "`mlc results NAME`, the rollback alert and the backtest/monitor run",
}


@task(name="train-version", cache_policy=NO_CACHE)
def train_version(version: VersionRecord) -> VersionRecord:
    ctx = resources()
    model_type = ModelType(ctx.registry.get_model(version.model).type)
    artifact = training.train_artifact(version, model_type, ctx.settings.trusted_types,
                                       ctx.store())
    return ctx.registry.attach_artifact(version.id, artifact, FLOW, "training job")


@task(name="scan-version", cache_policy=NO_CACHE)
def scan(version: VersionRecord) -> ScanResult:
    """Scan against the runtimes of both stages (a stage without a live runtime fails here,
    before anyone spends time approving)."""
    ctx = resources()
    stages = ctx.policy().deployment
    candidates = [ctx.choose_runtime(stages.qa, version.model),
                  ctx.choose_runtime(stages.prod, version.model)]
    requirements = stored_spec(str(version.package_uri)).requirements
    # types are checked against today's reviewed list: a review withdrawn since submission counts
    current = version.model_copy(update={"trusted_types": [
        t for t in version.trusted_types if t in ctx.settings.trusted_types]})
    result = scan_version(current, requirements, candidates)
    with ctx.registry.transaction() as session:
        ctx.registry.append_audit(
            session, actor=FLOW, action="version.scanned", entity="version",
            entity_id=version.id, model=version.model, reason=result.failures() or "passed",
            detail={"number": version.number, **result.model_dump()},
            evidence_sha256=version.artifact_sha256)
    return result


@flow(name=FLOW, flow_run_name=run_name(FLOW))
def on_model_changed(model: str, number: int) -> State:
    """Take version `number` of `model` from submission to production.

    Args:
        model: the registered model
        number: the version number, as `mlc submit` printed it
    """
    ctx, logger = resources(), get_run_logger()
    version = ctx.registry.get_version(model, number)
    if version.state in (Life.DEPLOYED, Life.REJECTED, Life.FAILED, Life.RETIRED):
        close_stale_tasks(version, f"{version.ref} is already {version.state}")
        return Completed(message=f"{version.ref} is {version.state}: nothing to do")
    other = run_waiting_elsewhere(version)
    if other:
        return Completed(message=f"{version.ref} is handled by flow run {other}")
    try:
        version = train_step(version)
        # the scan comes before anything loads the artifact or runs the package's code
        found = step(version, "scan", lambda: stored_scan(ctx, version) or scan(version))
        if not found.passed:
            return reject(ctx, version, f"security scan: {found.failures()}")
        if not step(version, "test", lambda: model_test(model, number)):
            return reject(ctx, version, "missed the policy's test thresholds")
        if not approve(ctx, version, found):
            closed = ctx.registry.get_version(model, number)
            return Completed(message=f"{closed.ref} is {closed.state}")
        step(version, "deploy-qa", lambda: deploy_stage(version, "qa"))
        promote(ctx, version)
    except StepAbortedError as exc:
        return Failed(message=str(exc))
    except ChampionChangedError as exc:
        return reject(ctx, version, str(exc))
    logger.info("%s is in production", version.ref)
    return Completed(message=f"{version.ref} deployed to QA and production")


def train_step(version: VersionRecord) -> VersionRecord:
    if version.artifact_uri is not None:
        return version
    return step(version, "train", lambda: train_version(version))


def step(version: VersionRecord, name: str, work: Callable[[], T]) -> T:
    """A step of the way, reviewed by a person when it fails (flows/steps.py)."""
    return reviewed(version, name, work, WHERE_TO_LOOK[name])


def close_stale_tasks(version: VersionRecord, reason: str) -> None:
    for stale in open_tasks(version):
        TaskBook(resources().registry).cancel(stale.id, reason, FLOW)


def run_waiting_elsewhere(version: VersionRecord) -> str | None:
    """Another live run already waits on this version's task (e.g. the version was submitted
    twice): let it carry on alone, so nothing is decided or deployed twice."""
    me = str(runtime.flow_run.id)
    for pending in open_tasks(version):
        if (pending.flow_run_id and pending.flow_run_id != me
                and holder_alive(pending.holder)):
            return pending.flow_run_id
    return None


def stored_scan(ctx: Resources, version: VersionRecord) -> ScanResult | None:
    """A passed scan of this version recorded by an earlier run."""
    for event in reversed(ctx.registry.audit_events(version.model)):
        if event.action == "version.scanned" and event.entity_id == version.id:
            found = ScanResult.model_validate({"checks": event.detail["checks"]})
            return found if found.passed else None
    return None


def approve(ctx: Resources, version: VersionRecord, found: ScanResult) -> bool:
    """Approval as the policy says for the model's type and risk tier. True when approved."""
    version = ctx.registry.get_version(version.model, version.number)
    if version.state in (Life.APPROVED, Life.DEPLOYED):
        return True
    model = ctx.registry.get_model(version.model)
    rule = step(version, "approval",  # a retry reads the (fixed) policy again
                lambda: ctx.policy().approval_rule(model.type, model.risk_tier))
    if rule.auto_approve:
        close_stale_tasks(version, "the policy now approves this version automatically")
        ctx.registry.transition(version.id, Life.APPROVED, "policy:auto-approve",
                                f"{model.risk_tier}-risk {model.type}: approval not required")
        return True
    task = open_task(ctx, TaskKind.APPROVAL, version.id, "approval", groups=rule.groups,
                     quorum=rule.quorum, deadline=rule.deadline,
                     detail={"submitted_by": version.created_by,
                             "excluded": excluded_approvers(rule, version, model)})
    description = evidence(ctx, version, found, task)
    decided = wait_for_decision(ctx, task, description, lambda: ctx.policy().members(task.groups))
    return decided.status == TaskStatus.APPROVED


def excluded_approvers(rule: ApprovalRule, version: VersionRecord,
                       model: ModelRecord) -> dict[str, str]:
    """Who may not approve besides the submitter: the owner when the rule says so, and
    always for a challenger the system submitted (the owner's data location started it)."""
    if "owner" in rule.exclude or is_system(version.created_by):
        return {model.owner: "owns"}
    return {}


def evidence(ctx: Resources, version: VersionRecord, found: ScanResult, task: HumanTask) -> str:
    env = ctx.policy().deployment.prod.get("env", "prod")
    previous = ctx.registry.version_in_env_at(version.model, env, utcnow())
    return approvals.evidence_markdown(
        version, previous, latest_test(ctx, version), latest_test(ctx, previous) if previous
        else None, found.model_dump(), task, comparison_evidence(ctx, version))


def comparison_evidence(ctx: Resources, version: VersionRecord) -> str:
    """A challenger's comparison with the champion it beat; nothing for other versions."""
    compared = ChampionBook(ctx.registry).comparison(version.id)
    if compared is None:
        return ""
    champion = ctx.registry.get_version_by_id(compared.champion_version_id)
    ui = PREFECT_UI_URL.value()
    return comparison_markdown(Comparison.model_validate(compared.detail), champion.ref,
                               version.ref, f"{ui}/artifacts/key/comparison-{version.model}"
                               if ui else None)


def latest_test(ctx: Resources, version: VersionRecord) -> TestResult | None:
    results = latest_results(version, ResultKind.TEST)
    return results[-1] if results else None


def promote(ctx: Resources, version: VersionRecord) -> None:
    """Production. A challenger first takes the champion's place, if the champion is still
    the one it beat (else ChampionChangedError); an aborted deploy gives the place back."""
    compared = ChampionBook(ctx.registry).comparison(version.id)
    if compared is not None:
        ChampionBook(ctx.registry).claim(version, compared.champion_version_id, FLOW)
    try:
        step(version, "deploy-prod", lambda: deploy_stage(version, "prod"))
    except StepAbortedError:
        if compared is not None:
            ChampionBook(ctx.registry).release(version, compared.champion_version_id, FLOW,
                                               "the challenger's production deploy was aborted")
        raise


def reject(ctx: Resources, version: VersionRecord, reason: str) -> State:
    ctx.registry.transition(version.id, Life.REJECTED, FLOW, reason)
    raise_alert(AlertSignal(
        severity=Severity.WARNING, model=version.model, version=version.number, source=FLOW,
        monitor="gate", metric="rejected", window=f"v{version.number}",
        title=f"{version.ref} rejected: {reason}"[:300],
        detail="The version did not pass a gate of on-model-changed and will not be deployed."))
    return Completed(message=f"{version.ref} rejected: {reason}")


