"""Alerts raised by real flows on a real Prefect server, delivered to a loopback Slack,
ServiceNow and webhook that check what they receive."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from prefect import flow
from prefect.blocks.system import Secret

from flows.alerts import alert_sweeper, raise_alert
from flows.deploy_model import deploy_model
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.settings import MlcSettings
from tests.conftest import TOKEN, ApiProcess, enroll, mlc_bin, mlc_env
from tests.receivers import Receiver, Reply, serve

SECRET_PATH = "/services/T0001/B0001/s3cr3tW3bh00kT0k3n"
SIGNAL = AlertSignal(severity=Severity.WARNING, model="credit-risk", version=1,
                     source="test-monitor", monitor="threshold", metric="roc_auc",
                     window="2026-11-25", title="roc_auc 0.71 below 0.75", value=0.71,
                     threshold=0.75)


@flow(name="test-monitor")
def monitor() -> str:
    raise_alert(SIGNAL)
    return "checked"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve() as running:
        yield running


@pytest.fixture
def alert_env(local_settings: MlcSettings, receiver: Receiver,
              monkeypatch: pytest.MonkeyPatch) -> MlcSettings:
    """Settings as a served deployment reads them, with Slack on the loopback receiver."""
    for key, value in {
        "MLC_HOME": str(local_settings.home), "MLC_ADMIN_TOKEN": TOKEN,
        "MLC_SLACK_WEBHOOK_URL": receiver.url + SECRET_PATH,
        "MLC_ALLOW_HTTP_LOOPBACK": "true", "MLC_OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]',
        "MLC_ALERT_BASE_DELAY_SECONDS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    return local_settings


def book(settings: MlcSettings) -> AlertBook:
    return AlertBook(Registry(settings.registry_url(), audit_key=settings.resolved_audit_key()))


def run_logs(api_url: str) -> str:
    logs = httpx.post(f"{api_url}/logs/filter", json={"limit": 200, "sort": "TIMESTAMP_DESC"})
    return json.dumps(logs.json())


def test_alert_reaches_slack_with_block_kit_and_the_prefect_ui(alert_env, receiver,
                                                               prefect_server) -> None:
    assert monitor() == "checked"
    [request] = receiver.requests_to(SECRET_PATH)
    message = request.json()
    assert "roc_auc 0.71 below 0.75" in message["text"]  # plain-text fallback
    assert message["blocks"][0]["type"] == "header" and len(message["blocks"]) <= 50
    assert "/runs/flow-run/" in json.dumps(message["blocks"])  # link to the run
    [alert] = book(alert_env).list()
    assert alert.run_url and "/runs/flow-run/" in alert.run_url
    artifact = httpx.post(f"{prefect_server}/artifacts/filter",
                          json={"artifacts": {"key": {"any_": [f"alert-{alert.id}-credit-risk"]}},
                                "sort": "CREATED_DESC"}).json()
    assert "roc_auc 0.71 below 0.75" in artifact[0]["data"]


def test_five_runs_one_notification_count_five(alert_env, receiver) -> None:
    for _ in range(5):
        monitor()
    assert len(receiver.requests_to(SECRET_PATH)) == 1
    [alert] = book(alert_env).list()
    assert alert.count == 5


def test_500_three_times_then_200_is_one_delivery(alert_env, receiver) -> None:
    receiver.script(SECRET_PATH, Reply(500), Reply(500), Reply(500), Reply(200))
    monitor()
    assert len(receiver.requests_to(SECRET_PATH)) == 4
    [alert] = book(alert_env).list()
    [delivery] = book(alert_env).deliveries(alert.id)
    assert (delivery.status, delivery.attempts) == ("sent", 4)


def test_receiver_down_keeps_the_alert_and_the_sweeper_resends(alert_env, receiver) -> None:
    receiver.script(SECRET_PATH, *[Reply(503)] * 4, Reply(200))
    assert monitor() == "checked"  # the process completes although Slack is down
    [alert] = book(alert_env).list()
    assert book(alert_env).deliveries(alert.id)[0].status == "pending"
    report = alert_sweeper()
    assert report.sent == 1 and len(receiver.requests_to(SECRET_PATH)) == 5
    assert book(alert_env).deliveries(alert.id)[0].status == "sent"


def test_401_is_not_retried_and_no_secret_is_logged(alert_env, receiver,
                                                    prefect_server) -> None:
    receiver.script(SECRET_PATH, Reply(401, body=b"invalid_token"))
    monitor()
    assert len(receiver.requests_to(SECRET_PATH)) == 1
    [alert] = book(alert_env).list()
    [delivery] = book(alert_env).deliveries(alert.id)
    assert delivery.status == "failed" and "401" in str(delivery.last_error)
    assert "s3cr3t" not in str(delivery.last_error)
    assert "s3cr3t" not in run_logs(prefect_server)


def test_private_address_is_refused_before_connecting(alert_env, receiver,
                                                      monkeypatch) -> None:
    monkeypatch.setenv("MLC_SLACK_WEBHOOK_URL", "https://10.0.0.1/services/T/B/x")
    monkeypatch.setenv("MLC_OUTBOUND_ALLOWED_HOSTS", "[]")
    assert monitor() == "checked"
    [alert] = book(alert_env).list()
    [delivery] = book(alert_env).deliveries(alert.id)
    assert delivery.status == "failed" and "private" in str(delivery.last_error)


def test_slack_url_from_a_prefect_secret_block(alert_env, receiver, prefect_server,
                                               monkeypatch) -> None:
    Secret(value=receiver.url + SECRET_PATH).save("mlc-slack-webhook-url", overwrite=True)
    monkeypatch.delenv("MLC_SLACK_WEBHOOK_URL")
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    try:
        monitor()
    finally:
        Secret(value="https://hooks.slack.com/unset").save("mlc-slack-webhook-url",
                                                           overwrite=True)
    assert len(receiver.requests_to(SECRET_PATH)) == 1


def test_failed_deploy_raises_an_alert_a_person_acks_and_resolves(
    alert_env, receiver, examples_dir, start_runtime, prefect_server, request
) -> None:
    slack = {"MLC_SLACK_WEBHOOK_URL": receiver.url + SECRET_PATH,
             "MLC_ALLOW_HTTP_LOOPBACK": "true", "MLC_OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]'}
    token = enroll(alert_env, "oncall")  # who acknowledges is who holds the token
    api = ApiProcess(alert_env, PREFECT_API_URL=prefect_server, **slack).start()
    request.addfinalizer(api.stop)
    env = {**mlc_env(alert_env), "MLC_API_URL": api.url, "MLC_TOKEN": token}

    def mlc(*args: str) -> str:
        done = subprocess.run([mlc_bin(), *args], env=env, text=True, capture_output=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    mlc("submit", str(examples_dir / "credit-risk"))
    start_runtime("qa", "env=qa").stop()
    with pytest.raises(Exception, match="did not answer"):
        deploy_model("credit-risk", 1, {"env": "qa"})
    [alert] = json.loads(mlc("alerts", "--status", "open", "--json"))
    assert alert["title"] == "deploy of credit-risk:1 on qa failed"
    assert "acknowledged by oncall" in mlc("alerts", "ack", str(alert["id"]))
    assert "snoozed by oncall until" in mlc("alerts", "snooze", str(alert["id"]), "--for", "4h")
    refused = subprocess.run([mlc_bin(), "alerts", "snooze", str(alert["id"]), "--for", "4 hours"],
                             env=env, text=True, capture_output=True, timeout=120)
    assert refused.returncode != 0 and "--for: '4 hours' is not" in refused.stderr
    assert "resolved by oncall" in mlc("alerts", "resolve", str(alert["id"]))
    assert json.loads(mlc("alerts", "--status", "open", "--json")) == []
    messages = [r.json()["text"] for r in receiver.requests_to(SECRET_PATH)]
    assert len(messages) == 2 and "resolved" in messages[1].lower()


def test_policy_routes_by_severity(alert_env, receiver, tmp_path, monkeypatch) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("alerts:\n  routes:\n"
                      "    - match: {severity: [critical]}\n      channels: [webhook, slack]\n"
                      "    - match: {severity: [warning]}\n      channels: [slack, pager]\n")
    monkeypatch.setenv("MLC_POLICY_FILE", str(policy))
    monkeypatch.setenv("MLC_WEBHOOK_URL", receiver.url + "/hook")
    monkeypatch.setenv("MLC_WEBHOOK_SECRET", "hmac-key")
    monitor()  # a warning: Slack only (pager is routed but not configured)
    assert len(receiver.requests_to(SECRET_PATH)) == 1 and receiver.requests_to("/hook") == []

    @flow(name="test-critical")
    def critical() -> None:
        raise_alert(SIGNAL.model_copy(update={"severity": Severity.CRITICAL, "metric": "f1"}))

    critical()
    [hook] = receiver.requests_to("/hook")
    assert hook.headers["x-mlc-signature"].startswith("sha256=")
    assert len(receiver.requests_to(SECRET_PATH)) == 2
