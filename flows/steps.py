"""The step kit: what every MLC process is written from — ours (on-model-changed,
rollback-review, the monitors) and a team's own (processes/, `mlc process new`). Each step reads
the run's resources (mlc_tasks/resources.py) itself, so a process passes only what it works on.

    production_version(model) -> VersionRecord | None   what serves production now
    latest_results(version, kind) -> list[TestResult]   its results of a kind, oldest first
    evidence_bundle(model, days) -> EvidenceBundle      a model's window, for a reviewer
    ask(version, title, evidence, choices, groups, ...) -> Answer
                                                        a verified person's answer
    reviewed(version, step, work) -> T                  a person retries or aborts a failed step
    deploy_stage(version, stage) -> bool                onto the policy's qa or prod runtime
    raise_alert(signal) -> Alert                        record, show and deliver an alert
    request_process(name, model, requested_by)          start another process (an event)
    request_of(model, event) -> ProcessRequest          who started this run, with what payload
    retire(version, reason, by)                         take a version out of the life cycle

A step that fails raises (an MlcError says why); expected outcomes are return values."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from prefect import get_run_logger, runtime

from flows.alerts import current_run_url, raise_alert
from flows.deploy_model import deploy_failed, deploy_version
from flows.human_tasks import open_task, wait_for_decision
from mlc_tasks import events, runtimes
from mlc_tasks.business_events import send_custom_event
from mlc_tasks.errors import InvalidInputError, MlcError, StepAbortedError
from mlc_tasks.evidence import EvidenceBundle, bundle
from mlc_tasks.production import prod_env
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.registry.refusals import record_refusal
from mlc_tasks.registry.requests import ProcessRequest, claim_request
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import resources
from mlc_tasks.task_records import CHOICE_PATTERN, Answer, HumanTask, TaskKind, TaskStatus

__all__ = ["ask", "deploy_stage", "evidence_bundle", "latest_results", "production_version",
           "raise_alert", "request_of", "request_process", "retire", "reviewed"]
T = TypeVar("T")


def production_version(model: str) -> VersionRecord | None:
    """The version of `model` that serves production now (the policy's prod env), or None."""
    ctx = resources()
    return ctx.registry.version_in_env_at(model, prod_env(ctx.policy().deployment.prod),
                                          utcnow())


def latest_results(version: VersionRecord, kind: ResultKind | str | None = None
                   ) -> list[TestResult]:
    """The version's recorded results of one kind ("test", "backtest", "drift",
    "fairness:<attribute>"; None: all), oldest first."""
    return [r for r in resources().registry.test_results(version.id)
            if kind is None or r.kind == kind]


def evidence_bundle(model: str, days: int = 90) -> EvidenceBundle:
    """What happened to `model` over the last `days` days: deployments, results, alerts and
    decisions (with the verified people), ready to show a reviewer (`.markdown()`)."""
    ctx, until = resources(), utcnow()
    versions = ctx.registry.list_versions(model)
    results = [r for v in versions for r in ctx.registry.test_results(v.id)]
    return bundle(model, until - timedelta(days=days), until, production_version(model),
                  versions, results, ctx.registry.deployments(model),
                  AlertBook(ctx.registry).list(model=model), ctx.registry.audit_events(model))


def ask(version: VersionRecord, title: str, evidence: str, *, choices: Sequence[str],
        groups: list[str], quorum: int = 1, deadline: timedelta = timedelta(days=3),
        exclude: Sequence[str] = ("submitter",), step: str | None = None) -> Answer:
    """Ask the people of `groups` to choose one of `choices` about `version`, showing them
    `evidence` (markdown), and wait — in the Prefect form, `mlc answer`, or any door that
    proves who decided — until `quorum` distinct people agree or the deadline passes (the
    answer's choice is then None and an escalation alert is raised). `exclude` may name
    "submitter" and "owner": they may not answer. The task is recorded with the process that
    asked; a rerun of the process takes over its open question."""
    checked = checked_choices(choices)
    ctx = resources()
    task = open_task(ctx, TaskKind.QUESTION, version.id, step or process_name(), groups=groups,
                     quorum=quorum, deadline=deadline,
                     detail={"title": title[:300], "choices": checked,
                             "excluded": excluded_people(version, exclude)})
    description = f"## {title}\n\n{evidence}\n\nAnswer one of: {', '.join(checked)}."
    decided = wait_for_decision(ctx, task, description, lambda: ctx.policy().members(groups))
    return Answer.of(decided, TaskBook(ctx.registry).decisions(decided.id))


def checked_choices(choices: Sequence[str]) -> list[str]:
    found = list(dict.fromkeys(choices))
    bad = [c for c in found if not re.fullmatch(CHOICE_PATTERN, c)]
    if len(found) < 2 or bad:
        raise InvalidInputError(f"choices: give two or more of lowercase letters, digits and "
                                f"'-' (at most 16), not {bad or found}")
    return found


def excluded_people(version: VersionRecord, exclude: Sequence[str]) -> dict[str, str]:
    unknown = set(exclude) - {"submitter", "owner"}
    if unknown:
        raise InvalidInputError(f"exclude: {sorted(unknown)}; use 'submitter' and/or 'owner'")
    found = {version.created_by: "submitted"} if "submitter" in exclude else {}
    if "owner" in exclude:
        found[resources().registry.get_model(version.model).owner] = "owns"
    return found


def process_name() -> str:
    return runtime.flow_run.flow_name or "mlc"


def reviewed(version: VersionRecord, step: str, work: Callable[[], T],
             where_to_look: str = "this run's logs", choices: str = "") -> T:
    """Run a step; when it fails, open a review task for the policy's review groups and retry
    or raise StepAbortedError as the reviewer decides. A review left open by a run that died
    (a restart) is waited on first: the step is not silently tried again behind the
    reviewer's back."""
    ctx = resources()
    pending = open_tasks(version, TaskKind.REVIEW, step)
    if pending:
        await_review(version, pending[0], pending[0].detail.get("error", ""))
    while True:
        try:
            return work()
        except Exception as exc:  # any failure of a step goes to a person, unexpected or not
            get_run_logger().error("%s failed at %s: %s", version.ref, step, exc)
            error = f"{type(exc).__name__}: {exc}"
            task = open_task(ctx, TaskKind.REVIEW, version.id, step, **review_terms(),
                             detail={"error": error[:2000], "where_to_look": where_to_look,
                                     "how_to_decide": choices})
            await_review(version, task, error)


def review_terms() -> dict[str, Any]:
    """Who reviews and by when: the policy's review groups, else the installation's admins; a
    policy file that cannot be read (it may be what failed) falls back to the admins within
    72 hours."""
    ctx = resources()
    admins = [ctx.settings.admin_group]
    try:
        reviews = ctx.policy().reviews
    except MlcError as exc:
        get_run_logger().error("policy unreadable, review open to the admins: %s", exc)
        return {"groups": admins, "quorum": 1, "deadline": timedelta(hours=72)}
    return {"groups": reviews.groups or admins, "quorum": 1, "deadline": reviews.deadline}


def await_review(version: VersionRecord, task: HumanTask, error: str) -> None:
    """Wait for the reviewer; return to retry, raise StepAbortedError otherwise."""
    ctx = resources()
    decided = wait_for_decision(ctx, task, review_markdown(version, task, error),
                                lambda: ctx.policy().members(task.groups))
    if decided.status != TaskStatus.RETRY:
        raise StepAbortedError(f"{version.ref} failed at {task.step}: {decided.outcome}")


def review_markdown(version: VersionRecord, task: HumanTask, error: str) -> str:
    choices = task.detail.get("how_to_decide") or (
        "Choose `retry` (after fixing the cause) or `abort` (the version ends failed).")
    return "\n".join([
        f"## {version.ref} failed at **{task.step}**", "",
        f"```\n{error[:1500]}\n```", "",
        f"Where to look: {task.detail.get('where_to_look', '-')}.", "",
        f"Run: {current_run_url() or '-'}", "",
        f"{choices} CLI: `mlc review {task.id} --action retry|abort`."])


def open_tasks(version: VersionRecord, kind: TaskKind | None = None,
               step: str | None = None) -> list[HumanTask]:
    """The version's open tasks of a kind and step (a model change is not the version's)."""
    return [t for t in TaskBook(resources().registry).list(model=version.model)
            if t.version_id == version.id and t.kind != TaskKind.CHANGE
            and kind in (None, t.kind) and step in (None, t.step)]


def deploy_stage(version: VersionRecord, stage: str) -> bool:
    """Deploy onto the stage's ("qa" or "prod") runtime, chosen by the policy's tags, with the
    installation's retries; deploy_version smoke-tests before it records the deployment. A
    failure raises an alert (critical for production) and then the error. True when it was
    deployed now, False when the runtime served it already."""
    ctx = resources()
    stages = ctx.policy().deployment
    runtime = ctx.choose_runtime(getattr(stages, stage), version.model)
    current = ctx.registry.get_version(version.model, version.number)
    delays = ctx.settings.deploy_retry_delays
    deploy = deploy_version.with_options(retries=len(delays), retry_delay_seconds=delays or 0)
    try:
        done = deploy(ctx.registry, ctx.runtime_client(runtime.url), runtime, current,
                      process_name(), f"{process_name()}: {stage} stage", prod=stages.prod)
    except MlcError as exc:
        raise_alert(deploy_failed(version.model, version.number, f"the {stage} stage", stage,
                                  exc))
        raise
    get_run_logger().info("%s %s %s (%s stage)", runtime.name,
                          "now serves" if done else "already served", version.ref, stage)
    return bool(done)


def request_process(name: str, model: str, requested_by: str,
                    payload: dict[str, Any] | None = None) -> str:
    """Start another process for `model` on behalf of `requested_by` (a verified person, e.g.
    an Answer's): "retrain" and "backtest" start ours; any other name is a custom event
    (mlc.custom.<name>), checked against the processes that expect it. The request is
    recorded first (the started run reads who asked from the registry, never from its
    parameters); returns its id."""
    ctx = resources()
    if name not in events.REQUESTED:
        from flows.catalog import load_processes

        declared = [d.process for d in load_processes(ctx.settings.process_folders())]
        return send_custom_event(ctx.registry, declared, actor=requested_by, name=name,
                                 model=model, payload=payload or {},
                                 emit=lambda e: events.emit(e, ctx.prefect_api_url())).request
    request = str(uuid.uuid4())
    action = {"retrain": "model.retrain_requested"}.get(name, "model.backtest_requested")
    with ctx.registry.transaction() as session:
        ctx.registry.append_audit(
            session, actor=requested_by, action=action, entity="model", entity_id=model,
            model=model, reason=f"asked by {process_name()}",
            detail={"request": request, "data": None})
    events.emit(events.request_event(model, name, "manual", None, {"request": request}),
                ctx.prefect_api_url())
    return request


def request_of(model: str, event: str = "") -> ProcessRequest:
    """Who started this run, and with what payload: the request its custom event recorded
    (claimed once; a forged, reused or foreign id is refused and audited), else the system — a
    schedule, or someone starting the deployment in the Prefect UI, whom nobody verified."""
    ctx, process = resources(), process_name()
    if not event:
        return ProcessRequest(request="", model=model, event="", requested_by="system:schedule",
                              payload={}, processes=[process], at=utcnow())
    try:
        return claim_request(ctx.registry, event, model, process)
    except InvalidInputError as exc:
        record_refusal(ctx.registry, actor=process, action="process.refused", model=model,
                       reason=str(exc), detail={"event": event[:64],
                                                "flow_run": str(runtime.flow_run.id)})
        raise


def retire(version: VersionRecord, reason: str, by: str) -> VersionRecord:
    """Take `version` out of the life cycle (it can never be deployed again), recorded as
    decided by `by`."""
    ctx = resources()
    return runtimes.retire_version(ctx.registry, ctx.runtime_client, version, by, reason)
