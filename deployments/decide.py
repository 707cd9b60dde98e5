"""Deciding a human task for a person the control-plane API (or the Slack door) has
authenticated: the same typed input as the Prefect UI form plus a proof minted for exactly
this task, run, person, decision, version and evidence, sent to the paused flow run through
Prefect's resume API (validated by the server against the form's schema); the flow checks the
proof, records the attempt, and we wait for that record to report it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from mlc_tasks import credentials
from mlc_tasks.errors import (
    InvalidInputError,
    TaskClosedError,
    TaskNotWaitingError,
    TransientError,
)
from mlc_tasks.people import canonical_id
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.run_health import holder_alive
from mlc_tasks.task_records import FORM_FIELDS, HumanTask, TaskDecision, TaskKind, TaskStatus


def form_input(task: HumanTask, actor: str, decision: str, comment: str,
               proof: str) -> dict[str, Any]:
    what, who = FORM_FIELDS[task.kind]
    return {what: decision, who: actor, "comment": comment, "proof": proof}


def mint_for(ctx: Resources, task: HumanTask, run_id: str, person: str, decision: str,
             channel: str) -> str:
    """A proof for this one attempt (the flow accepts each nonce once)."""
    version = ctx.registry.get_version_by_id(task.version_id)
    claim = credentials.DecisionClaim(
        task_id=task.id, run_id=run_id, person=person, decision=decision,
        artifact_sha256=version.artifact_sha256 or "", channel=channel,
        evidence_sha256=str(task.detail.get("evidence_sha256", "")))
    return credentials.mint_proof(ctx.settings.resolved_decision_key(), claim)


def submit_decision(ctx: Resources, task_id: int, actor: str, decision: str, comment: str,
                    wait_seconds: float = 30.0, channel: str = "api"
                    ) -> tuple[TaskDecision, HumanTask]:
    """For `actor`, a person the caller authenticated: resume the task's paused run with the
    form input and a proof, and wait until the flow has recorded the attempt. Returns the
    recorded attempt (accepted or refused) and the task after it."""
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = ctx.prefect_api_url()
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            return _submit_decision(ctx, task_id, actor, decision, comment, wait_seconds,
                                    channel)
    except ObjectNotFound as exc:
        raise TaskNotWaitingError(f"the Prefect server at {api} does not know task {task_id}'s "
                                  "flow run; set PREFECT_API_URL to the server `mlc up` "
                                  "started") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"the Prefect server at {api} did not answer: {exc}; is `mlc up` "
                             "running?") from exc


def _submit_decision(ctx: Resources, task_id: int, actor: str, decision: str, comment: str,
                     wait_seconds: float, channel: str) -> tuple[TaskDecision, HumanTask]:
    book = TaskBook(ctx.registry)
    task = book.get(task_id)
    actor = canonical_id(actor)
    if task.status != TaskStatus.OPEN:
        raise TaskClosedError(f"task {task_id} is already {task.status} ({task.outcome})")
    if decision not in task.choices:
        use = {TaskKind.REVIEW: "mlc review", TaskKind.QUESTION: "mlc answer"}.get(
            task.kind, "mlc approve / mlc reject")
        raise InvalidInputError(f"decision: '{decision[:50]}' does not answer {task.kind} task "
                                f"{task_id} (one of {', '.join(task.choices)}): use {use}")
    seen = len(book.decisions(task_id))
    resume(ctx, book, task_id, lambda t, run: form_input(
        t, actor, decision, comment, mint_for(ctx, t, run, actor, decision, channel)),
        wait_seconds)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        # the task first, then the decisions: a decision that closed the task is recorded in
        # the same transaction, so a closed task read first means its decisions are all seen
        task = book.get(task_id)
        made = book.decisions(task_id)[seen:]
        # this person's attempt with this decision: a racing other click of theirs is not it
        mine = [d for d in made if d.actor == actor and d.decision == decision]
        if mine:
            return mine[-1], book.get(task_id)
        if task.status != TaskStatus.OPEN:
            raise TaskClosedError(f"task {task_id} closed before the decision was taken: "
                                  f"{task.outcome}")
        time.sleep(0.2)
    raise TransientError(f"the flow run of task {task_id} took the input but recorded no "
                         f"decision within {wait_seconds:.0f} s; check it in the Prefect UI")


def resume(ctx: Resources, book: TaskBook, task_id: int,
           run_input: Callable[[HumanTask, str], dict[str, Any]], wait_seconds: float) -> None:
    """Resume the paused run with the input made for it; if another decision resumed it
    first, wait for the next pause and try again."""
    for _attempt in range(5):
        run_id = wait_until_paused(book, task_id, wait_seconds)
        given = run_input(book.get(task_id), run_id)
        with get_client(sync_client=True) as client:
            result = client.resume_flow_run(run_id, run_input=given)
        if result.status.value == "ACCEPT":
            return
        if result.status.value == "REJECT":  # the input itself (ABORT: another resume won)
            reason = getattr(result.details, "reason", result.details)
            raise InvalidInputError(f"the Prefect server refused the input: {reason}")
    raise TransientError(f"task {task_id}: the flow run kept being resumed by others; try again")


def wait_until_paused(book: TaskBook, task_id: int, wait_seconds: float) -> str:
    """The id of the task's flow run once it waits for input (it may be recording another
    decision right now). A run whose process is gone cannot take input: say how to recover."""
    deadline = time.monotonic() + wait_seconds
    state = "unknown"
    while time.monotonic() < deadline:
        task = book.get(task_id)
        if task.status != TaskStatus.OPEN:
            raise TaskClosedError(f"task {task_id} is already {task.status} ({task.outcome})")
        if task.flow_run_id is None:
            raise TaskNotWaitingError(f"task {task_id} has no flow run")
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(task.flow_run_id)  # type: ignore[arg-type]
        state = run.state.name if run.state else "unknown"
        if run.state and run.state.type == StateType.PAUSED:
            if not holder_alive(task.holder):
                break
            return task.flow_run_id
        time.sleep(0.3)
    raise TaskNotWaitingError(f"the flow run of task {task_id} is not waiting for input (state "
                              f"{state}, process {book.get(task_id).holder}); `mlc up` restarts "
                              "waiting runs")
