"""Alerts: list them, acknowledge one (repeats stop notifying), snooze one (repeats stop
notifying for a while) or resolve it (the channels that were told are told too), as the
token's holder."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from deployments.cli.core import JsonFlag, api, friendly, path_of
from deployments.cli.output import emit_json, key, link, show_table, text, when
from mlc_tasks.errors import InvalidInputError

alerts_app = typer.Typer(help="List, acknowledge, snooze and resolve alerts.")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
MINUTES_PER = {"m": 1, "h": 60, "d": 24 * 60}


@alerts_app.callback(invoke_without_command=True)
@friendly
def alerts(
    typer_ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List alerts, newest first (`mlc alerts ack ID`, `mlc alerts resolve ID` to act)."""
    if typer_ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in ALERT_STATUSES:
        raise InvalidInputError(f"--status: '{status}' is not open, acknowledged or resolved")
    found = api().get("/v1/alerts", status=status, model=model)
    if json_out:
        emit_json(found)
        return
    show_table("alerts", [
        key("id"), key("status"), key("severity"), key("model"), text("title"), key("count"),
        key("last seen (UTC)", drop=1), key("source", drop=2), link("run")],
        [[a["id"], a["status"], a["severity"],
          f"{a['model']}:{a['version']}" if a["version"] else a["model"], a["title"],
          a["count"], when(a["last_seen"]), a["source"], a["run_url"]] for a in found])


@alerts_app.command("ack")
@friendly
def alerts_ack(alert_id: int) -> None:
    """Acknowledge an open alert: repeats are counted but no longer notified."""
    alert = api().post(path_of("alerts", alert_id, "ack"))
    typer.echo(f"alert {alert['id']} acknowledged by {alert['acknowledged_by']}: "
               f"{alert['title']}")


@alerts_app.command("resolve")
@friendly
def alerts_resolve(alert_id: int) -> None:
    """Resolve an alert; channels that were told (a ServiceNow incident) are told too."""
    done = api().post(path_of("alerts", alert_id, "resolve"))
    alert = done["alert"]
    typer.echo(f"alert {alert['id']} resolved by {alert['resolved_by']}: {alert['title']}")
    if done["pending"] or done["failed"]:
        typer.echo(f"warning: {done['pending']} notification(s) pending, {done['failed']} "
                   "failed; see `mlc alerts --json`", err=True)


def duration_minutes(given: str) -> int:
    """'30m', '4h' or '1d' as minutes."""
    found = DURATION.match(given.strip())
    if found is None:
        raise InvalidInputError(f"--for: '{given[:20]}' is not a duration such as 30m, 4h or 1d")
    return int(found[1]) * MINUTES_PER[found[2]]


@alerts_app.command("snooze")
@friendly
def alerts_snooze(
    alert_id: int,
    for_: Annotated[str, typer.Option("--for", help="How long: 30m, 4h, 1d (at most 7d).")],
) -> None:
    """Snooze an alert: repeats are counted, not notified, until the time; then notified."""
    alert = api().post(path_of("alerts", alert_id, "snooze"),
                       {"minutes": duration_minutes(for_)})
    typer.echo(f"alert {alert['id']} snoozed by {alert['snoozed_by']} until "
               f"{when(alert['snoozed_until'])} UTC: {alert['title']}")
