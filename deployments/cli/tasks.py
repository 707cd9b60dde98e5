"""Human tasks: list what waits for a decision, and decide as the token's holder (approve,
reject, review); the flow that asked records the decision or the refusal."""

from __future__ import annotations

from typing import Annotated

import typer

from deployments.cli.core import JsonFlag, api, app, friendly, path_of
from deployments.cli.output import emit_json, key, link, ref, show_table, text, when
from mlc_tasks.errors import InvalidInputError


@app.command("tasks")
@friendly
def list_tasks(
    show_all: Annotated[bool, typer.Option("--all", help="Closed tasks too.")] = False,
    model: Annotated[str | None, typer.Option(help="Only this model's tasks.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Human tasks waiting for a decision: approvals, error reviews, model changes."""
    client = api()
    found = client.get("/v1/tasks", all="true" if show_all else None, model=model)
    if json_out:
        emit_json(found)
        return
    ui = client.get("/installation")["prefect_api_url"].removesuffix("/api")
    show_table("human tasks", [
        key("id"), key("kind"), key("version"), key("step"), key("status"),
        text("group", drop=1), key("quorum", drop=2), key("opened (UTC)", drop=3),
        key("deadline (UTC)"), link("Prefect UI")],
        [[t["id"], t["kind"], ref(t), t["step"], t["status"], ", ".join(t["groups"]) or "any",
          t["quorum"], when(t["created_at"]), when(t["deadline"]) or "-",
          f"{ui}/runs/flow-run/{t['flow_run_id']}" if t["flow_run_id"] else None]
         for t in found])


def _decide(task_id: int, decision: str, comment: str) -> None:
    """Decide as the token's holder; a refusal is recorded by the flow and exits 1."""
    done = api().post(path_of("tasks", task_id, "decision"),
                      {"decision": decision, "comment": comment})
    made, task = done["decision"], done["task"]
    if not made["accepted"]:
        typer.echo(f"refused: {made['refusal']} (recorded in the audit log)", err=True)
        raise typer.Exit(1)
    typer.echo(f"task {task['id']} ({task['kind']} of {ref(task)}): {decision} by "
               f"{made['actor']} recorded; task is {task['status']}"
               + (f": {task['outcome']}" if task["outcome"] else ""))


@app.command()
@friendly
def approve(
    task_id: int,
    comment: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Approve a version or a change (as the token's holder, who must be in the task's group);
    the flow goes on once the quorum is reached."""
    _decide(task_id, "approve", comment)


@app.command()
@friendly
def reject(
    task_id: int,
    reason: Annotated[str, typer.Option(help="Why; the version ends rejected with it.")],
) -> None:
    """Reject a version or a change (an approval task)."""
    _decide(task_id, "reject", reason)


@app.command()
@friendly
def review(
    task_id: int,
    action: Annotated[str, typer.Option(help="retry the failed step, or abort (version fails).")],
    comment: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Decide an error review: retry the failed step or abort."""
    if action not in ("retry", "abort"):
        raise InvalidInputError(f"--action: '{action}' is not retry or abort")
    _decide(task_id, action, comment)


@app.command()
@friendly
def answer(
    task_id: int,
    choice: Annotated[str, typer.Argument(help="One of the question's choices (`mlc tasks`).")],
    comment: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Answer a question a process asked (e.g. keep, retrain or retire in a quarterly review)."""
    _decide(task_id, choice, comment)
