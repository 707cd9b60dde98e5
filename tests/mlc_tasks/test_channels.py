"""Alert channels against real loopback receivers: what Slack, ServiceNow and a webhook get."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import SecretStr

from mlc_tasks.alert_records import Alert
from mlc_tasks.channels import (
    BasicAuth,
    OAuthClientCredentials,
    ServiceNowChannel,
    SlackChannel,
    WebhookChannel,
)
from mlc_tasks.errors import (
    DeliveryFailedError,
    InvalidInputError,
    NotFoundError,
    PermanentDeliveryError,
    UnsafeUrlError,
)
from mlc_tasks.outbound import OutboundPolicy
from tests.receivers import Receiver, Recorded, Reply, serve

LOOPBACK = OutboundPolicy(allow_http_loopback=True)
STRICT = OutboundPolicy()
HOOK_PATH = "/services/T000/B000/HOOKSECRET"
PASSWORD = "PASSWORDSECRET"
CLIENT_SECRET = "CLIENTSECRET"
RUN_URL = "http://127.0.0.1:4200/runs/flow-run/5d1e"


def make_alert(**changes: Any) -> Alert:
    alert = Alert(
        id=7, fingerprint="0123456789abcdef0123456789abcdef", status="open",
        severity="critical", model="churn", version=3, source="daily-backtest",
        monitor="threshold", metric="auc", window="2026-01-05", title="AUC below threshold",
        detail="AUC fell on the January data.", value=0.71, threshold=0.8, run_url=RUN_URL,
        count=1, first_seen=datetime(2026, 1, 5, 6, 0), last_seen=datetime(2026, 1, 5, 6, 0),
        last_notified=None, acknowledged_by=None, resolved_by=None,
    )
    return alert.model_copy(update=changes)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve() as running:
        yield running


# ---------------------------------------------------------------- Slack


def slack(receiver: Receiver, policy: OutboundPolicy = LOOPBACK, **kw: Any) -> SlackChannel:
    return SlackChannel(SecretStr(receiver.url + HOOK_PATH), policy, **kw)


def texts(payload: dict[str, Any]) -> list[str]:
    """Every text of every block, fields included."""
    found = []
    for block in payload["blocks"]:
        found += [block["text"]["text"]] if "text" in block else []
        found += [field["text"] for field in block.get("fields", [])]
    return found


def test_slack_payload_shape(receiver: Receiver) -> None:
    assert slack(receiver).send(make_alert(), "opened") is None
    [request] = receiver.requests_to(HOOK_PATH)
    payload = request.json()
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/json")
    assert payload["text"].startswith("[CRITICAL] AUC below threshold")
    header = payload["blocks"][0]
    assert header == {"type": "header",
                      "text": {"type": "plain_text", "text": "[CRITICAL] AUC below threshold"}}
    fields = " | ".join(field["text"] for field in payload["blocks"][1]["fields"])
    for expected in ("churn:3", "daily-backtest", "auc: 0.71 vs threshold 0.8", "*Count*\n1",
                     "2026-01-05T06:00:00"):
        assert expected in fields
    assert f"<{RUN_URL}|Open the run in Prefect>" in texts(payload)
    assert "AUC fell on the January data." in texts(payload)


def test_slack_enforces_limits(receiver: Receiver) -> None:
    alert = make_alert(title="T" * 500, detail="<x>" + "d" * 10_000, model="m" * 3000)
    slack(receiver).send(alert, "repeated")
    payload = receiver.requests_to(HOOK_PATH)[0].json()
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert 0 < len(payload["text"]) <= 3000
    assert len(payload["blocks"]) <= 50
    assert all(len(field["text"]) <= 2000 for field in payload["blocks"][1]["fields"])
    detail = payload["blocks"][2]["text"]["text"]
    assert detail.startswith("&lt;x&gt;ddd") and detail.endswith("…") and len(detail) == 3000
    assert all(len(text) <= 3000 for text in texts(payload))


def test_slack_resolved_is_short(receiver: Receiver) -> None:
    slack(receiver).send(make_alert(status="resolved", resolved_by="ana"), "resolved")
    payload = receiver.requests_to(HOOK_PATH)[0].json()
    assert payload["blocks"][0]["text"]["text"] == "[RESOLVED] AUC below threshold"
    assert "resolved by ana" in payload["blocks"][1]["text"]["text"]
    assert not any("fields" in block for block in payload["blocks"])
    assert payload["text"] == "Resolved: AUC below threshold (churn:3)"


def test_slack_without_run_url_has_no_link(receiver: Receiver) -> None:
    slack(receiver).send(make_alert(run_url=None), "opened")
    payload = receiver.requests_to(HOOK_PATH)[0].json()
    assert not any("Open the run" in text for text in texts(payload))


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, DeliveryFailedError), (503, DeliveryFailedError), (429, DeliveryFailedError),
     (400, PermanentDeliveryError), (401, PermanentDeliveryError),
     (403, PermanentDeliveryError), (404, PermanentDeliveryError)],
)
def test_slack_failures_are_classified_without_secret(
    receiver: Receiver, status: int, error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script(HOOK_PATH, Reply(status, body=b"invalid_token HOOKSECRET"))
    with pytest.raises(error) as caught:
        slack(receiver).send(make_alert(), "opened")
    assert f"HTTP {status}" in str(caught.value) and "invalid_token" in str(caught.value)
    assert "HOOKSECRET" not in str(caught.value)
    assert "HOOKSECRET" not in caplog.text
    assert len(receiver.requests_to(HOOK_PATH)) == 1  # the channel itself does not retry


def test_slack_500_three_times_then_200(receiver: Receiver) -> None:
    receiver.script(HOOK_PATH, Reply(500), Reply(500), Reply(500), Reply(200))
    channel = slack(receiver)
    for _ in range(3):
        with pytest.raises(DeliveryFailedError):
            channel.send(make_alert(), "opened")
    assert channel.send(make_alert(), "opened") is None
    assert len(receiver.requests_to(HOOK_PATH)) == 4


def test_slack_does_not_follow_redirects(receiver: Receiver) -> None:
    receiver.script(HOOK_PATH, Reply.redirect(receiver.url + "/target"))
    with pytest.raises(PermanentDeliveryError, match="redirect refused"):
        slack(receiver).send(make_alert(), "opened")
    assert receiver.requests_to("/target") == []
    assert len(receiver.requests_to(HOOK_PATH)) == 1


def test_slack_connection_refused_and_timeout(receiver: Receiver) -> None:
    receiver.script(HOOK_PATH, Reply(delay=0.5))
    with pytest.raises(DeliveryFailedError, match="timed out"):
        slack(receiver, timeout=0.1).send(make_alert(), "opened")
    receiver.close()
    with pytest.raises(DeliveryFailedError, match="connection failed") as caught:
        slack(receiver).send(make_alert(), "opened")
    assert "HOOKSECRET" not in str(caught.value)


def test_slack_refused_before_connecting(receiver: Receiver) -> None:
    with pytest.raises(UnsafeUrlError):
        slack(receiver, STRICT).send(make_alert(), "opened")
    assert receiver.requests == []


# ---------------------------------------------------------------- ServiceNow


class FakeTable:
    """Just enough of one Table API table: query by correlation_id, create, patch."""

    def __init__(self, receiver: Receiver, table: str) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        receiver.script(f"/api/now/table/{table}", self.collection)
        receiver.script(f"/api/now/table/{table}/*", self.record)

    def collection(self, request: Recorded) -> Reply:
        if request.method == "POST":
            sys_id = f"sys{len(self.rows) + 1}"
            self.rows[sys_id] = request.json()
            return Reply(201, json={"result": {"sys_id": sys_id, **self.rows[sys_id]}})
        wanted = request.query["sysparm_query"].split("^")[0].removeprefix("correlation_id=")
        found = [{"sys_id": key} for key, row in self.rows.items()
                 if row["correlation_id"] == wanted]
        return Reply(json={"result": found[: int(request.query["sysparm_limit"])]})

    def record(self, request: Recorded) -> Reply:
        sys_id = request.path.rsplit("/", 1)[1]
        if request.method != "PATCH" or sys_id not in self.rows:
            return Reply(404, json={"error": {"message": "No Record found"}})
        self.patches.append((sys_id, request.json()))
        self.rows[sys_id] |= request.json()
        return Reply(json={"result": self.rows[sys_id]})


def servicenow(receiver: Receiver, oauth: bool = False,
               policy: OutboundPolicy = LOOPBACK) -> ServiceNowChannel:
    auth: BasicAuth | OAuthClientCredentials = (
        OAuthClientCredentials(client_id="mlc", client_secret=SecretStr(CLIENT_SECRET))
        if oauth else BasicAuth(user="mlc.bot", password=SecretStr(PASSWORD)))
    return ServiceNowChannel(receiver.url + "/", auth, policy, timeout=2)


def test_servicenow_opens_one_incident_with_basic_auth(receiver: Receiver) -> None:
    incidents = FakeTable(receiver, "incident")
    alert = make_alert()
    assert servicenow(receiver).send(alert, "opened") == "sys1"
    lookup, create = receiver.requests
    assert (lookup.method, lookup.path) == ("GET", "/api/now/table/incident")
    assert lookup.query["sysparm_query"].startswith(f"correlation_id={alert.fingerprint}")
    assert lookup.query["sysparm_limit"] == "1"
    assert (create.method, create.path) == ("POST", "/api/now/table/incident")
    expected = "Basic " + base64.b64encode(f"mlc.bot:{PASSWORD}".encode()).decode()
    assert {r.headers["authorization"] for r in receiver.requests} == {expected}
    row = incidents.rows["sys1"]
    assert row["correlation_id"] == alert.fingerprint
    assert (row["urgency"], row["impact"]) == ("1", "1")
    assert row["short_description"] == "[CRITICAL] churn: AUC below threshold"
    assert "auc: 0.71 vs threshold 0.8" in row["description"] and RUN_URL in row["description"]


def test_servicenow_repeat_updates_the_same_incident(receiver: Receiver) -> None:
    incidents = FakeTable(receiver, "incident")
    channel = servicenow(receiver)
    refs = [channel.send(make_alert(), "opened"), channel.send(make_alert(), "opened"),
            channel.send(make_alert(count=5, last_seen=datetime(2026, 1, 9)), "repeated")]
    assert refs == ["sys1", "sys1", "sys1"]
    assert list(incidents.rows) == ["sys1"]
    assert [r.method for r in receiver.requests if r.method != "GET"] == ["POST", "PATCH", "PATCH"]
    assert incidents.patches[-1] == (
        "sys1", {"work_notes": "Seen again: count 5, last seen 2026-01-09T00:00:00"})


def test_servicenow_resolve_sets_state_6(receiver: Receiver) -> None:
    incidents = FakeTable(receiver, "incident")
    channel = servicenow(receiver)
    channel.send(make_alert(), "opened")
    assert channel.send(make_alert(status="resolved", resolved_by="ana"), "resolved") == "sys1"
    sys_id, fields = incidents.patches[-1]
    assert sys_id == "sys1" and fields["state"] == "6"
    assert fields["close_code"] and "resolved by ana" in fields["close_notes"]


def test_servicenow_resolve_without_incident_does_nothing(receiver: Receiver) -> None:
    incidents = FakeTable(receiver, "incident")
    assert servicenow(receiver).send(make_alert(), "resolved") is None
    assert incidents.rows == {} and incidents.patches == []


def test_servicenow_oauth_token_is_requested_once_and_used(receiver: Receiver) -> None:
    FakeTable(receiver, "incident")
    receiver.script("/oauth_token.do", Reply(json={
        "access_token": "TOKEN-1", "expires_in": 1799, "token_type": "Bearer"}))
    channel = servicenow(receiver, oauth=True)
    channel.send(make_alert(), "opened")
    channel.send(make_alert(), "repeated")
    [token_request] = receiver.requests_to("/oauth_token.do")
    assert token_request.method == "POST"
    assert token_request.form() == {"grant_type": "client_credentials", "client_id": "mlc",
                                    "client_secret": CLIENT_SECRET}
    table_requests = [r for r in receiver.requests if r.path.startswith("/api/now/table")]
    assert len(table_requests) == 4
    assert {r.headers["authorization"] for r in table_requests} == {"Bearer TOKEN-1"}


def test_servicenow_oauth_token_renewed_when_near_expiry(receiver: Receiver) -> None:
    FakeTable(receiver, "incident")
    receiver.script("/oauth_token.do", Reply(json={"access_token": "T", "expires_in": 0}))
    channel = servicenow(receiver, oauth=True)
    channel.send(make_alert(), "opened")
    channel.send(make_alert(), "repeated")
    assert len(receiver.requests_to("/oauth_token.do")) == 4  # one per table request


def test_servicenow_401_is_permanent_and_secret_free(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script("/api/now/table/incident", Reply(401, json={
        "error": {"message": "User Not Authenticated", "detail": PASSWORD}}))
    with pytest.raises(PermanentDeliveryError, match="HTTP 401: User Not Authenticated") as caught:
        servicenow(receiver).send(make_alert(), "opened")
    assert PASSWORD not in str(caught.value) and PASSWORD not in caplog.text
    receiver.script("/oauth_token.do", Reply(401, json={"error": {"message": CLIENT_SECRET}}))
    with pytest.raises(PermanentDeliveryError, match="token: HTTP 401") as caught:
        servicenow(receiver, oauth=True).send(make_alert(), "opened")
    assert CLIENT_SECRET not in str(caught.value) and CLIENT_SECRET not in caplog.text


def test_servicenow_server_error_is_transient(receiver: Receiver) -> None:
    receiver.script("/api/now/table/incident", Reply(502, body=b"<html>bad gateway</html>"))
    with pytest.raises(DeliveryFailedError, match="HTTP 502"):
        servicenow(receiver).send(make_alert(), "opened")


def test_servicenow_does_not_follow_redirects(receiver: Receiver) -> None:
    receiver.script("/api/now/table/incident", Reply.redirect(receiver.url + "/target", 307))
    with pytest.raises(PermanentDeliveryError, match="redirect refused"):
        servicenow(receiver).send(make_alert(), "opened")
    assert receiver.requests_to("/target") == []


def test_servicenow_refused_before_connecting(receiver: Receiver) -> None:
    with pytest.raises(UnsafeUrlError):
        servicenow(receiver, oauth=True, policy=STRICT).send(make_alert(), "opened")
    assert receiver.requests == []


def test_servicenow_task_opened_once_and_closed(receiver: Receiver) -> None:
    tasks = FakeTable(receiver, "sc_task")
    channel = servicenow(receiver)
    first = channel.open_task("approval-churn-3", "Approve churn:3", "Evidence: …")
    second = channel.open_task("approval-churn-3", "Approve churn:3", "Evidence: …")
    assert first == second == "sys1"
    assert len([r for r in receiver.requests if r.method == "POST"]) == 1
    assert tasks.rows["sys1"]["correlation_id"] == "approval-churn-3"
    channel.close_task("approval-churn-3", "approved by ana")
    assert tasks.patches == [("sys1", {"state": "3", "close_notes": "approved by ana"})]


def test_servicenow_close_unknown_task(receiver: Receiver) -> None:
    FakeTable(receiver, "sc_task")
    with pytest.raises(NotFoundError, match="no sc_task record for task nope"):
        servicenow(receiver).close_task("nope", "approved")


def test_servicenow_task_id_cannot_inject_a_query(receiver: Receiver) -> None:
    with pytest.raises(InvalidInputError, match="task_id"):
        servicenow(receiver).open_task("x^ORactive=true", "s", "d")
    assert receiver.requests == []


# ---------------------------------------------------------------- signed webhook


def webhook(receiver: Receiver, policy: OutboundPolicy = LOOPBACK) -> WebhookChannel:
    return WebhookChannel(receiver.url + "/hooks/URLSECRET?token=QUERYSECRET",
                          SecretStr("shared-secret"), policy, timeout=2)


def test_webhook_signature_verifies(receiver: Receiver) -> None:
    assert webhook(receiver).send(make_alert(), "opened") is None
    [request] = receiver.requests_to("/hooks/URLSECRET")
    timestamp = request.headers["x-mlc-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    signed = timestamp.encode() + b"." + request.body

    def signature(key: bytes) -> str:
        return "sha256=" + hmac.new(key, signed, hashlib.sha256).hexdigest()

    assert hmac.compare_digest(request.headers["x-mlc-signature"], signature(b"shared-secret"))
    assert request.headers["x-mlc-signature"] != signature(b"other-secret")
    assert request.json()["kind"] == "opened"
    assert request.json()["alert"]["fingerprint"] == make_alert().fingerprint
    assert request.query == {"token": "QUERYSECRET"}


@pytest.mark.parametrize(("status", "error"),
                         [(500, DeliveryFailedError), (401, PermanentDeliveryError)])
def test_webhook_failures_without_secret(
    receiver: Receiver, status: int, error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script("/hooks/URLSECRET", Reply(status, body=b"echo shared-secret QUERYSECRET"))
    with pytest.raises(error, match=f"HTTP {status}") as caught:
        webhook(receiver).send(make_alert(), "opened")
    for secret in ("URLSECRET", "QUERYSECRET", "shared-secret"):
        assert secret not in str(caught.value)
        assert secret not in caplog.text
    assert any(record.name == "httpx" for record in caplog.records)  # httpx did log the call


def test_webhook_does_not_follow_redirects(receiver: Receiver) -> None:
    receiver.script("/hooks/URLSECRET", Reply.redirect(receiver.url + "/target", 301))
    with pytest.raises(PermanentDeliveryError, match="redirect refused"):
        webhook(receiver).send(make_alert(), "opened")
    assert receiver.requests_to("/target") == []


def test_webhook_refused_before_connecting(receiver: Receiver) -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        webhook(receiver, STRICT).send(make_alert(), "opened")
    assert receiver.requests == []
    assert "URLSECRET" not in str(caught.value)


def test_webhook_connection_refused(receiver: Receiver) -> None:
    receiver.close()
    with pytest.raises(DeliveryFailedError, match="connection failed") as caught:
        webhook(receiver).send(make_alert(), "opened")
    assert "URLSECRET" not in str(caught.value)
