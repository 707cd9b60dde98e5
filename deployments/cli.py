"""`mlc`: the command line of the model life-cycle manager."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console

from deployments.context import Context, current_user
from deployments.installation import find_installation
from deployments.tables import Column, render
from mlc_tasks import runtimes
from mlc_tasks.errors import InvalidInputError, MlcError, TransientError

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
console = Console(stderr=True)  # progress bars only: tables come from deployments/tables.py
F = TypeVar("F", bound=Callable[..., Any])

AsUser = Annotated[str | None, typer.Option("--as", help="Who does this (default: $MLC_USER).")]
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


@functools.cache
def context(create: bool = False) -> Context:
    """The installation this command works with: the configured one, else the running
    `mlc up` (deployments/installation.py); `create` only for a first submission."""
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
    return Context(settings)


def emit_json(records: list[BaseModel] | BaseModel) -> None:
    if isinstance(records, BaseModel):
        data: Any = records.model_dump(mode="json")
    else:
        data = [r.model_dump(mode="json") for r in records]
    typer.echo(json.dumps(data, indent=2))


def key(name: str, drop: int = 0) -> Column:
    """A column whose values are never cut: ids, refs, states, times."""
    return Column(name=name, kind="key", drop=drop)


def text(name: str, drop: int = 0) -> Column:
    """Free text, folded to fit."""
    return Column(name=name, drop=drop)


def link(name: str) -> Column:
    """A link, on its own line below its record."""
    return Column(name=name, kind="link")


def show_table(title: str, columns: list[Column], rows: list[list[Any]]) -> None:
    """A table that fits the terminal, or tab-separated lines when piped."""
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    typer.echo(render(title, columns, rows, width), nl=False)


def _when(at: datetime | None, seconds: bool = False) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M:%S}" if seconds else f"{at:%Y-%m-%d %H:%M}"


@app.command()
@friendly
def submit(
    path: Annotated[Path, typer.Argument(help="Package folder with model.yaml.")],
    as_user: AsUser = None,
) -> None:
    """Validate a model package, store it, register a version and mark it ready."""
    from mlc_tasks import events  # skops takes seconds to import: only when needed
    from mlc_tasks.submission import submit_package

    ctx, actor = context(create=True), as_user or current_user()
    version, created = submit_package(path, ctx.registry, ctx.store(),
                                      ctx.settings.trusted_types, actor)
    typer.echo(f"{'registered' if created else 'already registered'} {version.ref} "
               f"(id {version.id}, state {version.state})")
    try:
        events.emit(events.model_ready_event(version, actor), ctx.prefect_api_url())
    except TransientError as exc:
        typer.echo(f"warning: {exc}. The version is registered; start `mlc up` and submit "
                   "again to start its process.", err=True)
    typer.echo(version.id)


@app.command()
@friendly
def models(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonFlag = False
           ) -> None:
    """List models, or show one."""
    from mlc_tasks.registry.champions import ChampionBook

    registry = context().registry
    found = [registry.get_model(name)] if name else registry.list_models()
    if json_out:
        emit_json(found)
        return
    champions = ChampionBook(registry)
    rows = []
    for m in found:
        champion = champions.champion(m.name)
        rows.append([m.name, m.type, m.risk_tier, champion.number if champion else "-",
                     m.owner, _tags(m.tags), m.description])
    show_table("models", [key("name"), key("type"), key("risk"), key("champion"),
                          key("owner", drop=2), key("tags", drop=3),
                          text("description", drop=1)], rows)


@app.command()
@friendly
def versions(name: str, json_out: JsonFlag = False) -> None:
    """List a model's versions, newest first."""
    from mlc_tasks.registry.champions import ChampionBook

    registry = context().registry
    found = registry.list_versions(name)
    if json_out:
        emit_json(found)
        return
    champion = ChampionBook(registry).champion(name)
    show_table(f"versions of {name}", [
        key("version"), key("state"), key("champion"), key("sha256", drop=3),
        key("created by", drop=2), key("created (UTC)", drop=1), key("id", drop=4)],
        [[v.number, v.state, "champion" if champion and v.id == champion.id else "",
          (v.artifact_sha256 or "(to train)")[:12], v.created_by, _when(v.created_at, True),
          v.id] for v in found])


@app.command("runtimes")
@friendly
def list_runtimes(json_out: JsonFlag = False) -> None:
    """List registered runtimes with what each serves."""
    ctx = context()
    found = ctx.registry.list_runtimes()
    if json_out:
        emit_json(found)
        return
    rows = []
    for r in found:
        current = ctx.registry.current_deployment(r.name)
        serving = f"{current.model}:{current.version_number}" if current else "-"
        rows.append([r.name, r.url, _tags(r.tags), serving, f"{r.last_heartbeat:%H:%M:%S}"])
    show_table("runtimes", [key("name"), key("url"), text("tags"), text("serving"),
                            key("heartbeat (UTC)", drop=1)], rows)


@app.command()
@friendly
def deploy(
    name: str,
    version: int,
    tags: Annotated[str, typer.Option(help="Runtime tags that must all match, e.g. env=qa.")],
    as_user: AsUser = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "manual deploy",
) -> None:
    """Deploy a version onto the one runtime whose tags match."""
    wanted = runtimes.parse_tags(tags)
    ctx = context()
    record = ctx.registry.get_version(name, version)
    runtime = ctx.choose_runtime(wanted)
    done = runtimes.deploy_version(ctx.registry, ctx.runtime_client(runtime), runtime,
                                   record, as_user or current_user(), reason)
    verb = "deployed" if done else "already deployed"
    typer.echo(f"{verb} {record.ref} on {runtime.name} ({runtime.url}/invocations)")


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
    registry = context().registry
    if at is not None or env is not None:
        if at is None or env is None:
            raise InvalidInputError("--env and --at go together")
        if at.tzinfo is not None:
            at = at.astimezone(UTC)
        found = registry.version_in_env_at(name, env, at.replace(tzinfo=None))
        if json_out:
            typer.echo(json.dumps(found.model_dump(mode="json") if found else None, indent=2))
        else:
            typer.echo(f"{found.ref} (id {found.id})" if found else f"nothing served {env} then")
        return
    history = registry.deployments(name)
    if json_out:
        emit_json(history)
        return
    show_table(f"deployments of {name}", [
        key("version"), key("runtime"), key("env"), key("from (UTC)"), key("to (UTC)"),
        text("by", drop=1), text("why")],
        [[d.version_number, d.runtime, d.env, _when(d.deployed_at, True),
          _when(d.replaced_at, True) if d.replaced_at else "now", d.deployed_by, d.reason]
         for d in history])


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
    anything is wrong) or anchor its head outside the database (`mlc audit anchor`)."""
    if target == "verify" and model is None:
        raise typer.Exit(0 if _verify_audit(context(), json_out) else 1)
    if target == "anchor" and model is None:
        raise typer.Exit(0 if _anchor_audit(context(), json_out) else 1)
    registry = context().registry
    name = model or target
    if name is not None:
        registry.get_model(name)  # a clear error for an unknown model
    found = registry.audit_events(name)
    if json_out:
        emit_json(found)
        return
    show_table(f"audit of {name or 'everything'}", [
        key("#"), key("when (UTC)"), text("who"), key("what"), text("why"),
        text("detail", drop=1)],
        [[e.seq, _when(e.at, True), e.actor, e.action, e.reason,
          json.dumps(e.detail, sort_keys=True)] for e in found])


def _verify_audit(ctx: Context, json_out: bool) -> bool:
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


def _anchor_audit(ctx: Context, json_out: bool) -> bool:
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
    from mlc_tasks.alert_records import AlertStatus
    from mlc_tasks.registry.alerts import AlertBook

    try:
        wanted = AlertStatus(status) if status else None
    except ValueError as exc:
        raise InvalidInputError(f"--status: '{status}' is not open, acknowledged or resolved"
                                ) from exc
    found = AlertBook(context().registry).list(wanted, model)
    if json_out:
        emit_json(found)
        return
    show_table("alerts", [
        key("id"), key("status"), key("severity"), key("model"), text("title"), key("count"),
        key("last seen (UTC)", drop=1), key("source", drop=2), link("run")],
        [[a.id, a.status, a.severity, f"{a.model}:{a.version}" if a.version else a.model,
          a.title, a.count, _when(a.last_seen), a.source, a.run_url] for a in found])


@alerts_app.command("ack")
@friendly
def alerts_ack(alert_id: int, as_user: AsUser = None) -> None:
    """Acknowledge an open alert: repeats are counted but no longer notified."""
    from mlc_tasks.registry.alerts import AlertBook

    alert = AlertBook(context().registry).acknowledge(alert_id, as_user or current_user())
    typer.echo(f"alert {alert.id} acknowledged by {alert.acknowledged_by}: {alert.title}")


@alerts_app.command("resolve")
@friendly
def alerts_resolve(alert_id: int, as_user: AsUser = None) -> None:
    """Resolve an alert; channels that were told (a ServiceNow incident) are told too."""
    from mlc_tasks.registry.alerts import AlertBook

    ctx = context()
    alert = AlertBook(ctx.registry).resolve(alert_id, as_user or current_user())
    typer.echo(f"alert {alert.id} resolved by {alert.resolved_by}: {alert.title}")
    report = ctx.deliver_alerts()
    if report.pending or report.failed:
        typer.echo(f"warning: {report.pending} notification(s) pending, {report.failed} failed; "
                   "see `mlc alerts --json`", err=True)


@app.command("tasks")
@friendly
def list_tasks(
    show_all: Annotated[bool, typer.Option("--all", help="Closed tasks too.")] = False,
    model: Annotated[str | None, typer.Option(help="Only this model's tasks.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Human tasks waiting for a decision: approvals and error reviews."""
    from mlc_tasks.registry.tasks import TaskBook
    from mlc_tasks.task_records import TaskStatus

    ctx = context()
    found = TaskBook(ctx.registry).list(None if show_all else TaskStatus.OPEN, model)
    if json_out:
        emit_json(found)
        return
    ui = ctx.prefect_api_url().removesuffix("/api")
    show_table("human tasks", [
        key("id"), key("kind"), key("version"), key("step"), key("status"),
        text("group", drop=1), key("quorum", drop=2), key("opened (UTC)", drop=3),
        key("deadline (UTC)"), link("Prefect UI")],
        [[t.id, t.kind, t.ref, t.step, t.status, ", ".join(t.groups) or "any", t.quorum,
          _when(t.created_at), _when(t.deadline) or "-",
          f"{ui}/runs/flow-run/{t.flow_run_id}" if t.flow_run_id else None] for t in found])


def _decide(task_id: int, actor: str, decision: str, comment: str) -> None:
    from deployments.decide import submit_decision

    made, task = submit_decision(context(), task_id, actor, decision, comment)
    if not made.accepted:
        typer.echo(f"refused: {made.refusal} (recorded in the audit log)", err=True)
        raise typer.Exit(1)
    typer.echo(f"task {task.id} ({task.kind} of {task.ref}): {decision} by {actor} recorded; "
               f"task is {task.status}" + (f": {task.outcome}" if task.outcome else ""))


@app.command()
@friendly
def approve(
    task_id: int,
    as_user: Annotated[str, typer.Option("--as", help="The approver (a member of the group).")],
    comment: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Approve a version (an approval task); the flow goes on once the quorum is reached."""
    _decide(task_id, as_user, "approve", comment)


@app.command()
@friendly
def reject(
    task_id: int,
    as_user: Annotated[str, typer.Option("--as", help="The approver (a member of the group).")],
    reason: Annotated[str, typer.Option(help="Why; the version ends rejected with it.")],
) -> None:
    """Reject a version (an approval task)."""
    _decide(task_id, as_user, "reject", reason)


@app.command()
@friendly
def review(
    task_id: int,
    as_user: Annotated[str, typer.Option("--as", help="The reviewer.")],
    action: Annotated[str, typer.Option(help="retry the failed step, or abort (version fails).")],
    comment: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Decide an error review: retry the failed step or abort."""
    if action not in ("retry", "abort"):
        raise InvalidInputError(f"--action: '{action}' is not retry or abort")
    _decide(task_id, as_user, action, comment)


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
    from rich.progress import Progress

    from flows.batch_score import batch_score, progress_listener

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
        help="A labelled CSV file (path or fsspec URL); default: the data location's recent "
             "days.")] = None,
    as_user: AsUser = None,
) -> None:
    """Ask for a retraining: the served retrain deployment trains a challenger, compares it
    with the champion, and promotes it through approval if it wins."""
    from prefect.deployments import run_deployment

    ctx = context()
    ctx.registry.get_model(name)  # a clear error for an unknown model
    if data and "://" not in data:
        path = Path(data).resolve()
        if not path.is_file():
            raise InvalidInputError(f"--data: {data} is not a file")
        data = path.as_uri()
    run = _on_installation(lambda: run_deployment(
        "retrain/retrain", parameters={"model": name, "data": data,
                                       "trigger": f"manual ({as_user or current_user()})"},
        timeout=0, tags=["mlc", "manual"]))
    typer.echo(f"retraining of {name} started: {_run_link(run.id)}")
    typer.echo(f"then `mlc comparisons {name}` and `mlc tasks`")


@app.command()
@friendly
def comparisons(name: str, json_out: JsonFlag = False) -> None:
    """Champion/challenger comparisons of a model and their decisions, oldest first."""
    from mlc_tasks.registry.champions import ChampionBook

    ctx = context()
    found = ChampionBook(ctx.registry).comparisons(name)
    if json_out:
        emit_json(found)
        return
    numbers = {v.id: v.number for v in ctx.registry.list_versions(name)}
    show_table(f"comparisons of {name}", [
        key("champion"), key("challenger"), key("rows"), key("outcome"), text("reason"),
        key("recorded (UTC)", drop=1)],
        [[numbers[c.champion_version_id], numbers[c.challenger_version_id], c.rows,
          c.outcome, c.reason, _when(c.created_at)] for c in found])


def _on_installation(call: Callable[[], Any]) -> Any:
    """Call Prefect on the server `mlc up` started (not a throwaway ephemeral one)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.decide import prefect_api

    with temporary_settings({PREFECT_API_URL: prefect_api(context())}):
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
    from deployments.decide import prefect_api

    return f"{prefect_api(context()).removesuffix('/api')}/runs/flow-run/{run_id}"


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
    as_user: AsUser = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "rollback",
) -> None:
    """Redeploy the last good version (the one served before the current) on a stage."""
    ctx = context()
    stages = ctx.policy().deployment
    if env not in ("prod", "qa"):
        raise InvalidInputError(f"--env: '{env}' is not prod or qa")
    runtime = ctx.choose_runtime(getattr(stages, env))
    target = runtimes.rollback_target(ctx.registry.deployments(name), runtime.name)
    version = ctx.registry.get_version(name, target.version_number)
    runtimes.deploy_version(ctx.registry, ctx.runtime_client(runtime), runtime, version,
                            as_user or current_user(), f"{reason}: back to {version.ref}")
    typer.echo(f"rolled back {runtime.name} to {version.ref}")


@app.command()
@friendly
def up(
    submit_paths: Annotated[list[Path] | None, typer.Option(
        "--submit", help="Package folders to submit once everything is up.")] = None,
) -> None:
    """Start the Prefect server (unless PREFECT_API_URL is set), the runtimes, and serve every
    deployment. Ctrl-C stops everything it started."""
    from deployments.up import Supervisor

    supervisor = Supervisor(Context().settings)
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
    from mlc_tasks.capture import InputCapture
    from mlc_tasks.scoring import RequestLimits

    ctx = Context()
    settings = ctx.settings
    url, parsed = f"http://{settings.host}:{port}", runtimes.parse_tags(tags)
    token = settings.resolved_runtime_token(name)
    # registered here first, so that a refused re-pin is one clear line, not a startup trace
    ctx.registry.upsert_runtime(name, url, parsed, capabilities(),
                                repin_by=current_user() if repin else None)
    capture = InputCapture(settings.capture_dir(), name, settings.capture_max_rows_per_day,
                           settings.capture_max_bytes_per_day)
    limits = RequestLimits(max_bytes=settings.max_request_bytes, max_rows=settings.max_rows)
    application = create_app(name, parsed, token, settings.trusted_types, ctx.registry, url,
                             settings.heartbeat_seconds, capture, limits)
    uvicorn.run(application, host=settings.host, port=port, log_level="warning")


def _tags(tags: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


if __name__ == "__main__":
    app()
