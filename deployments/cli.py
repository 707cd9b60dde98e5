"""`mlc`: the command line of the model life-cycle manager.

Most commands are thin clients of the control-plane API (deployments/client.py, MLC_API_URL):
they import no registry, Prefect or scikit-learn, and who acts is whoever holds the token
(MLC_TOKEN, or `mlc login`). Admin commands (`mlc people`, `mlc audit verify|anchor`, `mlc up`,
`mlc runtime start`) and the flows run here (backtest, monitor, score, results) work on the
installation's files and database directly, so they need its MLC_HOME."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote

import typer

from deployments.client import ApiClient
from mlc_tasks.errors import InvalidInputError, MlcError

if TYPE_CHECKING:
    from deployments.tables import Column
    from mlc_tasks.resources import Resources
    from mlc_tasks.settings import MlcSettings

app = typer.Typer(help="Model life-cycle manager on Prefect.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.callback()
def quiet_clients() -> None:
    """Model life-cycle manager on Prefect."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client sends nothing, says nothing
    context.cache_clear()  # each invocation finds its installation (tests invoke in-process)


runtime_app = typer.Typer(help="Run scoring runtimes.", no_args_is_help=True)
app.add_typer(runtime_app, name="runtime")
alerts_app = typer.Typer(help="List, acknowledge and resolve alerts.")
app.add_typer(alerts_app, name="alerts")
people_app = typer.Typer(help="Enrol, list and revoke the people and services who may act "
                              "(admin: on the installation's host).", no_args_is_help=True)
app.add_typer(people_app, name="people")
F = TypeVar("F", bound=Callable[..., Any])

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def friendly(command: F) -> F:
    """Our errors become one clear line on stderr and exit code 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MlcError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def api() -> ApiClient:
    """The control-plane API, as the caller's token."""
    return ApiClient()


def path_of(*parts: str | int) -> str:
    return "/v1/" + "/".join(quote(str(p), safe="") for p in parts)


@functools.cache
def context(create: bool = False) -> Resources:
    """The installation an admin command works with: the configured one, else the running
    `mlc up` (deployments/installation.py); `create` only for a first submission."""
    from deployments.installation import find_installation
    from mlc_tasks.resources import Resources

    settings, prefect_api = find_installation(create=create)
    if prefect_api:  # found running: flows this command runs here must see the same one
        os.environ.setdefault("PREFECT_API_URL", prefect_api)
        os.environ["MLC_HOME"] = str(settings.home)
        os.environ["MLC_DATABASE_URL"] = settings.registry_url()
        if settings.policy_file:
            os.environ["MLC_POLICY_FILE"] = str(settings.policy_file)
        os.environ["MLC_DATA_ROOTS"] = json.dumps(settings.data_roots)
        os.environ["MLC_TRUSTED_TYPES"] = json.dumps(settings.trusted_types)
        if settings.audit_anchor_url:
            os.environ["MLC_AUDIT_ANCHOR_URL"] = settings.audit_anchor_url
    _know_prefect_auth(settings)
    return Resources(settings)


def _know_prefect_auth(settings: MlcSettings) -> None:
    """Prefect's client and ours send PREFECT_API_AUTH_STRING: when it is not set, the one
    `mlc up` keeps under the installation's home, if this user may read it (the installation's
    API never serves it)."""
    from mlc_tasks.prefect_auth import AUTH_ENV, stored_auth

    found = None if os.environ.get(AUTH_ENV) else stored_auth(settings.home)
    if found:
        os.environ[AUTH_ENV] = found


def emit_json(records: Any) -> None:
    """Records (pydantic, or the API's JSON of them) as indented JSON."""
    def plain(record: Any) -> Any:
        return record.model_dump(mode="json") if hasattr(record, "model_dump") else record

    data = [plain(r) for r in records] if isinstance(records, list) else plain(records)
    typer.echo(json.dumps(data, indent=2))


def key(name: str, drop: int = 0) -> Column:
    """A column whose values are never cut: ids, refs, states, times."""
    from deployments.tables import Column  # pydantic: only when a table is shown

    return Column(name=name, kind="key", drop=drop)


def text(name: str, drop: int = 0) -> Column:
    """Free text, folded to fit."""
    from deployments.tables import Column

    return Column(name=name, drop=drop)


def link(name: str) -> Column:
    """A link, on its own line below its record."""
    from deployments.tables import Column

    return Column(name=name, kind="link")


def show_table(title: str, columns: list[Column], rows: list[list[Any]]) -> None:
    """A table that fits the terminal, or tab-separated lines when piped."""
    from deployments.tables import render

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    typer.echo(render(title, columns, rows, width), nl=False)


def _when(at: datetime | str | None, seconds: bool = False) -> str:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return "" if at is None else f"{at:%Y-%m-%d %H:%M:%S}" if seconds else f"{at:%Y-%m-%d %H:%M}"


def _ref(record: dict[str, Any]) -> str:
    return f"{record['model']}:{record['number']}"


@app.command()
@friendly
def submit(
    path: Annotated[Path, typer.Argument(help="Package folder with model.yaml.")],
) -> None:
    """Upload a model package: the installation validates it, stores it, registers a version
    submitted by you (the token's holder) and marks it ready."""
    from deployments.api_upload import pack

    if not path.is_dir():
        raise InvalidInputError(f"{path}: not a package folder")
    done = api().upload("/v1/packages", pack(path.resolve()))
    version = done["version"]
    typer.echo(f"{'registered' if done['created'] else 'already registered'} {_ref(version)} "
               f"(id {version['id']}, state {version['state']})")
    if done.get("warning"):
        typer.echo(f"warning: {done['warning']}. The version is registered; start `mlc up` and "
                   "submit again to start its process.", err=True)
    typer.echo(version["id"])


@app.command()
@friendly
def models(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonFlag = False
           ) -> None:
    """List models, or show one."""
    client = api()
    found = [client.get(path_of("models", name))] if name else client.get("/v1/models")
    if json_out:
        emit_json(found)
        return
    champions = client.get("/v1/champions")
    show_table("models", [key("name"), key("type"), key("risk"), key("champion"),
                          key("owner", drop=2), key("tags", drop=3),
                          text("description", drop=1)],
               [[m["name"], m["type"], m["risk_tier"], champions.get(m["name"], "-"),
                 m["owner"], _tags(m["tags"]), m["description"]] for m in found])


@app.command()
@friendly
def versions(name: str, json_out: JsonFlag = False) -> None:
    """List a model's versions, newest first."""
    client = api()
    found = client.get(path_of("models", name, "versions"))
    if json_out:
        emit_json(found)
        return
    champion = client.get("/v1/champions").get(name)
    show_table(f"versions of {name}", [
        key("version"), key("state"), key("champion"), key("sha256", drop=3),
        key("created by", drop=2), key("created (UTC)", drop=1), key("id", drop=4)],
        [[v["number"], v["state"], "champion" if v["number"] == champion else "",
          (v["artifact_sha256"] or "(to train)")[:12], v["created_by"],
          _when(v["created_at"], True), v["id"]] for v in found])


@app.command("runtimes")
@friendly
def list_runtimes(json_out: JsonFlag = False) -> None:
    """List registered runtimes with what each serves."""
    client = api()
    found = client.get("/v1/runtimes")
    if json_out:
        emit_json(found)
        return
    serving = client.get("/v1/runtimes/serving")
    show_table("runtimes", [key("name"), key("url"), text("tags"), text("serving"),
                            key("heartbeat (UTC)", drop=1)],
               [[r["name"], r["url"], _tags(r["tags"]), serving.get(r["name"], "-"),
                 f"{datetime.fromisoformat(r['last_heartbeat']):%H:%M:%S}"] for r in found])


@app.command()
@friendly
def deploy(
    name: str,
    version: int,
    tags: Annotated[str, typer.Option(help="Runtime tags that must all match, e.g. env=qa.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "manual deploy",
) -> None:
    """Deploy a version onto the one runtime whose tags match (a verified manual deploy: the
    audit log names you)."""
    done = api().post(path_of("models", name, "deploy"),
                      {"version": version, "tags": tags, "reason": reason})
    runtime = done["runtime"]
    verb = "deployed" if done["deployed"] else "already deployed"
    typer.echo(f"{verb} {_ref(done['version'])} on {runtime['name']} "
               f"({runtime['url']}/invocations)")


@app.command("deployments")
@friendly
def list_deployments(
    name: str,
    env: Annotated[str | None, typer.Option(help="With --at: the runtime env tag, e.g. prod.")
                   ] = None,
    at: Annotated[datetime | None, typer.Option(
        help="Which version served --env at this time (UTC), e.g. 2026-11-26T08:00:00.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """A model's deployment history, or which version served an env at a time."""
    if (at is None) != (env is None):
        raise InvalidInputError("--env and --at go together")
    found = api().get(path_of("models", name, "deployments"), env=env,
                      at=at.isoformat() if at else None)
    if at is not None:
        if json_out:
            typer.echo(json.dumps(found, indent=2))
        else:
            typer.echo(f"{_ref(found)} (id {found['id']})" if found
                       else f"nothing served {env} then")
        return
    if json_out:
        emit_json(found)
        return
    show_table(f"deployments of {name}", [
        key("version"), key("runtime"), key("env"), key("from (UTC)"), key("to (UTC)"),
        text("by", drop=1), text("why")],
        [[d["version_number"], d["runtime"], d["env"], _when(d["deployed_at"], True),
          _when(d["replaced_at"], True) if d["replaced_at"] else "now", d["deployed_by"],
          d["reason"]] for d in found])


@app.command()
@friendly
def audit(
    target: Annotated[str | None, typer.Argument(
        help="A model name; 'verify' to check the whole log (its keyed chain, the newest "
             "anchor, the state tables); 'anchor' to write its head to the anchor sink.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        help="A model name (also one called 'verify' or 'anchor').")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show a model's audit trail, verify the audit log (`mlc audit verify`, exit 1 when
    anything is wrong; admin) or anchor its head outside the database (`mlc audit anchor`)."""
    if target == "verify" and model is None:
        raise typer.Exit(0 if _verify_audit(context(), json_out) else 1)
    if target == "anchor" and model is None:
        raise typer.Exit(0 if _anchor_audit(context(), json_out) else 1)
    name = model or target
    found = api().get("/v1/audit", model=name)
    if json_out:
        emit_json(found)
        return
    show_table(f"audit of {name or 'everything'}", [
        key("#"), key("when (UTC)"), text("who"), key("what"), text("why"),
        text("detail", drop=1)],
        [[e["seq"], _when(e["at"], True), e["actor"], e["action"], e["reason"],
          json.dumps(e["detail"], sort_keys=True)] for e in found])


def _verify_audit(ctx: Resources, json_out: bool) -> bool:
    from mlc_tasks.audit_anchor import newest_anchor

    url = ctx.settings.anchor_url()
    report = ctx.registry.verify_audit(newest_anchor(url))
    if json_out:
        emit_json(report)
        return report.ok
    typer.echo(f"audit log {'intact' if report.ok else 'BROKEN'}: {report.events} events"
               + (f"; {report.problem}" if report.problem else ""))
    if report.keyed_from:
        typer.echo(f"keyed from event {report.keyed_from}")
    typer.echo(f"anchor: {report.anchor}" if report.anchor else
               f"anchor: none yet at {url} (`mlc audit anchor` writes one)")
    for differ in report.disagreements[1:]:
        typer.echo(f"also: {differ}")
    return report.ok


def _anchor_audit(ctx: Resources, json_out: bool) -> bool:
    from mlc_tasks.audit_anchor import anchor_log

    done = anchor_log(ctx.registry, ctx.settings.anchor_url())
    if json_out:
        emit_json(done)
    else:
        typer.echo(f"{'anchored' if done.written else 'already anchored'} event "
                   f"{done.anchor.seq} in {done.anchor.uri}")
    for differ in done.report.disagreements:
        typer.echo(f"warning: {differ}", err=True)
    return done.report.ok


ALERT_STATUSES = ("open", "acknowledged", "resolved")


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
          a["count"], _when(a["last_seen"]), a["source"], a["run_url"]] for a in found])


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
        [[t["id"], t["kind"], _ref(t), t["step"], t["status"], ", ".join(t["groups"]) or "any",
          t["quorum"], _when(t["created_at"]), _when(t["deadline"]) or "-",
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
    typer.echo(f"task {task['id']} ({task['kind']} of {_ref(task)}): {decision} by "
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
def backtest(
    name: str,
    day: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: yesterday).")
                   ] = None,
) -> None:
    """Backtest the version a model serves in production on a day's labelled data, now."""
    from flows.daily_backtest import daily_backtest

    results = _run_here(daily_backtest, name, day)
    if not results:
        raise InvalidInputError(f"{name}: nothing to backtest (not in production, or no "
                                "data_location in its model.yaml)")
    for result in results:
        typer.echo(f"{name} {result.window}: {_result_line(result)}")


@app.command()
@friendly
def monitor(
    name: str,
    day: Annotated[str | None, typer.Option(
        "--date", help="Last day of the window, YYYY-MM-DD (default: yesterday).")] = None,
) -> None:
    """Check drift, performance and fairness of a model's production version, now."""
    from flows.monitor import monitor as monitor_flow

    found = _run_here(monitor_flow, name, day)
    if not found:
        raise InvalidInputError(f"{name}: nothing to monitor (not in production, or no "
                                "data_location in its model.yaml)")
    for result in found:
        failing = [c.metric for c in result.thresholds if not c.passed]
        verdict = result.outcome if result.outcome != "tested" else (
            "passed" if result.passed else f"breach: {', '.join(failing)}")
        typer.echo(f"{name} {result.window} {result.kind}: {verdict}")
    from mlc_tasks.reports import report_link

    report = report_link(context().settings.installation_url(),
                         next((r.report_uri for r in found if r.report_uri), None))
    if report:
        typer.echo(f"Evidently report: {report}")


@app.command()
@friendly
def score(
    name: str,
    input_uri: Annotated[str, typer.Argument(help="A CSV file: a path or any fsspec URL.")],
    chunk_rows: Annotated[int, typer.Option(help="Rows scored at a time.")] = 50_000,
) -> None:
    """Score a dataset with the version in production; predictions are written beside it."""
    from rich.console import Console
    from rich.progress import Progress

    from flows.batch_score import batch_score, progress_listener

    console = Console(stderr=True)  # the progress bar only: the output is the path

    if "://" not in input_uri:
        input_uri = Path(input_uri).resolve().as_uri()
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task(f"scoring {input_uri}", total=None)
        token = progress_listener.set(lambda read, total: bar.update(job, completed=read,
                                                                     total=total))
        try:
            output = _run_here(batch_score, name, input_uri, chunk_rows)
        finally:
            progress_listener.reset(token)
    typer.echo(f"predictions written to {output}")


@app.command()
@friendly
def results(name: str, json_out: JsonFlag = False) -> None:
    """Test and backtest results of a model's versions, newest first."""
    ctx = context()
    found = [(v, r) for v in ctx.registry.list_versions(name)
             for r in reversed(ctx.registry.test_results(v.id))]
    if json_out:
        emit_json([r for _, r in found])
        return
    show_table(f"results of {name}", [
        key("version"), key("kind"), key("window"), key("outcome"), key("passed"),
        text("metrics", drop=1), text("thresholds missed"), key("recorded (UTC)", drop=2)],
        [[v.number, r.kind, r.window or "-", r.outcome, r.passed,
          ", ".join(f"{k}={val:.4g}" for k, val in sorted(r.metrics.items())),
          ", ".join(c.metric for c in r.thresholds if not c.passed) or "-",
          _when(r.created_at)] for v, r in found])




@app.command()
@friendly
def retrain(
    name: str,
    data: Annotated[str | None, typer.Option(
        help="A labelled CSV file (path or fsspec URL) under the model's data location; "
             "default: the data location's recent days.")] = None,
) -> None:
    """Ask for a retraining (recorded as yours): the served retrain deployment trains a
    challenger, compares it with the champion, and promotes it through approval if it wins."""
    if data and "://" not in data:
        path = Path(data).resolve()
        if not path.is_file():
            raise InvalidInputError(f"--data: {data} is not a file")
        data = path.as_uri()
    done = api().post(path_of("models", name, "retrain"), {"data": data})
    typer.echo(f"retraining of {name} requested (request {done['request']}); the retrain "
               "deployment starts it")
    typer.echo(f"then `mlc comparisons {name}` and `mlc tasks`")


@app.command()
@friendly
def comparisons(name: str, json_out: JsonFlag = False) -> None:
    """Champion/challenger comparisons of a model and their decisions, oldest first."""
    client = api()
    found = client.get(path_of("models", name, "comparisons"))
    if json_out:
        emit_json(found)
        return
    numbers = {v["id"]: v["number"] for v in client.get(path_of("models", name, "versions"))}
    show_table(f"comparisons of {name}", [
        key("champion"), key("challenger"), key("rows"), key("outcome"), text("reason"),
        key("recorded (UTC)", drop=1)],
        [[numbers[c["champion_version_id"]], numbers[c["challenger_version_id"]], c["rows"],
          c["outcome"], c["reason"], _when(c["created_at"])] for c in found])


def _on_installation(call: Callable[[], Any]) -> Any:
    """Call Prefect on the server `mlc up` started (not a throwaway ephemeral one), with its
    auth string (Prefect read its settings when it was imported, maybe before we knew it)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from mlc_tasks.prefect_auth import AUTH_ENV

    updates: dict[Any, Any] = {PREFECT_API_URL: context().prefect_api_url()}
    if os.environ.get(AUTH_ENV):
        updates[PREFECT_API_AUTH_STRING] = os.environ[AUTH_ENV]
    with temporary_settings(updates):
        return call()


def _run_here(flow: Callable[..., Any], *args: Any) -> Any:
    """Run a flow in this process, recorded on the installation's Prefect server so it shows
    in the UI like a served run; its link is printed before what it found."""
    state = _on_installation(lambda: flow(*args, return_state=True))
    try:
        return state.result()
    finally:
        typer.echo(f"run: {_run_link(state.state_details.flow_run_id)}")


def _run_link(run_id: object) -> str:
    return f"{context().prefect_api_url().removesuffix('/api')}/runs/flow-run/{run_id}"


def _result_line(result: Any) -> str:
    if result.outcome == "no data":
        return f"no data at {result.dataset_uri}"
    missed = [c.metric for c in result.thresholds if not c.passed]
    return ("passed" if result.passed else f"missed {', '.join(missed)}") + " (" + ", ".join(
        f"{k}={v:.4g}" for k, v in sorted(result.metrics.items())) + ")"




@app.command()
@friendly
def rollback(
    name: str,
    env: Annotated[str, typer.Option(help="The stage to roll back: prod or qa.")] = "prod",
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "rollback",
) -> None:
    """Redeploy the last good version (the one served before the current) on a stage."""
    if env not in ("prod", "qa"):
        raise InvalidInputError(f"--env: '{env}' is not prod or qa")
    done = api().post(path_of("models", name, "rollback"), {"env": env, "reason": reason})
    typer.echo(f"rolled back {done['runtime']['name']} to {_ref(done['version'])}")


@app.command()
@friendly
def up(
    submit_paths: Annotated[list[Path] | None, typer.Option(
        "--submit", help="Package folders to submit once everything is up.")] = None,
) -> None:
    """Start the Prefect server (unless PREFECT_API_URL is set), the runtimes, and serve every
    deployment. Ctrl-C stops everything it started."""
    from deployments.up import Supervisor
    from mlc_tasks.resources import Resources

    supervisor = Supervisor(Resources().settings)
    sys.exit(supervisor.run(submit_paths or []))


@runtime_app.command("start")
@friendly
def runtime_start(
    name: str,
    tags: Annotated[str, typer.Option(help="e.g. env=qa,zone=eu")],
    port: Annotated[int, typer.Option(help="Port on the loopback/host address.")],
    repin: Annotated[bool, typer.Option(
        help="Move a runtime pinned to another URL to this one (an admin's decision, "
             "audited).")] = False,
) -> None:
    """Start a scoring runtime that registers itself in the inventory. Its URL is pinned at the
    first registration; it holds its own admin token (MLC_RUNTIME_TOKENS, else generated)."""
    import uvicorn

    from deployments.runtime_server import capabilities, create_app
    from mlc_tasks import runtimes
    from mlc_tasks.capture import InputCapture
    from mlc_tasks.resources import Resources
    from mlc_tasks.scoring import RequestLimits

    ctx = Resources()
    settings = ctx.settings
    url, parsed = f"http://{settings.host}:{port}", runtimes.parse_tags(tags)
    token = settings.resolved_runtime_token(name)
    # registered here first, so that a refused re-pin is one clear line, not a startup trace
    ctx.registry.upsert_runtime(name, url, parsed, capabilities(),
                                repin_by=admin_actor() if repin else None)
    capture = InputCapture(settings.capture_dir(), name, settings.capture_max_rows_per_day,
                           settings.capture_max_bytes_per_day)
    limits = RequestLimits(max_bytes=settings.max_request_bytes, max_rows=settings.max_rows)
    application = create_app(name, parsed, token, settings.trusted_types, ctx.registry, url,
                             settings.heartbeat_seconds, capture, limits,
                             prod=ctx.policy().deployment.prod)
    uvicorn.run(application, host=settings.host, port=port, log_level="warning")


def _tags(tags: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


@app.command()
@friendly
def login() -> None:
    """Keep your token (read from the terminal without echo, or from stdin) for later
    commands, readable by you only; it is checked with the API first."""
    import getpass

    from deployments.client import store_token

    given = (getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()).strip()
    if not given:
        raise InvalidInputError("no token given (`mlc people enroll` issues one)")
    client = ApiClient(token=given)
    me = client.get("/v1/whoami")
    path = store_token(given)
    typer.echo(f"logged in to {client.url} as {me['id']} ({me['kind']}: "
               f"{', '.join(me['scopes'])}); token kept in {path}")


@app.command()
@friendly
def logout() -> None:
    """Forget the token `mlc login` kept."""
    from deployments.client import forget_token

    path = forget_token()
    typer.echo(f"token removed from {path}" if path else "no token was kept")


@app.command()
@friendly
def whoami(json_out: JsonFlag = False) -> None:
    """Who the API takes you for, and what you may do."""
    me = api().get("/v1/whoami")
    if json_out:
        emit_json(me)
        return
    typer.echo(f"{me['id']} ({me['kind']}: {', '.join(me['scopes'])})")


def admin_actor() -> str:
    """Who an admin command acts as: the account on this host (it owns MLC_HOME)."""
    import getpass

    from mlc_tasks.people import local_actor

    return local_actor(getpass.getuser())


@people_app.command("enroll")
@friendly
def people_enroll(
    principal_id: Annotated[str, typer.Argument(
        metavar="ID", help="A person of the policy (an email), or a service's id with --service.")],
    service: Annotated[bool, typer.Option(
        "--service", help="A service (CI): a token to read and submit, no authenticator.")
                       ] = False,
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="Grant only these (read, submit, decide, operate); repeatable.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Issue a personal API token (shown once) and, for a person, an authenticator secret
    (an otpauth:// URI and its QR code); enrolling again replaces both."""
    from mlc_tasks.people import SCOPES, PrincipalKind
    from mlc_tasks.registry.principals import PrincipalBook

    ctx = context()
    kind = PrincipalKind.SERVICE if service else PrincipalKind.PERSON
    pid = _enrollable(ctx, principal_id, kind)
    granted = _scopes(scope or [], SCOPES[kind], kind)
    made = PrincipalBook(ctx.registry).enroll(pid, kind, admin_actor(), granted or None)
    principal = made.principal
    if json_out:
        emit_json({"id": principal.id, "kind": principal.kind.value,
                   "scopes": [s.value for s in principal.scopes], "token": made.token,
                   "otpauth_uri": made.otpauth_uri})
        return
    typer.echo(f"enrolled {principal.id} ({principal.kind.value}: "
               f"{', '.join(s.value for s in principal.scopes)})")
    typer.echo(f"token (shown once; hand it over privately): {made.token}")
    if made.otpauth_uri:
        import segno

        typer.echo(f"authenticator (scan, or add the URI): {made.otpauth_uri}")
        segno.make(made.otpauth_uri).terminal(out=sys.stdout, compact=True)


def _enrollable(ctx: Resources, given: str, kind: Any) -> str:
    """The canonical id: a person must be in the policy, a service must not be."""
    from mlc_tasks.people import PrincipalKind, check_id

    try:
        pid = check_id(given)
    except ValueError as exc:
        raise InvalidInputError(f"ID: {exc}") from exc
    known = ctx.policy().person(pid) is not None
    where = ctx.settings.policy_file or "the built-in policy"
    if kind == PrincipalKind.PERSON and not known:
        raise InvalidInputError(f"{pid} is not a person in the policy ({where}): add them "
                                "under 'people' first (or enroll a service with --service)")
    if kind == PrincipalKind.SERVICE and known:
        raise InvalidInputError(f"{pid} is a person in the policy ({where}), not a service")
    return pid


def _scopes(given: list[str], allowed: list[Any], kind: Any) -> list[Any]:
    from mlc_tasks.people import Scope

    granted = []
    for name in given:
        try:
            found = Scope(name)
        except ValueError as exc:
            raise InvalidInputError(f"--scope: '{name}' is not one of "
                                    f"{', '.join(s.value for s in Scope)}") from exc
        if found not in allowed:
            raise InvalidInputError(f"--scope: a {kind.value} may hold only "
                                    f"{', '.join(s.value for s in allowed)}, not '{name}'")
        granted.append(found)
    return granted


@people_app.command("list")
@friendly
def people_list(json_out: JsonFlag = False) -> None:
    """Everyone enrolled, revoked ones too (never their credentials)."""
    from mlc_tasks.registry.principals import PrincipalBook

    found = PrincipalBook(context().registry).list()
    if json_out:
        emit_json(found)
        return
    show_table("people and services", [
        key("id"), key("kind"), text("scopes"), key("authenticator"), key("enrolled (UTC)"),
        key("revoked (UTC)")],
        [[p.id, p.kind.value, ", ".join(s.value for s in p.scopes),
          "yes" if p.has_authenticator else "no", _when(p.enrolled_at), _when(p.revoked_at)
          or "-"] for p in found])


@people_app.command("revoke")
@friendly
def people_revoke(principal_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke a token and authenticator at once (`mlc people enroll` issues new ones)."""
    from mlc_tasks.registry.principals import PrincipalBook

    try:
        done = PrincipalBook(context().registry).revoke(principal_id, admin_actor())
    except ValueError as exc:
        raise InvalidInputError(f"ID: {exc}") from exc
    typer.echo(f"revoked {done.id}: its token and authenticator no longer work")


model_app = typer.Typer(help="Change a model's governance fields.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("update")
@friendly
def model_update(
    name: str,
    risk_tier: Annotated[str | None, typer.Option(
        "--risk-tier", help="low, medium or high; raising it applies at once.")] = None,
    model_type: Annotated[str | None, typer.Option(
        "--type", help="classification or regression.")] = None,
    owner: Annotated[str | None, typer.Option(help="The accountable person.")] = None,
    team: Annotated[str | None, typer.Option(help="The `team` tag (alert routing).")] = None,
    data_location: Annotated[str | None, typer.Option(
        "--data-location", help="Where labelled data arrives; under the data roots.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Change a model's type, risk tier, owner, team or data location. Raising the risk tier
    applies at once; every other change opens a change task for the policy's model-risk group,
    and until it is approved the registered values stay in force."""
    from mlc_tasks.governance import ChangeOutcome, outcome_lines

    given = {k: v for k, v in {"risk_tier": risk_tier, "type": model_type, "owner": owner,
                               "team": team, "data_location": data_location}.items()
             if v is not None}
    if not given:
        raise InvalidInputError("give at least one of --risk-tier, --type, --owner, --team, "
                                "--data-location")
    if given.get("data_location") and "://" not in given["data_location"]:
        given["data_location"] = os.path.abspath(given["data_location"])  # this terminal's
    outcome = ChangeOutcome.model_validate(api().patch(path_of("models", name), given))
    if json_out:
        emit_json(outcome)
        return
    for line in outcome_lines(outcome):
        typer.echo(line)


if __name__ == "__main__":
    app()
