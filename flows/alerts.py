"""Raising alerts from any flow, and alert-sweeper: re-sends what earlier runs could not."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_UI_URL

from mlc_tasks.alert_records import Alert, AlertSignal, DeliveryReport
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.resources import resources


def current_run_url() -> str | None:
    """The Prefect UI link of the flow run this code runs in."""
    ui, run_id = PREFECT_UI_URL.value(), runtime.flow_run.id
    return f"{ui}/runs/flow-run/{run_id}" if ui and run_id else None


@task(name="raise-alert", cache_policy=NO_CACHE)  # every call is an observation
def raise_alert(signal: AlertSignal) -> Alert:
    """Record the alert (one per problem while open), show it on the run's page in the Prefect
    UI, and deliver it; a channel that fails never fails the flow (the sweeper re-sends)."""
    ctx = resources()
    if signal.run_url is None:
        signal = signal.model_copy(update={"run_url": current_run_url()})
    window = timedelta(minutes=ctx.settings.alert_suppression_minutes)
    channels = ctx.alert_channels_for(signal)
    alert, queued = AlertBook(ctx.registry).raise_alert(signal, channels, window)
    create_markdown_artifact(
        key=f"alert-{alert.id}-{alert.model}", markdown=alert_markdown(alert),
        description=f"{alert.severity} alert: {alert.title}")
    report = ctx.deliver_alerts() if queued else DeliveryReport()
    get_run_logger().warning("alert %d (%s, seen %d×): %s; notified %d, pending %d, failed %d",
                             alert.id, alert.severity, alert.count, alert.title, report.sent,
                             report.pending, report.failed)
    return alert


def alert_markdown(alert: Alert) -> str:
    against = (f"{alert.value} against threshold {alert.threshold}"
               if alert.value is not None and alert.threshold is not None else "")
    return "\n".join([
        f"## {alert.severity.upper()}: {alert.title}",
        "",
        "| | |", "|---|---|",
        f"| alert | {alert.id} ({alert.status}, seen {alert.count}×) |",
        f"| model | {alert.model}{f':{alert.version}' if alert.version else ''} |",
        f"| check | {alert.source} / {alert.monitor} {alert.metric} {alert.window} |",
        f"| value | {against or '-'} |",
        f"| first / last seen (UTC) | {alert.first_seen:%Y-%m-%d %H:%M} / "
        f"{alert.last_seen:%Y-%m-%d %H:%M} |",
        "",
        alert.detail,
        "",
        f"Acknowledge: `mlc alerts ack {alert.id}` · resolve: `mlc alerts resolve {alert.id}`",
    ])


@flow(name="alert-sweeper")
def alert_sweeper() -> DeliveryReport:
    """Deliver every alert notification still pending (run every minute by `mlc up`)."""
    report = resources().deliver_alerts()
    get_run_logger().info("alerts: %d sent, %d failed, %d still pending", report.sent,
                          report.failed, report.pending)
    return report
