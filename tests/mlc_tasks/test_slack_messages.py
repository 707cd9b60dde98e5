"""The Slack app's messages: the buttons each alert and task gets, escaping of what processes
and people typed, Slack's size limits; and the Slack app channel against a loopback Web API
with a real registry: a new alert is posted with its buttons, its resolution updates that same
message in place, and the token is never in an error."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from mlc_tasks import slack_messages as sm
from mlc_tasks.alert_records import Alert, AlertSignal, AlertStatus, Severity
from mlc_tasks.alerting import RetryPolicy, deliver_pending
from mlc_tasks.errors import PermanentDeliveryError, UnsafeUrlError
from mlc_tasks.outbound import OutboundPolicy
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.resources import alert_channels
from mlc_tasks.settings import MlcSettings
from mlc_tasks.slack_app import SlackApp, SlackAppChannel
from mlc_tasks.task_records import HumanTask, TaskDecision, TaskKind, TaskStatus
from tests.receivers import Reply, serve
from tests.slack_api import SlackApi, block_problem, elements

NOW = datetime(2024, 5, 1, 12, 0)
TOKEN = "xoxb-fake-1"


def alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = dict(
        id=7, fingerprint="f" * 32, status=AlertStatus.OPEN, severity=Severity.WARNING,
        model="credit-risk", version=2, source="daily-backtest", monitor="threshold",
        metric="roc_auc", window="2024-05-01", title="roc_auc below threshold", detail="",
        value=0.55, threshold=0.6, run_url="https://prefect.example/runs/flow-run/1", count=1,
        first_seen=NOW, last_seen=NOW, last_notified=None, acknowledged_by=None,
        resolved_by=None)
    return Alert(**{**fields, **changes})


def task(kind: TaskKind = TaskKind.APPROVAL, **changes: Any) -> HumanTask:
    fields: dict[str, Any] = dict(
        id=3, kind=kind, status=TaskStatus.OPEN, version_id="v", model="credit-risk", number=2,
        step="approval", groups=["risk"], quorum=1, deadline=NOW + timedelta(hours=1),
        flow_run_id="r", holder="h:1", detail={"run_url": "https://prefect.example/runs/1"},
        created_at=NOW, closed_at=None, outcome="")
    return HumanTask(**{**fields, **changes})


def task_alert(kind: TaskKind = TaskKind.APPROVAL) -> Alert:
    return alert(monitor=kind.value, window="task-3", severity=Severity.INFO,
                 title="task 3: credit-risk:2 needs 1 approval(s) from risk")


def labels(message: dict[str, Any]) -> list[str]:
    return [(e.get("text") or e.get("placeholder"))["text"] for e in elements(message)]


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message)


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, ["Acknowledge", "Resolve", "Snooze", "Open run"]),
    ({"status": AlertStatus.ACKNOWLEDGED, "acknowledged_by": "rita"},
     ["Resolve", "Snooze", "Open run"]),
    ({"snoozed_until": NOW + timedelta(hours=1), "snoozed_by": "rita"},
     ["Acknowledge", "Resolve", "Open run"]),
    ({"snoozed_until": NOW - timedelta(hours=1), "snoozed_by": "rita"},
     ["Acknowledge", "Resolve", "Snooze", "Open run"]),
    ({"status": AlertStatus.RESOLVED, "resolved_by": "rita"}, []),
    ({"run_url": "javascript:alert(1)"}, ["Acknowledge", "Resolve", "Snooze"]),
    ({"run_url": None}, ["Acknowledge", "Resolve", "Snooze"]),
])
def test_an_alert_carries_the_buttons_its_state_allows(changes: dict[str, Any],
                                                       expected: list[str]) -> None:
    message = sm.alert_message(alert(**changes), NOW)
    assert labels(message) == expected
    assert block_problem(message["blocks"]) is None


def test_the_buttons_name_the_alert_and_snooze_offers_three_lengths() -> None:
    found = {e["action_id"]: e for e in elements(sm.alert_message(alert(), NOW))}
    assert found[sm.Action.ACKNOWLEDGE]["value"] == found[sm.Action.RESOLVE]["value"] == "7"
    assert [o["value"] for o in found[sm.Action.SNOOZE]["options"]] == ["7:1h", "7:4h", "7:1d"]
    assert found[f"{sm.Action.LINK}-0"]["url"] == "https://prefect.example/runs/flow-run/1"


@pytest.mark.parametrize(("kind", "detail", "expected"), [
    (TaskKind.APPROVAL, {}, ["Approve", "Reject"]),
    (TaskKind.CHANGE, {}, ["Approve", "Reject"]),
    (TaskKind.REVIEW, {}, ["Abort", "Retry"]),
    (TaskKind.QUESTION, {"choices": ["keep", "roll-back"]}, ["Keep", "Roll-back"]),
])
def test_a_waiting_task_carries_its_decisions_and_evidence(
        kind: TaskKind, detail: dict[str, Any], expected: list[str]) -> None:
    shown = task(kind, detail={"run_url": "https://p.example/r", **detail,
                               "packet_url": "https://mlc.example/packets/x.html"})
    message = sm.alert_message(task_alert(kind), NOW, shown, [], "https://mlc.example")
    assert labels(message) == expected + ["Evidence", "Evidence packet", "Open run"]
    decide = [e for e in elements(message) if e["action_id"].startswith(sm.Action.DECIDE)]
    assert [e["value"] for e in decide] == [f"7:3:{c}" for c in shown.choices]
    assert elements(message)[len(expected)]["url"] == "https://mlc.example/center/tasks/3"


def test_a_decided_task_shows_who_decided_and_has_no_decision_buttons() -> None:
    made = [TaskDecision(id=1, task_id=3, actor="sam@bank.example", decision="approve",
                         comment="", accepted=False, refusal="sam submitted it", via="slack",
                         at=NOW),
            TaskDecision(id=2, task_id=3, actor="rita@bank.example", decision="approve",
                         comment="looks <fine>", accepted=True, refusal=None, via="slack",
                         at=NOW)]
    closed = task(status=TaskStatus.APPROVED, closed_at=NOW, outcome="approved by rita")
    message = sm.alert_message(task_alert(), NOW, closed, made, "https://mlc.example")
    assert labels(message) == ["Evidence", "Open run"]
    text = all_text(message)
    assert "REFUSED: sam submitted it" in text and "approve by rita@bank.example" in text
    assert "looks &lt;fine&gt;" in text and "*APPROVED* at 2024-05-01 12:00 UTC" in text


def test_an_escalation_on_a_task_window_is_not_a_task() -> None:
    assert sm.task_id_of(task_alert()) == 3
    assert sm.task_id_of(alert(monitor="escalation", window="task-3")) is None
    assert sm.task_id_of(alert(monitor="approval", window="task-3x")) is None


@pytest.mark.parametrize("typed", ["<https://evil.example|Approve here>", "<!channel> & co",
                                   "<@U0BOSS> says ok", "a > b"])
def test_what_processes_type_cannot_make_links_or_mentions(typed: str) -> None:
    message = sm.alert_message(alert(detail=typed, model="m", metric=typed), NOW)
    mrkdwn = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"
              and "text" in b] + [f["text"] for b in message["blocks"] for f in b.get("fields", [])]
    assert all("<" not in text and ">" not in text for text in mrkdwn)
    assert any(sm.escape(typed) in text for text in mrkdwn)
    assert "<" not in message["text"]
    assert sm.escape("&lt;") == "&amp;lt;"


def test_long_titles_details_and_many_choices_stay_within_slack_limits() -> None:
    huge = alert(title="t" * 5000, detail="d" * 10_000)
    message = sm.alert_message(huge, NOW)
    assert block_problem(message["blocks"]) is None
    assert len(message["blocks"][0]["text"]["text"]) == sm.HEADER_MAX
    choices = [f"c{n}" for n in range(30)]
    many = sm.alert_message(task_alert(TaskKind.QUESTION), NOW,
                            task(TaskKind.QUESTION, detail={"choices": choices}), [], "https://x")
    assert block_problem(many["blocks"]) is None and len(labels(many)) == 31
    modal = sm.decision_modal(task(), "reject", 7, "C0TRIAGE:1.2", "https://x")
    assert len(modal["title"]["text"]) <= sm.MODAL_TITLE_MAX
    assert modal["blocks"][1]["optional"] is False  # a reason is required to reject
    assert sm.decision_modal(task(), "approve", 7, "C0TRIAGE:1.2", "https://x")[
        "blocks"][1]["optional"] is True


def test_the_done_note_is_escaped_and_sits_above_the_buttons() -> None:
    message = sm.done_note(sm.alert_message(alert(), NOW), "Acknowledged by <b> at now")
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds.index("context") == kinds.index("actions") - 1
    assert "Acknowledged by &lt;b&gt;" in all_text(message)


# ---- the channel, against a loopback Web API and a real registry ---------------------------


def slack_settings(settings: MlcSettings, api_url: str) -> MlcSettings:
    return settings.model_copy(update={
        "slack_bot_token": SecretStr(TOKEN), "slack_channel": "C0TRIAGE",
        "slack_api_url": api_url, "outbound_allowed_hosts": ["127.0.0.1"],
        "allow_http_loopback": True, "public_url": "https://mlc.example"})


def signal() -> AlertSignal:
    return AlertSignal(severity=Severity.CRITICAL, model="credit-risk", source="monitor",
                       monitor="drift", metric="psi", window="2024-05-01", title="drift <high>")


def deliver(book: AlertBook, channels: dict[str, Any]) -> None:
    report = deliver_pending(book, channels, RetryPolicy(attempts_per_run=1),
                             random.Random(0), sleep=lambda _: None)
    assert report.failed == report.pending == 0, report


def test_the_app_channel_posts_with_buttons_and_updates_in_place(
        settings: MlcSettings, registry: Registry) -> None:
    book = AlertBook(registry)
    with serve() as receiver:
        slack = SlackApi(receiver, TOKEN)
        channels = alert_channels(slack_settings(settings, slack.api_url), lambda v, _: v,
                                  lambda: registry)
        assert isinstance(channels["slack"], SlackAppChannel)
        raised, _ = book.raise_alert(signal(), ["slack"], timedelta(0))
        deliver(book, channels)
        posted = slack.wait_for("chat.postMessage")
        assert posted["channel"] == "C0TRIAGE" and labels(posted) == [
            "Acknowledge", "Resolve", "Snooze"]
        assert book.deliveries(raised.id)[0].external_ref == f"C0TRIAGE:{posted['ts']}"

        book.raise_alert(signal(), ["slack"], timedelta(0))  # a repeat: the same message
        deliver(book, channels)
        book.resolve(raised.id, "rita@bank.example")
        deliver(book, channels)
        updates = slack.calls("chat.update")
        assert [u["ts"] for u in updates] == [posted["ts"]] * 2
        assert len(slack.calls("chat.postMessage")) == 1
        assert "Count*\\n2" in all_text(updates[0]) and labels(updates[0]) == labels(posted)
        assert labels(updates[1]) == [] and "Resolved by rita@bank.example" in all_text(
            updates[1])
        assert [d.external_ref for d in book.deliveries(raised.id)] == [
            f"C0TRIAGE:{posted['ts']}"] * 3


def test_a_refused_call_names_slack_s_error_and_never_the_token() -> None:
    with serve() as receiver:
        policy = OutboundPolicy(allowed_hosts=["127.0.0.1"], allow_http_loopback=True)
        wrong = SlackApp(SecretStr(TOKEN + "x"), SlackApi(receiver, TOKEN).api_url, policy)
        with pytest.raises(PermanentDeliveryError) as refused:
            wrong.post("C0TRIAGE", {"text": "t", "blocks": [{"type": "divider"}]})
        assert "invalid_auth" in str(refused.value) and "xoxb" not in str(refused.value)
        receiver.script("/moved/*", Reply.redirect("http://127.0.0.1:9/api/"))
        moved = SlackApp(SecretStr(TOKEN), receiver.url + "/moved/", policy)
        with pytest.raises(PermanentDeliveryError, match="redirect refused"):
            moved.post("C0TRIAGE", {"text": "t", "blocks": [{"type": "divider"}]})
        assert [r.path for r in receiver.requests].count("/api/") == 0  # not followed
        with pytest.raises(UnsafeUrlError):
            SlackApp(SecretStr(TOKEN), "https://evil.example/api/", policy).post("C1", {})
