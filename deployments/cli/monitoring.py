"""Monitoring, now: backtest, monitor and batch-score a model's production version by running
the flow in this process, recorded on the installation's Prefect server like a served run
(its link is printed); and the recorded test results. These work on the installation's
database directly (its MLC_HOME), and import Prefect and pandas only when run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from deployments.cli.core import JsonFlag, app, context, friendly
from deployments.cli.output import emit_json, key, show_table, text, when
from mlc_tasks.errors import InvalidInputError


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
          when(r.created_at)] for v, r in found])


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
