"""Deciding human tasks from the command line: the same typed input as the Prefect UI form,
sent to the paused flow run through Prefect's resume API (validated by the server against the
form's schema); the flow records the attempt, and we wait for that record to report it."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from deployments.context import Context
from mlc_tasks.errors import InvalidInputError, MlcError, TaskClosedError, TransientError
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.task_records import (
    DECISIONS,
    Decision,
    HumanTask,
    TaskDecision,
    TaskKind,
    TaskStatus,
)


def holder_alive(holder: str | None) -> bool:
    """Whether the process holding a paused run still lives (unknown on another host: yes)."""
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def form_input(task: HumanTask, actor: str, decision: str, comment: str) -> dict[str, Any]:
    if task.kind == TaskKind.APPROVAL:
        return {"decision": decision, "approver": actor, "comment": comment}
    return {"action": decision, "reviewer": actor, "comment": comment}


def prefect_api(ctx: Context) -> str:
    """The Prefect server `mlc up` started (or PREFECT_API_URL, or the test server in effect);
    never a throwaway ephemeral server, which would not know the run."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value() or ctx.settings.prefect_api_url())


def submit_decision(ctx: Context, task_id: int, actor: str, decision: str, comment: str,
                    wait_seconds: float = 30.0) -> tuple[TaskDecision, HumanTask]:
    """Resume the task's paused run with the form input and wait until the flow has recorded
    the attempt. Returns the recorded attempt (accepted or refused) and the task after it."""
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = prefect_api(ctx)
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            return _submit_decision(ctx, task_id, actor, decision, comment, wait_seconds)
    except ObjectNotFound as exc:
        raise MlcError(f"the Prefect server at {api} does not know task {task_id}'s flow run; "
                       "set PREFECT_API_URL to the server `mlc up` started") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"the Prefect server at {api} did not answer: {exc}; is `mlc up` "
                             "running?") from exc


def _submit_decision(ctx: Context, task_id: int, actor: str, decision: str, comment: str,
                     wait_seconds: float) -> tuple[TaskDecision, HumanTask]:
    book = TaskBook(ctx.registry)
    task = book.get(task_id)
    actor = actor.strip()
    if task.status != TaskStatus.OPEN:
        raise TaskClosedError(f"task {task_id} is already {task.status} ({task.outcome})")
    if Decision(decision) not in DECISIONS[task.kind]:
        use = "mlc approve / mlc reject" if task.kind == TaskKind.APPROVAL else "mlc review"
        raise InvalidInputError(f"task {task_id} is a {task.kind} task: use {use}")
    seen = len(book.decisions(task_id))
    resume(book, task_id, form_input(task, actor, decision, comment), wait_seconds)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        made = book.decisions(task_id)[seen:]
        mine = [d for d in made if d.actor == actor]
        if mine:
            return mine[-1], book.get(task_id)
        if book.get(task_id).status != TaskStatus.OPEN and not made:
            raise TaskClosedError(f"task {task_id} closed before the decision was taken: "
                                  f"{book.get(task_id).outcome}")
        time.sleep(0.2)
    raise TransientError(f"the flow run of task {task_id} took the input but recorded no "
                         f"decision within {wait_seconds:.0f} s; check it in the Prefect UI")


def resume(book: TaskBook, task_id: int, run_input: dict[str, Any],
           wait_seconds: float) -> None:
    """Resume the paused run with the input; if another decision resumed it first, wait for
    the next pause and try again."""
    for _attempt in range(5):
        run_id = wait_until_paused(book, task_id, wait_seconds)
        with get_client(sync_client=True) as client:
            result = client.resume_flow_run(run_id, run_input=run_input)
            if result.status.value == "ACCEPT":
                return
            state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
        if state is not None and state.type == StateType.PAUSED:  # refused for the input
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
            raise MlcError(f"task {task_id} has no flow run")
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(task.flow_run_id)  # type: ignore[arg-type]
        state = run.state.name if run.state else "unknown"
        if run.state and run.state.type == StateType.PAUSED:
            if not holder_alive(task.holder):
                break
            return task.flow_run_id
        time.sleep(0.3)
    raise MlcError(f"the flow run of task {task_id} is not waiting for input (state {state}, "
                   f"process {book.get(task_id).holder}); `mlc up` restarts waiting runs")
