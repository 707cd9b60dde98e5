"""Our raw calls to Prefect's API carry its credentials as Prefect's own client does: basic
auth with the auth string, and a CSRF token on every change (fetched again when it expired;
none against a server with CSRF off). A loopback server stands in for Prefect here; the real
one, locked down by `mlc up`, is in tests/deployments/test_up_lockdown.py."""

from __future__ import annotations

import httpx
import pytest

from mlc_tasks.errors import PrefectAuthError
from mlc_tasks.prefect_auth import AUTH_ENV, PrefectAuth, auth_headers
from tests.receivers import Reply, serve

TOKEN = {"token": "t1", "client": "c", "expiration": "2999-01-01T00:00:00Z"}


def test_credentials_are_sent_as_prefects_own_client_sends_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.client.orchestration import PrefectClient

    theirs = PrefectClient("http://127.0.0.1:9/api", auth_string="mlc:s3cret")
    assert auth_headers("mlc:s3cret") == {"Authorization":
                                          theirs._client.headers["Authorization"]}
    monkeypatch.setenv(AUTH_ENV, "mlc:from-env")
    assert auth_headers() == auth_headers("mlc:from-env")
    monkeypatch.delenv(AUTH_ENV)
    assert auth_headers() == {}


def test_a_change_carries_a_csrf_token_fetched_once_and_again_when_it_expired() -> None:
    with serve() as prefect:
        prefect.script("/api/csrf-token", Reply(json=TOKEN), Reply(json={**TOKEN, "token": "t2"}))
        prefect.script("/api/things/filter", Reply(json=[]),
                       Reply(403, json={"detail": "Invalid CSRF token or client identifier."}),
                       Reply(json=["again"]))
        auth = PrefectAuth(f"{prefect.url}/api", "mlc:s3cret")
        for _ in range(2):
            assert httpx.post(f"{prefect.url}/api/things/filter", json={}, auth=auth
                              ).status_code == 200
        assert httpx.get(f"{prefect.url}/api/things/1", auth=auth).status_code == 200
        seen = [(r.method, r.path, r.headers.get("prefect-csrf-token"),
                 r.headers.get("authorization")) for r in prefect.requests]
    basic = auth_headers("mlc:s3cret")["Authorization"]
    assert seen == [("GET", "/api/csrf-token", None, basic),
                    ("POST", "/api/things/filter", "t1", basic),
                    ("POST", "/api/things/filter", "t1", basic),  # expired meanwhile
                    ("GET", "/api/csrf-token", None, basic),
                    ("POST", "/api/things/filter", "t2", basic),
                    ("GET", "/api/things/1", None, basic)]  # a read needs no token


def test_against_a_server_with_csrf_off_no_token_is_sent() -> None:
    with serve() as prefect:
        prefect.script("/api/csrf-token", Reply(422, json={"detail": "CSRF protection is "
                                                                     "disabled."}))
        auth = PrefectAuth(f"{prefect.url}/api", "")
        for _ in range(2):
            httpx.post(f"{prefect.url}/api/events", json=[], auth=auth)
        assert [(r.path, "prefect-csrf-token" in r.headers, "authorization" in r.headers)
                for r in prefect.requests] == [("/api/csrf-token", False, False),
                                               ("/api/events", False, False),
                                               ("/api/events", False, False)]


def test_a_refusal_of_the_credentials_is_a_clear_error() -> None:
    with serve() as prefect:
        prefect.script("/api/csrf-token", Reply(401, json={"exception_message": "Unauthorized"}))
        with pytest.raises(PrefectAuthError, match="refused our credentials .*"
                                                   "PREFECT_API_AUTH_STRING"):
            httpx.post(f"{prefect.url}/api/events", json=[],
                       auth=PrefectAuth(f"{prefect.url}/api", "mlc:wrong"))
        assert [r.path for r in prefect.requests] == ["/api/csrf-token"]  # nothing sent
