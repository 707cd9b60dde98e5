"""model-change: a governance change of a model (a lower risk tier, another type, owner, team or
data location) waits for the policy's model-risk group. Started by the change-requested event
that `mlc model update` emits, with only the change's id: what changes is read from the
registry. Approval writes the change in the transaction that closes the task
(mlc_tasks/registry/governance.py); until then the registered, stricter values stay."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.alerts import raise_alert
from flows.human_tasks import (
    finish,
    mirror,
    open_task,
    wait_for_decision,
)
from flows.human_tasks import waiting_signal as task_signal
from flows.run_names import run_name
from mlc_tasks import governance
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.registry import ModelRecord
from mlc_tasks.registry.governance import ChangeRecord, GovernanceBook
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources, resources
from mlc_tasks.task_records import HumanTask, TaskKind, TaskStatus

FLOW = "model-change"


@flow(name=FLOW, flow_run_name=run_name(FLOW))
def model_change(model: str, change_id: int) -> str:
    """Wait for the model-risk group to decide change `change_id` of `model`.

    Args:
        model: the model whose registered values would change
        change_id: the requested change (`mlc model update`)
    """
    ctx, logger = resources(), get_run_logger()
    change = GovernanceBook(ctx.registry).change(change_id)
    if change.model != model:
        raise InvalidInputError(f"change {change_id} is a change of {change.model}, not {model}")
    if change.status != TaskStatus.OPEN:
        return f"change {change_id} of {model} is already {change.status}: {change.outcome}"
    task = take_over(ctx, change)
    if task is None:
        return f"change {change_id} of {model} was closed before this run took it"
    description = governance.change_markdown(model, change.changes, change.requested_by,
                                             task.groups, task.deadline, task.id)
    decided = wait_for_decision(ctx, task, description, lambda: ctx.policy().members(task.groups))
    logger.info("change %d of %s (%s): %s", change_id, model, governance.describe(
        change.changes), decided.outcome)
    if decided.status == TaskStatus.APPROVED:
        now = ctx.registry.get_model(model)
        return f"change {change_id} of {model} applied: {describe_model(now)}"
    return f"change {change_id} of {model} not applied ({decided.status}): the registered " \
           "values stay"


def take_over(ctx: Resources, change: ChangeRecord) -> HumanTask | None:
    """Point the change task at this run (the registry opened it with the request); the
    first run to take it announces it. None if it closed in the meantime."""
    first = change.flow_run_id is None
    task = open_task(ctx, TaskKind.CHANGE, change.version_id, governance.CHANGE_STEP,
                     groups=change.groups, quorum=1, deadline=ctx.policy().governance.deadline,
                     detail={})
    if task.id != change.id:  # the change closed between reading and taking it: no stray task
        book = TaskBook(ctx.registry)
        book.cancel(task.id, f"change {change.id} is closed", FLOW)
        finish(ctx, book.get(task.id))
        return None
    if first:
        raise_alert(waiting_signal(task, change))
        mirror(ctx, task, opened=True)
    return task


def waiting_signal(task: HumanTask, change: ChangeRecord) -> AlertSignal:
    """The task's 'waiting' alert (resolved with the task), saying what would change."""
    return task_signal(task).model_copy(update={
        "severity": Severity.INFO,
        "title": f"task {task.id}: change of {task.model} ({governance.describe(change.changes)})"
                 f" needs an approval from {', '.join(task.groups)}"[:300],
        "detail": f"Requested by {change.requested_by}. Until it is approved the registered "
                  f"values stay in force. Decide by {task.deadline:%Y-%m-%d %H:%M} UTC in the "
                  "Prefect UI (Resume) or with `mlc tasks`."})


def describe_model(model: ModelRecord) -> str:
    fields = governance.registered_values(model)
    return ", ".join(f"{k} {v}" for k, v in fields.items() if v is not None)
