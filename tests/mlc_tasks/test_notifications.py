"""Inbound notifications: signing, verifying and parsing (pure), the registry's record of
accepted ids (both backends), and the generated notification key."""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
import threading

import pytest

from mlc_tasks.errors import InvalidInputError, UnsafeLocationError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.notifications import (
    Notification,
    SignatureError,
    body_sha256,
    check_data,
    parse,
    sign,
    verify,
)
from mlc_tasks.registry.notifications import NotificationBook
from mlc_tasks.settings import MlcSettings

SECRET = "s3cret-key"
NOW = 1_800_000_000
STAMP = str(NOW)
BODY = b'{"id":"n-1","model":"credit-risk","action":"retrain"}'
GOOD = sign(SECRET, STAMP, BODY)
NOTE = Notification(id="evt:2026-11-26.1", model="credit-risk", action="retrain",
                    data="s3://lake/credit-risk/2026-11-26/", note="nightly load")


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), STAMP.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert GOOD == f"sha256={expected}"


def test_good_signature_within_the_window_passes() -> None:
    for now in (NOW, NOW + 300, NOW - 300):
        verify(SECRET, STAMP, GOOD, BODY, now)


@pytest.mark.parametrize(("timestamp", "signature", "body", "now", "reason"), [
    (None, GOOD, BODY, NOW, "missing header X-MLC-Timestamp"),
    ("", GOOD, BODY, NOW, "missing header X-MLC-Timestamp"),
    (STAMP, None, BODY, NOW, "missing header X-MLC-Signature"),
    ("1800000000.5", GOOD, BODY, NOW, "integer of unix seconds"),
    ("-1800000000", GOOD, BODY, NOW, "integer of unix seconds"),
    ("yesterday", GOOD, BODY, NOW, "integer of unix seconds"),
    (STAMP, sign("other-key", STAMP, BODY), BODY, NOW, "does not match"),
    (STAMP, GOOD, BODY.replace(b"retrain", b"backtest"), NOW, "does not match"),  # body altered
    (str(NOW - 1000), GOOD, BODY, NOW - 1000, "does not match"),  # timestamp altered
    (STAMP, GOOD.removeprefix("sha256="), BODY, NOW, "does not match"),
    (STAMP, GOOD.upper(), BODY, NOW, "does not match"),
    (STAMP, "sha256=é", BODY, NOW, "does not match"),  # non-ASCII: refused, not a TypeError
    (STAMP, GOOD, BODY, NOW + 301, "301 s old"),
    (STAMP, GOOD, BODY, NOW - 301, "301 s in the future"),
])
def test_verify_refuses(timestamp, signature, body, now, reason) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, timestamp, signature, body, now)


def test_max_age_is_configurable() -> None:
    verify(SECRET, STAMP, GOOD, BODY, NOW + 59, max_age=60)
    with pytest.raises(SignatureError, match="61 s old"):
        verify(SECRET, STAMP, GOOD, BODY, NOW + 61, max_age=60)


def test_signature_error_is_invalid_input() -> None:
    assert issubclass(SignatureError, InvalidInputError)


def test_parse_round_trip() -> None:
    assert parse(NOTE.model_dump_json().encode()) == NOTE
    assert parse(BODY) == Notification(id="n-1", model="credit-risk", action="retrain")


@pytest.mark.parametrize(("body", "field"), [
    (b'{"id":"n 1","model":"credit-risk","action":"retrain"}', "field 'id'"),
    (b'{"id":"","model":"credit-risk","action":"retrain"}', "field 'id'"),
    (b'{"id":"' + b"x" * 201 + b'","model":"credit-risk","action":"retrain"}', "field 'id'"),
    (b'{"model":"credit-risk","action":"retrain"}', "field 'id'"),
    (b'{"id":"n-1","model":"Credit Risk","action":"retrain"}', "field 'model'"),
    (b'{"id":"n-1","model":"credit-risk","action":"deploy"}', "field 'action'"),
    (b'{"id":"n-1","model":"credit-risk","action":"retrain","data":""}', "field 'data'"),
    (b'{"id":"n-1","model":"credit-risk","action":"retrain","note":"' + b"x" * 501 + b'"}',
     "field 'note'"),
    (b'{"id":"n-1","model":"credit-risk","action":"retrain","priority":1}', "field 'priority'"),
    (b'["n-1"]', "field '(top level)'"),
    (b'{"id": "n-1",', "Invalid JSON"),
])
def test_parse_names_the_field(body, field) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(field)):
        parse(body)


@pytest.mark.parametrize(("data", "reason"), [
    ("webhdfs://127.0.0.1:9998/x", "the webhdfs:// protocol is not allowed"),
    ("memory://x", "the memory:// protocol is not allowed"),
    ("https://user:hunter2@host.example/x.csv", "credentials in the URL"),
    ("s3://lake/x.csv?X-Amz-Signature=abc", "query strings"),
    ("../../etc/passwd", "not an absolute path"),
    ("simplecache::file:///etc/passwd", "'::' chains"),
])
def test_parse_refuses_data_no_root_could_allow(data: str, reason: str) -> None:
    body = Notification.model_construct(id="n-1", model="credit-risk", action="retrain",
                                        data=data, note="").model_dump_json().encode()
    with pytest.raises(InvalidInputError, match="field 'data'") as info:
        parse(body)
    assert reason in str(info.value)
    assert "hunter2" not in str(info.value) and "X-Amz-Signature" not in str(info.value)


def test_the_data_must_lie_under_the_models_data_location(tmp_path) -> None:
    policy = LocationPolicy(roots=[str(tmp_path / "lake")])
    location = f"file://{tmp_path}/lake/credit-risk"
    ok = NOTE.model_copy(update={"data": f"{tmp_path}/lake/credit-risk/2026-11-26/a.csv"})
    check_data(ok, location, policy)
    check_data(NOTE.model_copy(update={"data": None}), None, policy)
    for data, reason in [(f"{tmp_path}/lake/house-prices/a.csv", "not under"),
                         (f"{tmp_path}/lake/credit-risk/../../home/admin-token", "outside"),
                         ("file:///proc/self/environ", "outside"),
                         ("s3://lake/credit-risk/2026-11-26/", "outside")]:
        with pytest.raises(UnsafeLocationError, match=f"^data: .*{reason}"):
            check_data(NOTE.model_copy(update={"data": data}), location, policy)
    with pytest.raises(InvalidInputError, match="model 'credit-risk' has no data_location"):
        check_data(ok, None, policy)
    with pytest.raises(UnsafeLocationError, match="^data_location: /"):
        check_data(ok, "/", policy)  # a model registered before the roots were


# ---- the registry's record of accepted ids (SQLite and PostgreSQL) ---------------------------

def test_accept_once_then_replay_writes_nothing(registry) -> None:
    book = NotificationBook(registry)
    assert book.accept(NOTE, body_sha256(b"body"), "endpoint") is True
    assert book.seen(NOTE.id)
    assert book.accept(NOTE, body_sha256(b"body"), "endpoint") is False
    events = registry.audit_events("credit-risk")
    assert [(e.action, e.entity, e.entity_id, e.actor) for e in events] == [
        ("notification.accepted", "notification", NOTE.id, "endpoint")]
    assert events[0].evidence_sha256 == body_sha256(b"body")
    assert events[0].detail["data"] == NOTE.data
    assert registry.verify_audit().ok


def test_release_lets_the_same_id_in_again(registry) -> None:
    book = NotificationBook(registry)
    assert book.accept(NOTE, "0" * 64, "endpoint")
    book.release(NOTE, "endpoint", "event not emitted")
    assert not book.seen(NOTE.id)
    assert book.accept(NOTE, "0" * 64, "endpoint")
    assert [e.action for e in registry.audit_events("credit-risk")] == [
        "notification.accepted", "notification.released", "notification.accepted"]
    assert registry.verify_audit().ok


def test_racing_threads_with_one_id_accept_exactly_once(registry) -> None:
    book = NotificationBook(registry)
    start = threading.Barrier(6)
    results: list[bool] = []

    def accept() -> None:
        start.wait()
        results.append(book.accept(NOTE, "0" * 64, "endpoint"))

    threads = [threading.Thread(target=accept) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False] * 5 + [True]
    assert len(registry.audit_events("credit-risk")) == 1


# ---- the generated key ------------------------------------------------------------------------

def test_notify_secret_is_generated_once_under_home_mode_0600(tmp_path) -> None:
    settings = MlcSettings(home=tmp_path / "home")
    secret = settings.resolved_notify_secret()
    path = tmp_path / "home" / "notify-secret"
    assert len(secret) >= 32 and path.read_text() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MlcSettings(home=tmp_path / "home").resolved_notify_secret() == secret
    assert settings.resolved_admin_token() != secret  # a key of its own
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["admin-token",
                                                                      "notify-secret"]


def test_configured_notify_secret_wins_and_writes_nothing(tmp_path) -> None:
    settings = MlcSettings(home=tmp_path / "home", notify_secret="given")
    assert settings.resolved_notify_secret() == "given"
    assert not (tmp_path / "home").exists()
