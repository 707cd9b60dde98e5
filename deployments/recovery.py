"""After a restart of `mlc up`: the flow runs that waited on a human task died with the old
serving process. Start each version's on-model-changed again; it redoes nothing finished,
takes over the open task (its deadline and the decisions given so far stay) and waits again."""

from __future__ import annotations

import logging

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.states import Cancelled

from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.run_health import holder_alive
from mlc_tasks.task_records import TaskKind

log = logging.getLogger(__name__)
DEPLOYMENT = "on-model-changed/on-model-changed"
CHANGE_DEPLOYMENT = "model-change/model-change"


def restart_orphaned_runs(ctx: Resources) -> list[str]:
    """Restart the runs of open tasks whose process is gone; returns the new run ids."""
    started: list[str] = []
    done_versions: set[str] = set()
    for task in TaskBook(ctx.registry).list():
        if holder_alive(task.holder) or task.version_id in done_versions and (
                task.kind != TaskKind.CHANGE):
            continue
        if task.kind != TaskKind.CHANGE:
            done_versions.add(task.version_id)
        if task.flow_run_id:
            _cancel(task.flow_run_id, f"its process {task.holder} is gone; restarted")
        deployment, parameters = (
            (CHANGE_DEPLOYMENT, {"model": task.model, "change_id": task.id})
            if task.kind == TaskKind.CHANGE else
            (DEPLOYMENT, {"model": task.model, "number": task.number}))
        run = run_deployment(deployment, parameters=parameters, timeout=0,
                             tags=["mlc", "restarted"])
        log.info("task %d (%s %s): restarted as flow run %s", task.id, task.kind, task.ref,
                 run.id)
        started.append(str(run.id))
    return started


def _cancel(flow_run_id: str, why: str) -> None:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
        if run.state is not None and run.state.type in (StateType.PAUSED, StateType.RUNNING,
                                                        StateType.PENDING,
                                                        StateType.SCHEDULED):
            client.set_flow_run_state(flow_run_id, Cancelled(message=why),  # type: ignore[arg-type]
                                      force=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for run_id in restart_orphaned_runs(Resources()):
        log.info("restarted flow run %s", run_id)


if __name__ == "__main__":
    main()
