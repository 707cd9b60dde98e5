"""The inbound notification endpoint as a real uvicorn server on loopback, over a real registry
(SQLite; PostgreSQL when MLC_TEST_DATABASE_URL is set), with an emitter that records events."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from deployments.notify_server import create_app, post_signed, send_notification
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import TransientError
from mlc_tasks.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, Notification, sign
from mlc_tasks.registry import Registry
from mlc_tasks.registry.notifications import NotificationBook
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import REPO, free_port, mlc_env
from tests.receivers import Reply, serve

SECRET = "notify-test-secret"
NOW = 1_800_000_000  # the server's injected clock
NOTE = Notification(id="lake:credit-risk:2026-11-26", model="credit-risk", action="retrain",
                    note="nightly load")


@dataclass
class Emitter:
    """Records the events it is given; fails the first `failures` times, as an unreachable
    Prefect server would (events.emit raises TransientError)."""

    failures: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("Prefect server at http://127.0.0.1:9/api did not take the event")
        self.events.append(event)


@dataclass
class Endpoint:
    url: str
    emitter: Emitter
    registry: Registry

    def send(self, notification: Notification = NOTE, timestamp: int = NOW,
             secret: str = SECRET) -> httpx.Response:
        return send_notification(self.url, secret, notification, timestamp)

    def post(self, body: bytes, timestamp: int = NOW) -> httpx.Response:
        return post_signed(self.url, SECRET, body, timestamp)


class ThreadedServer:
    """uvicorn in a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("notification server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def endpoint(registry: Registry, store: ArtifactStore, examples_dir: Path) -> Iterator[Endpoint]:
    submit_package(examples_dir / "credit-risk", registry, store, list(REVIEWED_TYPES), "ana")
    emitter = Emitter()
    app = create_app(SECRET, registry, emitter, clock=lambda: NOW)
    with ThreadedServer(app) as server:
        yield Endpoint(f"http://127.0.0.1:{server.port}/notifications", emitter, registry)


def notification_audit(registry: Registry) -> list[str]:
    return [e.action for e in registry.audit_events("credit-risk")
            if e.entity == "notification"]


def test_signed_notification_emits_one_event(endpoint: Endpoint) -> None:
    location = endpoint.registry.get_model("credit-risk").data_location
    note = NOTE.model_copy(update={"data": f"{location}/2026-11-26/labelled.csv"})
    answer = endpoint.send(note)
    assert answer.status_code == 202, answer.text
    [event] = endpoint.emitter.events
    assert answer.json() == {"accepted": NOTE.id, "event": "mlc.retrain.requested",
                             "event_id": event["id"]}
    assert event["event"] == "mlc.retrain.requested"
    assert event["resource"]["prefect.resource.id"] == "mlc.model.credit-risk"
    assert event["payload"] == {"model": "credit-risk", "trigger": "notification",
                                "data": note.data, "day": None, "request": None,
                                "notification_id": NOTE.id, "note": "nightly load"}
    assert notification_audit(endpoint.registry) == ["notification.accepted"]


@pytest.mark.parametrize("data", ["s3://lake/credit-risk/2026-11-26/", "file:///etc/passwd",
                                  "webhdfs://127.0.0.1:9998/x"])
def test_data_outside_the_models_location_is_refused_and_the_id_stays_free(
        endpoint: Endpoint, data: str) -> None:
    answer = endpoint.send(NOTE.model_copy(update={"data": data}))
    assert answer.status_code == 422 and "data" in answer.json()["detail"], answer.text
    assert endpoint.emitter.events == [] and notification_audit(endpoint.registry) == []
    assert endpoint.send().status_code == 202  # the sender corrects it and sends again


def test_backtest_without_data(endpoint: Endpoint) -> None:
    answer = endpoint.send(Notification(id="bt-1", model="credit-risk", action="backtest"))
    assert answer.status_code == 202, answer.text
    [event] = endpoint.emitter.events
    assert event["event"] == "mlc.backtest.requested" and event["payload"]["data"] is None


def test_replay_is_refused_and_emits_nothing(endpoint: Endpoint) -> None:
    assert endpoint.send().status_code == 202
    again = endpoint.send()
    assert again.status_code == 401
    assert again.json() == {"detail": f"notification {NOTE.id} was already accepted (replay)"}
    # the same id signed afresh later is a replay too: the id, not the signature, decides
    assert endpoint.send(timestamp=NOW + 60).status_code == 401
    assert len(endpoint.emitter.events) == 1
    assert notification_audit(endpoint.registry) == ["notification.accepted"]


def test_bad_signature_writes_and_emits_nothing(endpoint: Endpoint) -> None:
    answer = endpoint.send(secret="not-the-key")
    assert answer.status_code == 401
    assert "does not match" in answer.json()["detail"]
    body = NOTE.model_dump_json().encode()
    altered = body.replace(b"retrain", b"backtest")
    headers = {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: sign(SECRET, str(NOW), body)}
    assert httpx.post(endpoint.url, content=altered, headers=headers).status_code == 401
    assert endpoint.emitter.events == []
    assert not NotificationBook(endpoint.registry).seen(NOTE.id)
    assert notification_audit(endpoint.registry) == []


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing header X-MLC-Timestamp"),
    ({TIMESTAMP_HEADER: str(NOW)}, "missing header X-MLC-Signature"),
    ({TIMESTAMP_HEADER: "now", SIGNATURE_HEADER: "sha256=00"}, "integer of unix seconds"),
])
def test_missing_or_malformed_headers(endpoint: Endpoint, headers, reason) -> None:
    answer = httpx.post(endpoint.url, content=NOTE.model_dump_json(), headers=headers)
    assert answer.status_code == 401 and reason in answer.json()["detail"]
    assert endpoint.emitter.events == []


@pytest.mark.parametrize(("sent_at", "reason"), [(NOW - 301, "301 s old"),
                                                 (NOW + 301, "301 s in the future")])
def test_stale_or_future_timestamp_is_refused(endpoint: Endpoint, sent_at, reason) -> None:
    answer = endpoint.send(timestamp=sent_at)
    assert answer.status_code == 401 and reason in answer.json()["detail"]
    assert endpoint.emitter.events == []
    assert not NotificationBook(endpoint.registry).seen(NOTE.id)


def test_unknown_model_is_404(endpoint: Endpoint) -> None:
    answer = endpoint.send(Notification(id="n-9", model="churn", action="retrain"))
    assert answer.status_code == 404 and "churn" in answer.json()["detail"]
    assert endpoint.emitter.events == []
    assert not NotificationBook(endpoint.registry).seen("n-9")


@pytest.mark.parametrize(("body", "name"), [
    (b'{"id":"n-1","model":"credit-risk","action":"deploy"}', "field 'action'"),
    (b'{"id":"n 1","model":"credit-risk","action":"retrain"}', "field 'id'"),
    (b'{"id":"n-1","model":"credit-risk","action":"retrain","priority":"high"}',
     "field 'priority'"),
    (b'{"id":"n-1"', "Invalid JSON"),
])
def test_invalid_field_is_422_naming_it(endpoint: Endpoint, body, name) -> None:
    answer = endpoint.post(body)
    assert answer.status_code == 422 and name in answer.json()["detail"]
    assert endpoint.emitter.events == []


def test_body_over_64_kib_is_413(endpoint: Endpoint) -> None:
    body = b'{"id":"n-1","model":"credit-risk","action":"retrain","note":"' + b"x" * 65536 + b'"}'
    assert endpoint.post(body).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(80):
            yield b"x" * 1024

    answer = httpx.post(endpoint.url, content=chunks(),
                        headers={TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha256=00"})
    assert answer.status_code == 413
    assert endpoint.emitter.events == []


def test_emit_failure_is_503_and_the_retry_is_accepted(endpoint: Endpoint) -> None:
    endpoint.emitter.failures = 1
    failed = endpoint.send()
    assert failed.status_code == 503 and "send the notification again" in failed.json()["detail"]
    assert endpoint.emitter.events == []
    assert not NotificationBook(endpoint.registry).seen(NOTE.id)
    retry = endpoint.send(timestamp=NOW + 30)
    assert retry.status_code == 202, retry.text
    assert [e["id"] for e in endpoint.emitter.events] == [retry.json()["event_id"]]
    assert notification_audit(endpoint.registry) == [
        "notification.accepted", "notification.released", "notification.accepted"]
    assert endpoint.registry.verify_audit().ok


def test_racing_identical_requests_emit_once(endpoint: Endpoint) -> None:
    start = threading.Barrier(5)
    codes: list[int] = []

    def send() -> None:
        start.wait()
        codes.append(endpoint.send().status_code)

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [202, 401, 401, 401, 401]
    assert len(endpoint.emitter.events) == 1


def test_health(endpoint: Endpoint) -> None:
    answer = httpx.get(endpoint.url.replace("/notifications", "/health"))
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_main_signs_with_the_key_under_home_and_emits_to_prefect(
        local_settings: MlcSettings, examples_dir: Path) -> None:
    """`python -m deployments.notify_server` as `mlc up` starts it: settings from MLC_*, the
    key generated under home, events POSTed to PREFECT_API_URL (a loopback receiver here)."""
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    try:
        submit_package(examples_dir / "credit-risk", registry,
                       ArtifactStore(local_settings.artifact_url()), list(REVIEWED_TYPES), "ana")
    finally:
        registry.close()
    port = free_port()
    with serve() as prefect:
        prefect.script("/api/events", Reply(204, body=b""))
        env = {**mlc_env(local_settings), "MLC_NOTIFY_PORT": str(port),
               "PREFECT_API_URL": f"{prefect.url}/api"}
        with subprocess.Popen([sys.executable, "-m", "deployments.notify_server"], env=env,
                              cwd=REPO, stderr=subprocess.PIPE) as process:
            try:
                wait_for_health(f"http://127.0.0.1:{port}/health", process)
                secret = local_settings.resolved_notify_secret()  # the file the server made
                answer = send_notification(f"http://127.0.0.1:{port}/notifications", secret,
                                           NOTE, int(time.time()))
            finally:
                process.terminate()
                process.wait(timeout=20)
        assert answer.status_code == 202, answer.text
        [posted] = prefect.requests_to("/api/events")
        [event] = posted.json()
        assert event["id"] == answer.json()["event_id"]
        assert event["payload"]["notification_id"] == NOTE.id
    assert (local_settings.home / "notify-secret").stat().st_mode & 0o777 == 0o600


def wait_for_health(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"notify server exited: {stderr}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_empty_secret_is_refused(registry: Registry) -> None:
    with pytest.raises(ValueError, match="secret"):
        create_app("", registry, Emitter())



@pytest.fixture
def event_endpoint(registry: Registry, store: ArtifactStore,
                   examples_dir: Path) -> Iterator[Endpoint]:
    """The endpoint of an installation whose processes include the bundled quarterly review."""
    from flows.catalog import load_processes

    submit_package(examples_dir / "credit-risk", registry, store, list(REVIEWED_TYPES), "ana")
    emitter = Emitter()
    declared = [d.process for d in load_processes([REPO / "processes"])]
    app = create_app(SECRET, registry, emitter, clock=lambda: NOW, processes=lambda: declared)
    with ThreadedServer(app) as server:
        yield Endpoint(f"http://127.0.0.1:{server.port}/notifications", emitter, registry)


def review(note_id: str, **changes: Any) -> Notification:
    fields = {"model": "credit-risk", "event": "quarterly-review", **changes}
    return Notification(id=note_id, action="event", **fields)


def test_a_signed_custom_event_starts_the_process_once(event_endpoint: Endpoint) -> None:
    answer = event_endpoint.send(review("grc:q4", payload={"days": 30}))
    assert answer.status_code == 202, answer.text
    [event] = event_endpoint.emitter.events
    assert event["event"] == "mlc.custom.quarterly-review"
    assert event["payload"] == {"model": "credit-risk", "request": answer.json()["request"]}
    [asked] = [e for e in event_endpoint.registry.audit_events("credit-risk")
               if e.action == "process.requested"]
    assert asked.actor == "notification-endpoint:grc:q4"
    assert asked.detail["payloads"] == {"quarterly-review": {"days": 30}}
    assert event_endpoint.send(review("grc:q4", payload={"days": 30})).status_code == 401


@pytest.mark.parametrize(("note", "status", "says"), [
    (review("bad-days", payload={"days": 2}), 422, "payload.days"),
    (review("no-one", event="nobody-listens"), 404, "no process expects"),
    (review("no-model", model="no-such-model"), 404, "no-such-model"),
])
def test_a_refused_custom_event_records_nothing(event_endpoint: Endpoint, note: Notification,
                                                status: int, says: str) -> None:
    answer = event_endpoint.send(note)
    assert answer.status_code == status and says in answer.text, answer.text
    assert event_endpoint.emitter.events == [] and notification_audit(
        event_endpoint.registry) == []


@pytest.mark.parametrize("body", [
    {"id": "x1", "model": "credit-risk", "action": "event"},  # which event?
    {"id": "x2", "model": "credit-risk", "action": "retrain", "event": "quarterly-review"},
])
def test_event_goes_with_action_event_only(event_endpoint: Endpoint, body: dict[str, Any]
                                           ) -> None:
    import json

    answer = event_endpoint.post(json.dumps(body).encode())
    assert answer.status_code == 422 and "'event' names the custom event" in answer.text
