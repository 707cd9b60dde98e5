"""Alert life and the outbox, on a real registry database (both backends)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from mlc_tasks.alert_records import Alert, AlertSignal, AlertStatus, Severity
from mlc_tasks.alerting import RetryPolicy, backoff_delays, deliver_pending
from mlc_tasks.errors import (
    DeliveryFailedError,
    IllegalTransitionError,
    InvalidInputError,
    PermanentDeliveryError,
)
from mlc_tasks.registry.alerts import AlertBook, should_notify
from mlc_tasks.registry.store import utcnow

WEEK = timedelta(days=7)
SIGNAL = AlertSignal(severity=Severity.WARNING, model="credit-risk", version=1,
                     source="daily-backtest", monitor="threshold", metric="roc_auc",
                     window="2026-11-25", title="roc_auc 0.71 below 0.75", value=0.71,
                     threshold=0.75)


class ScriptedChannel:
    """A real Channel that records what it is asked to send and fails as scripted."""

    def __init__(self, name: str, failures: list[Exception] | None = None) -> None:
        self.name, self.failures, self.sent = name, list(failures or []), []

    def send(self, alert: Alert, kind: str) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((alert.id, kind, alert.count))
        return f"ref-{alert.id}"


@pytest.fixture
def book(registry) -> AlertBook:
    return AlertBook(registry)


def deliver(book: AlertBook, *channels: ScriptedChannel, attempts: int = 4, now=None):
    waits: list[float] = []
    report = deliver_pending(book, {c.name: c for c in channels},
                             RetryPolicy(attempts_per_run=attempts), random.Random(1),
                             sleep=waits.append, now=now)
    return report, waits


@pytest.mark.parametrize(("minutes_ago", "expected"), [(None, True), (0, False), (59, False),
                                                      (60, True), (600, True)])
def test_should_notify_once_per_window(minutes_ago, expected) -> None:
    now = utcnow()
    last = None if minutes_ago is None else now - timedelta(minutes=minutes_ago)
    assert should_notify(last, now, timedelta(hours=1)) is expected


def test_backoff_grows_with_jitter_and_cap() -> None:
    delays = backoff_delays(RetryPolicy(attempts_per_run=6, base_delay_seconds=1,
                                        max_delay_seconds=4), random.Random(3))
    caps = [1, 2, 4, 4, 4]
    assert len(delays) == 5 and all(c / 2 <= d <= c for d, c in zip(delays, caps, strict=True))


def test_same_alert_from_five_runs_is_one_notification_count_five(book) -> None:
    slack = ScriptedChannel("slack")
    for _ in range(5):
        alert, _queued = book.raise_alert(SIGNAL, ["slack"], WEEK)
        deliver(book, slack)
    assert alert.count == 5 and len(book.list()) == 1
    assert slack.sent == [(alert.id, "opened", 1)]


def test_repeat_after_the_window_notifies_again(book) -> None:
    slack = ScriptedChannel("slack")
    start = utcnow()
    book.raise_alert(SIGNAL, ["slack"], timedelta(hours=1), now=start)
    _, queued = book.raise_alert(SIGNAL, ["slack"], timedelta(hours=1),
                                 now=start + timedelta(hours=2))
    assert queued
    deliver(book, slack, now=start + timedelta(hours=2))
    assert [kind for _, kind, _ in slack.sent] == ["opened", "repeated"]


def test_other_window_is_another_alert(book) -> None:
    book.raise_alert(SIGNAL, ["slack"], WEEK)
    book.raise_alert(SIGNAL.model_copy(update={"window": "2026-11-26"}), ["slack"], WEEK)
    assert len(book.list(status=AlertStatus.OPEN)) == 2


def test_acknowledged_alert_counts_but_does_not_notify(book) -> None:
    alert, _ = book.raise_alert(SIGNAL, ["slack"], timedelta(0))
    book.acknowledge(alert.id, "oncall")
    again, queued = book.raise_alert(SIGNAL, ["slack"], timedelta(0))
    assert not queued and again.count == 2 and again.status == AlertStatus.ACKNOWLEDGED


def test_a_snoozed_alert_counts_repeats_and_notifies_again_after_its_time(book,
                                                                          registry) -> None:
    start = utcnow()
    alert, _ = book.raise_alert(SIGNAL, ["slack"], WEEK, now=start)
    snoozed = book.snooze(alert.id, start + timedelta(hours=1), "oncall", now=start)
    assert (snoozed.snoozed_by, snoozed.status) == ("oncall", AlertStatus.OPEN)
    # the window alone would notify this repeat: the snooze holds it
    during, queued = book.raise_alert(SIGNAL, ["slack"], timedelta(0),
                                      now=start + timedelta(minutes=59))
    assert not queued and during.count == 2
    # after it, a repeat notifies although the week's suppression window has not passed
    after, queued = book.raise_alert(SIGNAL, ["slack"], WEEK, now=start + timedelta(minutes=61))
    assert queued and after.count == 3 and after.snoozed_until is None
    again, queued = book.raise_alert(SIGNAL, ["slack"], WEEK, now=start + timedelta(minutes=62))
    assert not queued  # and then the window rules again
    [event] = [e for e in registry.audit_events("credit-risk") if e.action == "alert.snoozed"]
    assert event.actor == "oncall" and event.detail["until"].startswith(
        f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M}")


def test_snooze_refuses_a_past_time_and_a_resolved_alert(book, registry) -> None:
    alert, _ = book.raise_alert(SIGNAL, ["slack"], WEEK)
    with pytest.raises(InvalidInputError, match="until: .* not in the future"):
        book.snooze(alert.id, utcnow() - timedelta(seconds=1), "oncall")
    book.resolve(alert.id, "oncall")
    with pytest.raises(IllegalTransitionError, match="resolved: nothing to snooze"):
        book.snooze(alert.id, utcnow() + timedelta(hours=1), "oncall")
    assert book.get(alert.id).snoozed_until is None
    assert [e.action for e in registry.audit_events("credit-risk")] == ["alert.resolved"]


def test_resolved_alert_tells_channels_and_a_new_breach_opens_a_new_alert(book,
                                                                         registry) -> None:
    servicenow = ScriptedChannel("servicenow")
    alert, _ = book.raise_alert(SIGNAL, ["servicenow"], WEEK)
    book.resolve(alert.id, "oncall")
    deliver(book, servicenow)
    assert [kind for _, kind, _ in servicenow.sent] == ["opened", "resolved"]
    with pytest.raises(IllegalTransitionError, match="already resolved"):
        book.resolve(alert.id, "oncall")
    fresh, queued = book.raise_alert(SIGNAL, ["servicenow"], WEEK)
    assert queued and fresh.id != alert.id and fresh.count == 1
    actions = [(e.actor, e.action) for e in registry.audit_events("credit-risk")]
    assert actions == [("oncall", "alert.resolved")]


def test_500_three_times_then_200_is_one_delivery(book) -> None:
    flaky = ScriptedChannel("slack", [DeliveryFailedError("500")] * 3)
    alert, _ = book.raise_alert(SIGNAL, ["slack"], WEEK)
    report, waits = deliver(book, flaky)
    assert report.sent == 1 and len(flaky.sent) == 1 and len(waits) == 3
    [delivery] = book.deliveries(alert.id)
    assert (delivery.status, delivery.attempts, delivery.external_ref) == ("sent", 4,
                                                                          f"ref-{alert.id}")


def test_receiver_down_for_the_whole_budget_is_resent_by_the_next_run(book) -> None:
    down = ScriptedChannel("slack", [DeliveryFailedError("connection refused")] * 4)
    alert, _ = book.raise_alert(SIGNAL, ["slack"], WEEK)
    report, _ = deliver(book, down)
    assert report.pending == 1 and down.sent == []
    assert book.deliveries(alert.id)[0].status == "pending"
    report, _ = deliver(book, down)  # the next run: the receiver is back
    assert report.sent == 1 and down.sent == [(alert.id, "opened", 1)]


def test_permanent_refusal_is_not_retried_and_keeps_the_reason(book) -> None:
    refusing = ScriptedChannel("slack", [PermanentDeliveryError("401 invalid_token")])
    alert, _ = book.raise_alert(SIGNAL, ["slack"], WEEK)
    report, waits = deliver(book, refusing)
    assert report.failed == 1 and waits == []
    [delivery] = book.deliveries(alert.id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "failed", 1, "401 invalid_token")
    assert deliver(book, refusing)[0].failed == 0  # never picked up again


def test_unconfigured_channel_fails_with_reason(book) -> None:
    alert, _ = book.raise_alert(SIGNAL, ["pager"], WEEK)
    deliver(book)
    assert book.deliveries(alert.id)[0].last_error == "channel pager not configured"


def test_severity_only_escalates(book) -> None:
    book.raise_alert(SIGNAL, [], WEEK)
    book.raise_alert(SIGNAL.model_copy(update={"severity": Severity.CRITICAL}), [], WEEK)
    alert, _ = book.raise_alert(SIGNAL.model_copy(update={"severity": Severity.INFO}), [], WEEK)
    assert alert.severity == Severity.CRITICAL
