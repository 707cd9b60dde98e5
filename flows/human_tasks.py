"""Human tasks inside a flow run: open the task, pause for typed input (the Prefect UI form, or
the control-plane API behind `mlc approve/reject/review`, both validated by the server against
the same schema), verify who decided (mlc_tasks/verification.py), record every attempt, and
keep waiting until the task is decided or its deadline passes.

A pause that times out fails the run and cannot be caught, so the deadline is kept by a timer
thread: at the deadline it closes the task as expired in the registry and resumes the run with
the system's own input; the pause's timeout is only a backstop after that."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from prefect import get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model

from flows.alerts import current_run_url, raise_alert
from mlc_tasks.alert_records import AlertSignal, AlertStatus, Severity
from mlc_tasks.approvals import SYSTEM_ACTOR
from mlc_tasks.errors import MlcError
from mlc_tasks.evidence_packet import packet_url, publish_packet
from mlc_tasks.people import SCOPES, Principal, PrincipalKind, canonical_id
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.run_health import holder
from mlc_tasks.task_records import FORM_FIELDS, HumanTask, TaskKind, TaskStatus
from mlc_tasks.verification import REUSED_CODE, WRONG_CODE, Attempt, Expected, Verdict, verify

log = logging.getLogger(__name__)
PAUSE_GRACE = timedelta(minutes=10)  # after the deadline the timer has this long to resume us
CODE_WINDOW = timedelta(minutes=15)  # wrong one-time codes are counted over this window


CODE_HELP = "the current code of your authenticator app (enrolled with `mlc people enroll`)"
PROOF_HELP = "set by the control-plane API or Slack; leave empty in the form"


class ApprovalForm(RunInput):
    """The approval form. No defaults on the decision fields: an empty resume is refused. The
    proof fields are optional in the schema, so that an attempt without them reaches the flow
    and is recorded as unverified."""

    decision: Literal["approve", "reject"]
    approver: str = Field(max_length=255, description="your id, e.g. rita.risk@bank.example")
    one_time_code: str = Field(default="", max_length=16, description=CODE_HELP)
    comment: str = Field(default="", max_length=4000)
    proof: str = Field(default="", max_length=4096, description=PROOF_HELP)


class ReviewForm(RunInput):
    """The error-review form: retry the failed step, or abort (the version ends failed)."""

    action: Literal["retry", "abort"]
    reviewer: str = Field(max_length=255, description="your id, e.g. mia.mlops@bank.example")
    one_time_code: str = Field(default="", max_length=16, description=CODE_HELP)
    comment: str = Field(default="", max_length=4000)
    proof: str = Field(default="", max_length=4096, description=PROOF_HELP)


FORMS: dict[TaskKind, type[RunInput]] = {TaskKind.APPROVAL: ApprovalForm,
                                         TaskKind.CHANGE: ApprovalForm,
                                         TaskKind.REVIEW: ReviewForm}


def form_for(task: HumanTask) -> type[RunInput]:
    """The task's form; a question's is made from its choices (no default: an empty resume
    is refused by the server)."""
    if task.kind != TaskKind.QUESTION:
        return FORMS[task.kind]
    choice: Any = Literal[tuple(task.choices)]
    return create_model(  # type: ignore[call-overload,no-any-return]
        "QuestionForm", __base__=RunInput,
        choice=(choice, Field(description="your answer")),
        person=(str, Field(max_length=255, description="your id, e.g. rita.risk@bank.example")),
        one_time_code=(str, Field(default="", max_length=16, description=CODE_HELP)),
        comment=(str, Field(default="", max_length=4000)),
        proof=(str, Field(default="", max_length=4096, description=PROOF_HELP)))


def system_input(task: HumanTask) -> dict[str, str]:
    """What the deadline timer resumes the run with: valid for the form, from nobody."""
    decision = {TaskKind.REVIEW: "abort"}.get(task.kind, "reject")
    if task.kind == TaskKind.QUESTION:
        decision = task.choices[0]
    what, who = FORM_FIELDS[task.kind]
    return {what: decision, who: SYSTEM_ACTOR, "comment": "expired"}


def open_task(ctx: Resources, kind: TaskKind, version_id: str, step: str, *, groups: list[str],
              quorum: int, deadline: timedelta, detail: dict[str, Any]) -> HumanTask:
    """Open (or, after a restart, take over) the task, recorded with the process that asks;
    announce a new one."""
    run_id, process = runtime.flow_run.id, runtime.flow_run.flow_name or "mlc"
    task, new = TaskBook(ctx.registry).open_task(
        kind, version_id, step, groups=groups, quorum=quorum, deadline=utcnow() + deadline,
        detail={**detail, "process": process, "run_url": current_run_url() or ""},
        flow_run_id=str(run_id) if run_id else None, holder=holder(), actor=process)
    if kind == TaskKind.APPROVAL:  # before the announcement, so Slack can link it
        task = attach_packet(ctx, task)
    if new:
        raise_alert(waiting_signal(task))
        mirror(ctx, task, opened=True)
    return task


def attach_packet(ctx: Resources, task: HumanTask) -> HumanTask:
    """Publish the version's evidence packet as the registry stands now (again when a run
    takes the task over) and keep its sha256 and link with the task."""
    published = publish_packet(ctx, task.model, task.number)
    get_run_logger().info("task %d: evidence packet %s", task.id, published.path)
    return TaskBook(ctx.registry).attach_packet(task.id, published.sha256,
                                                packet_url(ctx, published))


def with_packet_link(task: HumanTask, description: str) -> str:
    """The form's description with the packet's link under its heading: the decider's
    evidence sha256 then covers the packet's too."""
    url, digest = task.detail.get("packet_url"), task.detail.get("packet_sha256")
    if not url:
        return description
    head, _, rest = description.partition("\n") if description.startswith("#") else (
        "", "", description)
    link = (f"**[Evidence packet]({url})**: everything on file for {task.ref} "
            f"(sha256 `{digest}`)")
    return "\n\n".join(part for part in (head, link, rest.lstrip("\n")) if part)


def wait_for_decision(ctx: Resources, task: HumanTask, description: str,
                      members: Callable[[], set[str]]) -> HumanTask:
    """Pause until the task is closed; each resume is one attempt, recorded (accepted or
    refused, with the reason) before pausing again. Returns the closed task."""
    book = TaskBook(ctx.registry)
    form = form_for(task)
    description = with_packet_link(book.get(task.id), description)
    evidence_sha256 = book.show_evidence(task.id, description)
    timer = DeadlineTimer(book, task) if task.deadline else None
    try:
        while True:
            task = book.get(task.id)
            if task.status != TaskStatus.OPEN or book.expire(task.id):
                return finish(ctx, book.get(task.id))
            get_run_logger().info("task %d (%s of %s) waits for a decision: `mlc tasks`, or "
                                  "Resume in the Prefect UI", task.id, task.kind, task.ref)
            given = pause_flow_run(wait_for_input=form.with_initial_data(description=description),
                                   timeout=pause_timeout(task), poll_interval=1)
            take_attempt(ctx, book, task, given, evidence_sha256, members)
    finally:
        if timer:
            timer.stop()


def take_attempt(ctx: Resources, book: TaskBook, task: HumanTask, given: RunInput,
                 evidence_sha256: str, members: Callable[[], set[str]]) -> None:
    """Record one resume: unverified (and alerted when it looks like an attack), or decided
    for the verified person as the task's rules allow."""
    logger = get_run_logger()
    attempt, comment = form_fields(task, given)
    if attempt.claimed == SYSTEM_ACTOR and book.get(task.id).status != TaskStatus.OPEN:
        return  # the deadline timer woke us; the registry says what happened
    verdict = verify_attempt(ctx, task, attempt, evidence_sha256)
    if not verdict.verified:
        made = book.refuse_unverified(task.id, attempt.claimed, attempt.decision, comment,
                                      verdict.channel, str(verdict.refusal))
        logger.warning("task %d: %s claimed by %s REFUSED (%s)", task.id, attempt.decision,
                       attempt.claimed, made.refusal)
        if suspicious(made.refusal):
            raise_alert(credential_signal(task, attempt.claimed, str(made.refusal)))
        return
    try:
        allowed = members()
    except MlcError as exc:  # e.g. a broken policy file: keep waiting, say why
        logger.error("decision by %s not recorded, the policy is unreadable: %s",
                     verdict.person, exc)
        return
    made = book.decide(task.id, verdict.person, attempt.decision, comment, verdict.channel,
                       allowed, evidence_sha256=evidence_sha256,
                       packet_sha256=task.detail.get("packet_sha256"))
    logger.info("task %d: %s by %s (%s) %s%s", task.id, attempt.decision, verdict.person,
                verdict.channel, "accepted" if made.accepted else "REFUSED",
                f" ({made.refusal})" if made.refusal else "")


def form_fields(task: HumanTask, given: RunInput) -> tuple[Attempt, str]:
    what, who = FORM_FIELDS[task.kind]
    claimed, decision = str(getattr(given, who)), str(getattr(given, what))
    proof, code = getattr(given, "proof", ""), getattr(given, "one_time_code", "")
    return Attempt(claimed=claimed.strip(), decision=decision, proof=proof or None,
                   one_time_code=code or None), str(getattr(given, "comment", ""))


def verify_attempt(ctx: Resources, task: HumanTask, attempt: Attempt,
                   evidence_sha256: str) -> Verdict:
    """Who this attempt is from, proved by a minted proof or a one-time code. Whatever goes
    wrong while checking (a crafted input, a busy database) leaves it unverified: the attempt
    is still recorded and the run keeps waiting."""
    try:
        version = ctx.registry.get_version_by_id(task.version_id)
        principals, book = PrincipalBook(ctx.registry), TaskBook(ctx.registry)
        expected = Expected(task_id=task.id, run_id=str(runtime.flow_run.id),
                            artifact_sha256=version.artifact_sha256 or "",
                            evidence_sha256=evidence_sha256)
        return verify(attempt, expected, ctx.settings.resolved_decision_key(),
                      lambda pid: known_person(ctx, principals, pid),
                      principals.authenticator_secret, principals.spend,
                      lambda pid: book.recent_refusals(pid, WRONG_CODE, CODE_WINDOW))
    except Exception as exc:  # noqa: BLE001 — refused and recorded, never a dead run
        log.exception("task %d: checking the attempt by %s failed", task.id, attempt.claimed)
        why = f"unverified: the attempt could not be checked ({type(exc).__name__})"
        return Verdict(person=attempt.claimed[:255], channel="unknown", refusal=why)


def known_person(ctx: Resources, principals: PrincipalBook, pid: str) -> Principal | None:
    """An enrolled principal; else a person of the policy the control-plane API may have
    authenticated through the SSO proxy (never someone revoked: that one is enrolled)."""
    found = principals.get(pid)
    if found is not None:
        return found
    person = ctx.policy().person(pid)
    if person is None:
        return None
    return Principal(id=person.id, kind=PrincipalKind.PERSON, scopes=SCOPES[PrincipalKind.PERSON],
                     enrolled_at=utcnow(), enrolled_by="sso", revoked_at=None)


def suspicious(refusal: str | None) -> bool:
    """A reused code may have been read off the form by someone else; many wrong ones are
    someone guessing."""
    return refusal is not None and (refusal == REUSED_CODE or "wrong one-time codes" in refusal)


def credential_signal(task: HumanTask, claimed: str, refusal: str) -> AlertSignal:
    return AlertSignal(
        severity=Severity.CRITICAL, model=task.model, version=task.number,
        source=task.process, monitor="credentials", metric=canonical_id(claimed)[:100],
        window=f"task-{task.id}",
        title=f"task {task.id}: a decision as {claimed[:100]} was refused: {refusal}"[:300],
        detail="Someone may have read a one-time code off the Prefect form, or be guessing "
               "codes. Ask the person; revoke and enrol them again (`mlc people revoke`, "
               "`mlc people enroll`) if it was not them.")


def pause_timeout(task: HumanTask) -> int:
    assert task.deadline is not None
    return max(1, int((task.deadline - utcnow() + PAUSE_GRACE).total_seconds()))


def finish(ctx: Resources, task: HumanTask) -> HumanTask:
    """Announce how the task ended: an escalation alert when it expired."""
    if task.status == TaskStatus.EXPIRED:
        raise_alert(expired_signal(task))
    resolve_waiting_alert(ctx, task)
    mirror(ctx, task, opened=False)
    return task


def resolve_waiting_alert(ctx: Resources, task: HumanTask) -> None:
    """The 'task waiting' alert ends with the task (its incident is resolved too)."""
    book, fingerprint = AlertBook(ctx.registry), waiting_signal(task).fingerprint()
    for alert in book.list(model=task.model):
        if alert.fingerprint == fingerprint and alert.status != AlertStatus.RESOLVED:
            book.resolve(alert.id, task.process)
            ctx.deliver_alerts()


def waiting_signal(task: HumanTask) -> AlertSignal:
    what = {TaskKind.APPROVAL: f"needs {task.quorum} approval(s) from {', '.join(task.groups)}",
            TaskKind.QUESTION: f"asks {', '.join(task.groups)}: {task.detail.get('title', '')}"
            }.get(task.kind, f"failed at {task.step}: {task.detail.get('error', '')}")
    calm = task.kind in (TaskKind.APPROVAL, TaskKind.QUESTION)
    return AlertSignal(
        severity=Severity.INFO if calm else Severity.WARNING,
        model=task.model, version=task.number, source=task.process, monitor=task.kind,
        metric=task.step, window=f"task-{task.id}",
        title=f"task {task.id}: {task.ref} {what}"[:300],
        detail=f"Decide by {task.deadline:%Y-%m-%d %H:%M} UTC in the Prefect UI (Resume) or "
               f"with `mlc tasks`; past the deadline the task expires and escalates.")


def expired_signal(task: HumanTask) -> AlertSignal:
    ends = {TaskKind.APPROVAL: "the version is rejected (expired)",
            TaskKind.CHANGE: "the change is not applied; the registered values stay",
            TaskKind.REVIEW: "the version is failed (expired)",
            TaskKind.QUESTION: f"{task.process} goes on without an answer"}[task.kind]
    return AlertSignal(
        severity=Severity.CRITICAL, model=task.model, version=task.number,
        source=task.process, monitor="escalation", metric=task.step,
        window=f"task-{task.id}",
        title=f"ESCALATION: {task.kind} task {task.id} for {task.ref} expired; {ends}",
        detail=f"Nobody decided by the deadline ({task.deadline:%Y-%m-%d %H:%M} UTC). "
               f"Groups: {', '.join(task.groups) or '-'}. To try again, submit a new version.")


def mirror(ctx: Resources, task: HumanTask, opened: bool) -> None:
    """Mirror the task to ServiceNow (one record per task, found again by its id) when that
    channel is configured; a failure is logged, never fatal: the task lives in the registry."""
    try:
        servicenow = ctx.channels().get("servicenow")
        if servicenow is None:
            return
        key = f"mlc-task-{task.id}"
        if opened:
            servicenow.open_task(key, f"{task.kind}: {task.ref} ({task.step})",  # type: ignore[attr-defined]
                                 task_text(task))
        else:
            servicenow.close_task(key, f"{task.status}: {task.outcome}")  # type: ignore[attr-defined]
    except MlcError as exc:
        get_run_logger().warning("task %d not mirrored to ServiceNow: %s", task.id, exc)


def task_text(task: HumanTask) -> str:
    lines = [f"{task.kind} task {task.id} for {task.ref}, step {task.step}",
             f"groups: {', '.join(task.groups) or 'any'}; quorum {task.quorum}",
             f"deadline: {task.deadline:%Y-%m-%d %H:%M} UTC" if task.deadline else ""]
    lines += [f"{k}: {v}" for k, v in task.detail.items() if v]
    return "\n".join(line for line in lines if line)


class DeadlineTimer:
    """At the deadline: expire the task in the registry, then resume the paused run with the
    system's input (retrying while the run is between two pauses) so the flow sees it."""

    def __init__(self, book: TaskBook, task: HumanTask) -> None:
        assert task.deadline is not None and task.flow_run_id is not None
        self.book, self.task = book, task
        self._stopped = threading.Event()
        context = contextvars.copy_context()  # the Prefect settings of this run
        self._thread = threading.Thread(target=context.run, args=(self._run,), daemon=True,
                                        name=f"deadline-task-{task.id}")
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        assert self.task.deadline is not None
        wait = (self.task.deadline - utcnow()).total_seconds()
        if self._stopped.wait(max(0.0, wait)):
            return
        expired = False
        while not self._stopped.is_set():
            try:  # keep trying through a busy database or server; the pause timeout is the
                # backstop if this process dies
                expired = expired or self.book.expire(self.task.id)
                if not expired or self._resume():
                    return
            except Exception:
                log.exception("deadline timer for task %d: will try again", self.task.id)
            self._stopped.wait(0.5)

    def _resume(self) -> bool:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(self.task.flow_run_id)  # type: ignore[arg-type]
            if run.state is None or run.state.type != StateType.PAUSED:
                return False
            result = client.resume_flow_run(self.task.flow_run_id,  # type: ignore[arg-type]
                                            run_input=system_input(self.task))
            return result.status.value == "ACCEPT"
