"""A team's own processes: start them with a custom business event (`mlc events emit`, as
the token's holder) and write a new one (`mlc process new`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from deployments.cli.core import JsonFlag, api, friendly
from deployments.cli.output import emit_json
from mlc_tasks.errors import InvalidInputError

events_app = typer.Typer(help="Custom business events: they start the processes expecting "
                              "them.", no_args_is_help=True)
process_app = typer.Typer(help="A team's own processes (processes/, MLC_PROCESS_PATHS).",
                          no_args_is_help=True)


@events_app.command("emit")
@friendly
def events_emit(
    name: Annotated[str, typer.Argument(help="The event, e.g. quarterly-review (sent as "
                                             "mlc.custom.NAME).")],
    model: Annotated[str, typer.Option(help="The model it is about.")],
    payload: Annotated[str, typer.Option(help="A JSON object the processes declared.")] = "{}",
    json_out: JsonFlag = False,
) -> None:
    """Start every process that expects this event, as the token's holder (recorded)."""
    sent = api().post("/v1/events", {"name": name, "model": model,
                                     "payload": payload_object(payload)})
    if json_out:
        emit_json(sent)
        return
    typer.echo(f"mlc.custom.{sent['event']} for {sent['model']}: started "
               f"{', '.join(sent['processes'])} (request {sent['request']})")


def payload_object(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--payload: not JSON: {exc}") from exc
    if not isinstance(found, dict):
        raise InvalidInputError("--payload: must be a JSON object, e.g. '{\"days\": 30}'")
    return found


@process_app.command("new")
@friendly
def process_new(
    name: Annotated[str, typer.Argument(help="e.g. data-review: the flow's, deployment's "
                                             "and event's name.")],
    folder: Annotated[Path | None, typer.Option(help="Where to write it (default: the first "
                                                     "process folder).")] = None,
) -> None:
    """Write a commented starting point for a new process; `mlc up` serves it once restarted."""
    from deployments.starter import write_starter
    from mlc_tasks.settings import MlcSettings

    folders = MlcSettings().process_folders()
    target = folder or (folders[0] if folders else Path("processes"))
    path = write_starter(name, target)
    typer.echo(f"wrote {path}: edit it, then restart `mlc up` (it serves every process in "
               f"{target}); `mlc events emit {name} --model NAME` starts it")
