"""data-sensor: every few seconds (policy `sensor.every`), look in each model's data location
for new labelled files; once a file has stopped changing, record its content once and emit the
event that starts a retraining or a backtest, as the policy says for the model."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger, runtime

from flows.alerts import raise_alert
from mlc_tasks import events
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.data_sensor import day_of, sense
from mlc_tasks.locations import LocationPolicy, redact
from mlc_tasks.registry.arrivals import Arrival, ArrivalBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources

FLOW = "data-sensor"


@flow(name=FLOW)
def data_sensor(watch_seconds: float = 0) -> list[str]:
    """Look once; with `watch_seconds`, keep looking every `sensor.every` for that long (one
    process for many looks: a flow run per look would start a Python process every few
    seconds). The time counts from the run's scheduled start, so a run that started late
    still ends before the next one is due. Returns the files that started a process.

    Args:
        watch_seconds: how long this run keeps looking; 0: look once
    """
    ctx = resources()
    deadline = time.monotonic() + watch_seconds - seconds_since_due()
    started = look(ctx)
    while (pause := ctx.policy().sensor.every.total_seconds()) < deadline - time.monotonic():
        time.sleep(pause)
        started += look(ctx)
    return started


def seconds_since_due() -> float:
    """How late this run started (0 outside a scheduled run)."""
    due = runtime.flow_run.scheduled_start_time
    return max(0.0, (datetime.now(UTC) - due).total_seconds()) if due else 0.0


def look(ctx: Resources) -> list[str]:
    """One look at every model's data location, then send what arrived. A location outside
    the allowed roots is never listed: it is alerted, like one that cannot be read."""
    logger, policy, book = get_run_logger(), ctx.policy(), ArrivalBook(ctx.registry)
    roots = LocationPolicy.from_settings(ctx.settings)
    for model in ctx.registry.list_models():
        rule = policy.retraining_for(model.name, model.type, model.risk_tier)
        if not model.data_location or rule.on_new_data == "nothing":
            continue
        try:
            for arrival in sense(book, model.name, model.data_location, rule.on_new_data,
                                 policy.sensor.settle, utcnow(), FLOW, roots):
                logger.info("%s: new labelled data %s → %s", model.name, arrival.path,
                            arrival.action)
        except Exception as exc:  # one unreadable location must not blind the others
            raise_alert(unreadable(model.name, model.data_location, exc))
    return [send(ctx, book, arrival) for arrival in book.unsent()]


def send(ctx: Resources, book: ArrivalBook, arrival: Arrival) -> str:
    """Emit the arrival's event, then mark it sent (a crash between the two sends it again;
    the processes it starts find their work done)."""
    day = day_of(arrival.path)
    event = events.request_event(arrival.model, arrival.action, trigger="new data",
                                 data=arrival.path, detail={
                                     "sha256": arrival.sha256,
                                     "day": day.isoformat() if day else None})
    events.emit(event, ctx.prefect_api_url())
    book.mark_emitted(arrival.id)
    return arrival.path


def unreadable(model: str, location: str, exc: Exception) -> AlertSignal:
    return AlertSignal(severity=Severity.WARNING, model=model, version=None, source=FLOW,
                       monitor="data-sensor", metric="location", window="",
                       title=f"{model}: data location cannot be listed"[:300],
                       detail=f"{redact(location)}: {type(exc).__name__}: {exc}"[:2000])
