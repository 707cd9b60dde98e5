"""on-model-changed: a submitted version's way to production — train (if asked), test, scan,
approve (per policy), deploy to QA then production — with a human review whenever a step
fails. Started by the `mlc.model.ready` event that `mlc submit` emits.

Every step checks the registry first, so a rerun (or a run restarted by `mlc up` while a
task was pending) redoes nothing that is finished and deploys nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_UI_URL
from prefect.states import Completed, Failed, State

from flows.alerts import current_run_url, raise_alert
from flows.deploy_model import deploy_failed, deploy_version
from flows.human_tasks import open_task, wait_for_decision
from flows.test_model import test_model
from mlc_tasks import approvals, training
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.comparison import Comparison, comparison_markdown
from mlc_tasks.errors import ChampionChangedError, MlcError
from mlc_tasks.lifecycle import State as Life
from mlc_tasks.packages import ModelType
from mlc_tasks.people import is_system
from mlc_tasks.policy import ApprovalRule
from mlc_tasks.registry import ModelRecord, TestResult, VersionRecord
from mlc_tasks.registry.champions import ChampionBook
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
CHOICES = {"rollback": "Choose `retry` (serve the version in production again: a false alarm) "
                       "or `abort` (retire it; the previous champion stays)."}


class Aborted(Exception):
    """A reviewer aborted, or nobody reviewed in time: the version has ended failed."""


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
    candidates = [ctx.choose_runtime(stages.qa), ctx.choose_runtime(stages.prod)]
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


@flow(name=FLOW)
def on_model_changed(model: str, number: int) -> State:
    """Take version `number` of `model` from submission to production."""
    ctx, logger = resources(), get_run_logger()
    version = ctx.registry.get_version(model, number)
    if version.state in (Life.DEPLOYED, Life.REJECTED, Life.FAILED, Life.RETIRED):
        close_stale_tasks(ctx, version, f"{version.ref} is already {version.state}")
        return Completed(message=f"{version.ref} is {version.state}: nothing to do")
    other = run_waiting_elsewhere(ctx, version)
    if other:
        return Completed(message=f"{version.ref} is handled by flow run {other}")
    try:
        version = train_step(ctx, version)
        # the scan comes before anything loads the artifact or runs the package's code
        found = reviewed(ctx, version, "scan", lambda: stored_scan(ctx, version) or scan(version))
        if not found.passed:
            return reject(ctx, version, f"security scan: {found.failures()}")
        if not reviewed(ctx, version, "test", lambda: test_model(model, number)):
            return reject(ctx, version, "missed the policy's test thresholds")
        if not approve(ctx, version, found):
            closed = ctx.registry.get_version(model, number)
            return Completed(message=f"{closed.ref} is {closed.state}")
        reviewed(ctx, version, "deploy-qa", lambda: deploy_stage(ctx, version, "qa"))
        promote(ctx, version)
    except Aborted as exc:
        return Failed(message=str(exc))
    except ChampionChangedError as exc:
        return reject(ctx, version, str(exc))
    logger.info("%s is in production", version.ref)
    return Completed(message=f"{version.ref} deployed to QA and production")


def train_step(ctx: Resources, version: VersionRecord) -> VersionRecord:
    if version.artifact_uri is not None:
        return version
    return reviewed(ctx, version, "train", lambda: train_version(version))


def reviewed(ctx: Resources, version: VersionRecord, step: str, work: Callable[[], T]) -> T:
    """Run a step; when it fails, alert and open a review task, then retry or abort as the
    reviewer decides. A review left open by a run that died (a restart) is waited on first:
    the step is not silently tried again behind the reviewer's back."""
    pending = open_tasks(ctx, version, TaskKind.REVIEW, step)
    if pending:
        await_review(ctx, version, pending[0], pending[0].detail.get("error", ""))
    while True:
        try:
            return work()
        except Exception as exc:  # any failure of a step goes to a person, unexpected or not
            get_run_logger().error("%s failed at %s: %s", version.ref, step, exc)
            error = f"{type(exc).__name__}: {exc}"
            if step.startswith("deploy-") and isinstance(exc, MlcError):
                stage = step.removeprefix("deploy-")
                raise_alert(deploy_failed(version.model, version.number, f"the {stage} stage",
                                          stage, exc))
            task = open_task(ctx, TaskKind.REVIEW, version.id, step, **review_terms(ctx),
                             detail={"error": error[:2000], "where_to_look": WHERE_TO_LOOK[step]})
            await_review(ctx, version, task, error)


def review_terms(ctx: Resources) -> dict[str, Any]:
    """Who reviews and by when: the policy's review groups, else the installation's admins; a
    policy file that cannot be read (it may be what failed) falls back to the admins within
    72 hours."""
    admins = [ctx.settings.admin_group]
    try:
        reviews = ctx.policy().reviews
    except MlcError as exc:
        get_run_logger().error("policy unreadable, review open to the admins: %s", exc)
        return {"groups": admins, "quorum": 1, "deadline": timedelta(hours=72)}
    return {"groups": reviews.groups or admins, "quorum": 1, "deadline": reviews.deadline}


def await_review(ctx: Resources, version: VersionRecord, task: HumanTask, error: str) -> None:
    """Wait for the reviewer; return to retry, raise Aborted otherwise."""
    description = review_markdown(version, task.step, error, task.id)
    decided = wait_for_decision(ctx, task, description, lambda: ctx.policy().members(task.groups))
    if decided.status != TaskStatus.RETRY:
        raise Aborted(f"{version.ref} failed at {task.step}: {decided.outcome}")


def open_tasks(ctx: Resources, version: VersionRecord, kind: TaskKind | None = None,
               step: str | None = None) -> list[HumanTask]:
    """The version's open approval and review tasks (a model change is not the version's)."""
    return [t for t in TaskBook(ctx.registry).list(model=version.model)
            if t.version_id == version.id and t.kind != TaskKind.CHANGE
            and kind in (None, t.kind) and step in (None, t.step)]


def close_stale_tasks(ctx: Resources, version: VersionRecord, reason: str) -> None:
    for stale in open_tasks(ctx, version):
        TaskBook(ctx.registry).cancel(stale.id, reason, FLOW)


def run_waiting_elsewhere(ctx: Resources, version: VersionRecord) -> str | None:
    """Another live run already waits on this version's task (e.g. the version was submitted
    twice): let it carry on alone, so nothing is decided or deployed twice."""
    me = str(runtime.flow_run.id)
    for pending in open_tasks(ctx, version):
        if (pending.flow_run_id and pending.flow_run_id != me
                and holder_alive(pending.holder)):
            return pending.flow_run_id
    return None


def review_markdown(version: VersionRecord, step: str, error: str, task_id: int) -> str:
    return "\n".join([
        f"## {version.ref} failed at **{step}**", "",
        f"```\n{error[:1500]}\n```", "",
        f"Where to look: {WHERE_TO_LOOK[step]}.", "",
        f"Run: {current_run_url() or '-'}", "",
        CHOICES.get(step, "Choose `retry` (after fixing the cause) or `abort` (the version "
                          "ends failed).")
        + f" CLI: `mlc review {task_id} --as YOU --action retry|abort`."])


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
    rule = reviewed(ctx, version, "approval",  # a retry reads the (fixed) policy again
                    lambda: ctx.policy().approval_rule(model.type, model.risk_tier))
    if rule.auto_approve:
        close_stale_tasks(ctx, version, "the policy now approves this version automatically")
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
    results = [r for r in ctx.registry.test_results(version.id) if r.kind == "test"]
    return results[-1] if results else None


def promote(ctx: Resources, version: VersionRecord) -> None:
    """Production. A challenger first takes the champion's place, if the champion is still
    the one it beat (else ChampionChangedError); an aborted deploy gives the place back."""
    compared = ChampionBook(ctx.registry).comparison(version.id)
    if compared is not None:
        ChampionBook(ctx.registry).claim(version, compared.champion_version_id, FLOW)
    try:
        reviewed(ctx, version, "deploy-prod", lambda: deploy_stage(ctx, version, "prod"))
    except Aborted:
        if compared is not None:
            ChampionBook(ctx.registry).release(version, compared.champion_version_id, FLOW,
                                               "the challenger's production deploy was aborted")
        raise


def deploy_stage(ctx: Resources, version: VersionRecord, stage: str) -> None:
    """Deploy onto the stage's runtime (by the policy's tags); deploy_version smoke-tests the
    sample rows and the health report before it records the deployment."""
    tags = getattr(ctx.policy().deployment, stage)
    runtime = ctx.choose_runtime(tags)
    current = ctx.registry.get_version(version.model, version.number)
    delays = ctx.settings.deploy_retry_delays
    deploy = deploy_version.with_options(retries=len(delays), retry_delay_seconds=delays or 0)
    done = deploy(ctx.registry, ctx.runtime_client(runtime.url), runtime, current, FLOW,
                  f"{FLOW}: {stage} stage", prod=ctx.policy().deployment.prod)
    get_run_logger().info("%s %s %s (%s stage)", runtime.name,
                          "now serves" if done else "already served", version.ref, stage)


def reject(ctx: Resources, version: VersionRecord, reason: str) -> State:
    ctx.registry.transition(version.id, Life.REJECTED, FLOW, reason)
    raise_alert(AlertSignal(
        severity=Severity.WARNING, model=version.model, version=version.number, source=FLOW,
        monitor="gate", metric="rejected", window=f"v{version.number}",
        title=f"{version.ref} rejected: {reason}"[:300],
        detail="The version did not pass a gate of on-model-changed and will not be deployed."))
    return Completed(message=f"{version.ref} rejected: {reason}")


